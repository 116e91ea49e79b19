// The live event stream (/api/v1/events over a WebSocket): resumes after a drop with
// ?after=<last seq seen>, reconnecting with exponential back-off (0.5 s doubling to 15 s, jittered).

import { kioskToken } from "./api.js";

export class Live {
  /**
   * handlers: onSnapshot(floor, seq), onEvent(event), onFloor(floor, seq), onState("connecting" | "live" |
   * "reconnecting" | "offline", detail), onUnauthorised(closeEvent), probe() -> Promise<boolean> (still
   * signed in? asked when a connection is refused before it opens; false stops the stream)
   */
  constructor(handlers) {
    this.h = handlers;
    this.seq = null;
    this.stream = null; // the daemon's stream id: resuming needs the same stream (a restart re-snapshots)
    this.ws = null;
    this.delay = 500;
    this.timer = null;
    this.stopped = false;
    this.attempts = 0;
  }

  url() {
    const proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    const q = new URLSearchParams();
    if (this.seq !== null) {
      q.set("after", String(this.seq));
      if (this.stream) q.set("stream", this.stream);
    }
    const t = kioskToken();
    if (t) q.set("access_token", t);
    const qs = q.toString();
    return `${proto}//${window.location.host}/api/v1/events${qs ? "?" + qs : ""}`;
  }

  start() {
    this.stopped = false;
    this.connect();
    window.addEventListener("online", () => { if (!this.ws) this.reconnectNow(); });
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  reconnectNow() {
    clearTimeout(this.timer);
    this.delay = 500;
    this.connect();
  }

  connect() {
    this.state(this.attempts ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = new WebSocket(this.url());
    } catch (e) {
      this.schedule();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.addEventListener("open", () => { opened = true; });
    ws.addEventListener("message", (m) => {
      if (!opened) opened = true;
      // One frame may carry several messages, one JSON document per line (the server batches).
      for (const line of String(m.data).split("\n")) {
        let msg;
        try { msg = JSON.parse(line); } catch (_) { continue; }
        this.onMessage(msg);
      }
    });
    ws.addEventListener("close", (ev) => {
      if (this.ws === ws) this.ws = null;
      if (this.stopped) return;
      if (!opened && this.h.probe) {
        // Refused before it opened: a WebSocket cannot say why (401 after a daemon restart forgot the
        // session, or the daemon is simply down). Ask the API; the page decides (e.g. sign in again).
        Promise.resolve(this.h.probe()).then((ok) => {
          if (ok === false && !this.stopped) {
            this.stop();
            this.state("offline", "not signed in");
            if (this.h.onUnauthorised) this.h.onUnauthorised(ev);
          }
        }, () => { /* unreachable: keep retrying */ });
      }
      if (ev.code === 4401 || ev.code === 1008) {
        // the server refused us (signed out, token revoked): no point retrying quickly
        this.state("offline", ev.reason || "not signed in");
        if (this.h.onUnauthorised) this.h.onUnauthorised(ev);
        this.delay = 15000;
      }
      this.schedule();
    });
    ws.addEventListener("error", () => { /* a close follows */ });
  }

  schedule() {
    if (this.stopped) return;
    this.attempts += 1;
    this.state("reconnecting");
    const wait = this.delay * (0.75 + Math.random() * 0.5);
    this.delay = Math.min(this.delay * 2, 15000);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), wait);
  }

  state(s, detail) {
    this.current = s;
    if (this.h.onState) this.h.onState(s, detail);
  }

  onMessage(msg) {
    if (this.current !== "live") { this.delay = 500; this.state("live"); }
    if (msg.stream) this.stream = msg.stream;
    else if (msg.floor && msg.floor.stream) this.stream = msg.floor.stream;
    if (typeof msg.seq === "number") {
      if (msg.type === "event" && this.seq !== null && msg.seq <= this.seq) return; // seen already
      this.seq = msg.type === "event" ? msg.seq : Math.max(this.seq ?? msg.seq, msg.seq);
    }
    switch (msg.type) {
      case "snapshot":
        this.seq = typeof msg.seq === "number" ? msg.seq : this.seq;
        if (this.h.onSnapshot) this.h.onSnapshot(msg.floor, msg.seq);
        break;
      case "floor":
        if (this.h.onFloor) this.h.onFloor(msg.floor, msg.seq);
        break;
      case "event":
        if (this.h.onEvent) this.h.onEvent(msg);
        break;
      default:
        break;
    }
  }
}
