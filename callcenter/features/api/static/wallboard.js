// Wallboard: queue tiles, agents grid (with supervisor actions), calls waiting, campaigns.
// Live from /api/v1/events; timers tick every second from the epochs, corrected by the server's "at".

import {
  ApiError, Clock, el, fmtDuration, fmtPct, fmtSeconds, get, goLogin, level, post, session, setLevel, setText,
  signOut, status, stillSignedIn, takeTokenFromUrl,
} from "./api.js";
import { applyEvent, normalise } from "./floor.js";
import { Live } from "./live.js";

const STATES = ["Ready", "Reserved", "Busy", "WrapUp", "Paused", "LoggedOut"];
const STATE_LABEL = { Ready: "Ready", Reserved: "Ringing", Busy: "Busy", WrapUp: "Wrap-up", Paused: "Paused",
                      LoggedOut: "Logged out" };
const clock = new Clock();
let floor = normalise(null);
let canSupervise = false;
let me = null;

const $ = (sel, root = document) => root.querySelector(sel);
const esc = (s) => (window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, "\\$&"));

// ---------------------------------------------------------------------------------- actions

const ACTIONS = {
  listen: { label: "Listen", spy: true },
  whisper: { label: "Whisper", spy: true },
  barge: { label: "Barge", spy: true },
  pause: { label: "Pause" },
  unpause: { label: "Unpause" },
  logout: { label: "Log out", cls: "danger" },
};

function agentLabel(agent) {
  const a = floor.agents[agent];
  return (a && a.name) || agent;
}

/** Run one supervisor action on ``agent`` and report it in the status line. Exported for keyboard
 *  shortcuts and tests; the row buttons call it. */
export async function act(agent, action, reason) {
  const who = agentLabel(agent);
  const enc = encodeURIComponent(agent);
  try {
    if (ACTIONS[action] && ACTIONS[action].spy) {
      status(`${ACTIONS[action].label}: ringing your phone…`);
      const r = await post("/api/v1/supervision", { agent, mode: action });
      status(`${ACTIONS[action].label} ${who}: your desk phone ${r && r.phone ? r.phone + " " : ""}is ringing — answer it.`, "ok");
    } else if (action === "pause") {
      const r = await post(`/api/v1/agents/${enc}/pause`, { reason: reason || "break" });
      status(`${who} paused (${reason || "break"}): now ${r && r.state ? r.state : "Paused"}.`, "ok");
    } else if (action === "unpause") {
      const r = await post(`/api/v1/agents/${enc}/unpause`);
      status(`${who} unpaused: now ${r && r.state ? r.state : "Ready"}.`, "ok");
    } else if (action === "logout") {
      const r = await post(`/api/v1/agents/${enc}/logout`);
      status(`${who} logged out${r && r.state ? ": now " + r.state : ""}.`, "ok");
    } else {
      throw new Error(`unknown action ${action}`);
    }
    return true;
  } catch (e) {
    const msg = e instanceof ApiError ? e.message : String(e);
    status(`${ACTIONS[action] ? ACTIONS[action].label : action} ${who}: ${msg}`, "error");
    return false;
  }
}

function actionsCell(agent) {
  const td = el("td", { class: "actions-cell" });
  const box = el("div", { class: "actions", role: "group", "aria-label": `Actions for ${agentLabel(agent)}` });
  for (const name of ["listen", "whisper", "barge"]) {
    box.append(el("button", { type: "button", dataset: { action: name },
                              "aria-label": `${ACTIONS[name].label} to ${agentLabel(agent)}` }, ACTIONS[name].label));
  }
  const sel = el("select", { dataset: { field: "pause_reason" }, "aria-label": `Pause reason for ${agentLabel(agent)}` });
  box.append(sel,
    el("button", { type: "button", dataset: { action: "pause" }, "aria-label": `Pause ${agentLabel(agent)}` }, "Pause"),
    el("button", { type: "button", dataset: { action: "unpause" }, "aria-label": `Unpause ${agentLabel(agent)}` }, "Unpause"),
    el("button", { type: "button", class: "danger", dataset: { action: "logout" },
                   "aria-label": `Log out ${agentLabel(agent)}` }, "Log out"));
  box.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b || b.disabled) return;
    b.disabled = true;
    b.setAttribute("aria-busy", "true");
    try {
      await act(agent, b.dataset.action, sel.value);
    } finally {
      b.removeAttribute("aria-busy");
      b.disabled = false;
      updateRowButtons(b.closest("tr"), floor.agents[agent]);
    }
  });
  td.append(box);
  return td;
}

function fillReasons(sel) {
  const reasons = floor.pause_reasons && floor.pause_reasons.length ? floor.pause_reasons : ["break"];
  const have = Array.from(sel.options).map((o) => o.value).join("\n");
  if (have === reasons.join("\n")) return;
  const keep = sel.value;
  sel.replaceChildren(...reasons.map((r) => el("option", { value: r }, r)));
  if (reasons.includes(keep)) sel.value = keep;
}

function updateRowButtons(tr, a) {
  if (!tr || !a) return;
  const st = a.state;
  const set = (name, enabled) => {
    const b = tr.querySelector(`button[data-action="${name}"]`);
    if (b && b.getAttribute("aria-busy") !== "true") b.disabled = !enabled;
  };
  set("pause", st !== "Paused" && st !== "LoggedOut");
  set("unpause", st === "Paused");
  set("logout", st !== "LoggedOut");
  // Listen / whisper / barge stay available: the daemon answers 409 when the agent is not on a call.
}

// ---------------------------------------------------------------------------------- rendering

function fig(field, label, big = false) {
  return el("div", { class: `fig${big ? " big" : ""}`, dataset: { fig: field } },
    el("span", { class: "label" }, label),
    el("span", { class: "value", dataset: { field } }, "—"));
}

function tile(name) {
  const t = el("section", { class: "tile", dataset: { queue: name }, "aria-label": `Queue ${name}` },
    el("h3", {}, el("span", {}, name), el("span", { class: "chip cue", dataset: { field: "overall" } }, "")),
    el("div", { class: "figures" },
      fig("waiting", "Waiting", true), fig("longest_wait", "Longest wait", true), fig("service_level", "Service level", true),
      fig("asa", "ASA"), fig("aht", "AHT"), fig("abandon_rate", "Abandoned"),
      fig("talking", "Talking"), fig("ringing", "Ringing"), fig("answered", "Answered")),
    el("div", { class: "states", dataset: { field: "agents" }, "aria-label": "Agents by state" }));
  return t;
}

function setFig(t, field, text, lvl) {
  const v = t.querySelector(`[data-field="${field}"]`);
  setText(v, text);
  if (lvl !== undefined) {
    setLevel(v.parentElement, lvl);
    if (lvl) v.dataset.level = lvl; else delete v.dataset.level;
  }
}

const RANK = { "": 0, ok: 0, warn: 1, alarm: 2 };

function longestWait(name, q, now) {
  const waiting = floor.calls.filter((c) => c.queue === name && c.state === "waiting");
  if (waiting.length) return Math.max(...waiting.map((c) => now - c.entered_at));
  return q.waiting ? (q.longest_wait_s || 0) + Math.max(0, now - floor.at) : 0;
}

function renderTiles(now) {
  const box = $("#tiles");
  const names = Object.keys(floor.queues);
  for (const t of Array.from(box.children)) if (!names.includes(t.dataset.queue)) t.remove();
  names.forEach((name, i) => {
    let t = box.querySelector(`[data-queue="${esc(name)}"]`);
    if (!t) t = tile(name);
    if (box.children[i] !== t) box.insertBefore(t, box.children[i] || null);
    const q = floor.queues[name];
    const th = q.thresholds || {};
    const lw = longestWait(name, q, now);
    const lv = {
      waiting: level(q.waiting, th.waiting),
      longest_wait: level(lw, th.longest_wait_s),
      service_level: level(q.service_level, th.service_level, true),
      abandon_rate: level(q.abandon_rate, th.abandon_rate),
    };
    setFig(t, "waiting", String(q.waiting ?? 0), lv.waiting);
    setFig(t, "longest_wait", fmtDuration(lw), lv.longest_wait);
    setFig(t, "service_level", fmtPct(q.service_level), lv.service_level);
    setFig(t, "asa", fmtSeconds(q.asa_s));
    setFig(t, "aht", fmtSeconds(q.aht_s));
    setFig(t, "abandon_rate", fmtPct(q.abandon_rate), lv.abandon_rate);
    setFig(t, "talking", String(q.talking ?? 0));
    setFig(t, "ringing", String(q.ringing ?? 0));
    setFig(t, "answered", `${q.answered ?? 0} / ${q.offered ?? 0}`);
    const worst = Object.values(lv).reduce((w, l) => (RANK[l] > RANK[w] ? l : w), "ok");
    const overall = t.querySelector('[data-field="overall"]');
    setText(overall, worst === "alarm" ? "ALARM" : worst === "warn" ? "WARN" : "✓ OK");
    setLevel(overall, worst);
    const states = t.querySelector('[data-field="agents"]');
    const counts = q.agents || {};
    const chips = STATES.filter((s) => counts[s]).map((s) =>
      el("span", { class: `chip state-${s}`, dataset: { state: s } }, `${STATE_LABEL[s]} ${counts[s]}`));
    const sig = chips.map((c) => c.textContent).join("|");
    if (states.dataset.sig !== sig) {
      states.replaceChildren(...(chips.length ? chips : [el("span", { class: "muted" }, "no agents")]));
      states.dataset.sig = sig;
    }
  });
}

function agentRow(agent) {
  const tr = el("tr", { dataset: { agent } },
    el("th", { scope: "row", dataset: { field: "name" } }),
    el("td", { dataset: { field: "team" } }),
    el("td", {}, el("span", { class: "state", dataset: { field: "state" } })),
    el("td", { class: "num cue", dataset: { field: "time_in_state" } }),
    el("td", { dataset: { field: "reason" } }),
    el("td", { class: "num", dataset: { field: "handled" } }),
    el("td", { class: "num", dataset: { field: "missed" } }),
    el("td", { class: "num", dataset: { field: "aht" } }));
  if (canSupervise) tr.append(actionsCell(agent));
  return tr;
}

function agentTimers(tr, a, now) {
  const inState = Math.max(0, now - (a.since || now));
  const cell = tr.querySelector('[data-field="time_in_state"]');
  setText(cell, fmtDuration(inState));
  setLevel(cell, a.state === "LoggedOut" || a.state === "Ready" ? "" : level(inState, (floor.state_thresholds_s || {})[a.state]));
  const reason = tr.querySelector('[data-field="reason"]');
  if (a.state === "Paused" && a.reason) {
    const limit = a.pause_limit_s;
    const over = limit !== null && limit !== undefined && inState > limit;
    setText(reason, over ? `${a.reason} — over ${fmtDuration(limit)} limit` : (limit ? `${a.reason} (limit ${fmtDuration(limit)})` : a.reason));
    reason.classList.toggle("over-limit", over);
    setLevel(reason, over ? "alarm" : "");
    if (over) reason.dataset.overLimit = "true"; else delete reason.dataset.overLimit;
  } else {
    setText(reason, "");
    reason.classList.remove("over-limit");
    setLevel(reason, "");
    delete reason.dataset.overLimit;
  }
}

function renderAgents(now) {
  const body = $("#agents tbody");
  const names = Object.keys(floor.agents).sort((x, y) => {
    const a = floor.agents[x], b = floor.agents[y];
    return String(a.team || "").localeCompare(String(b.team || "")) || String(a.name || x).localeCompare(String(b.name || y));
  });
  for (const tr of Array.from(body.children)) if (!tr.dataset.agent || !names.includes(tr.dataset.agent)) tr.remove();
  if (!names.length) body.append(el("tr", { class: "empty" }, el("td", { colspan: 9 }, "No agents to show.")));
  names.forEach((name, i) => {
    const a = floor.agents[name];
    let tr = body.querySelector(`tr[data-agent="${esc(name)}"]`);
    if (!tr) tr = agentRow(name);
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    setText(tr.querySelector('[data-field="name"]'), a.name || name);
    setText(tr.querySelector('[data-field="team"]'), a.team || "—");
    const st = tr.querySelector('[data-field="state"]');
    setText(st, a.state);
    st.className = `state state-${a.state}`;
    st.title = STATE_LABEL[a.state] || a.state;
    tr.dataset.state = a.state;
    setText(tr.querySelector('[data-field="handled"]'), a.handled ?? 0);
    setText(tr.querySelector('[data-field="missed"]'), a.missed ?? 0);
    setText(tr.querySelector('[data-field="aht"]'), fmtSeconds(a.aht_s));
    agentTimers(tr, a, now);
    if (canSupervise) {
      const sel = tr.querySelector('select[data-field="pause_reason"]');
      if (sel) fillReasons(sel);
      updateRowButtons(tr, a);
    }
  });
}

function renderCalls(now) {
  const body = $("#calls tbody");
  const calls = floor.calls.filter((c) => c.state === "waiting" || c.state === "ringing")
    .sort((a, b) => a.entered_at - b.entered_at);
  const ids = calls.map((c) => c.call_id);
  for (const tr of Array.from(body.children)) if (!ids.includes(tr.dataset.call)) tr.remove();
  calls.forEach((c, i) => {
    let tr = body.querySelector(`tr[data-call="${esc(c.call_id)}"]`);
    if (!tr) {
      tr = el("tr", { dataset: { call: c.call_id } },
        el("td", { dataset: { field: "queue" } }),
        el("td", {}, el("span", { class: "num", dataset: { field: "caller_num" } }), " ",
          el("span", { class: "muted", dataset: { field: "caller_name" } })),
        el("td", { dataset: { field: "state" } }),
        el("td", { class: "num cue", dataset: { field: "wait" } }));
    }
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    tr.dataset.state = c.state;
    setText(tr.querySelector('[data-field="queue"]'), c.queue);
    setText(tr.querySelector('[data-field="caller_num"]'), c.caller_num || "unknown");
    setText(tr.querySelector('[data-field="caller_name"]'), c.caller_name || "");
    setText(tr.querySelector('[data-field="state"]'), c.state === "ringing" && c.agent ? `ringing ${agentLabel(c.agent)}` : c.state);
  });
  const empty = body.querySelector("tr.empty");
  if (!calls.length && !empty) body.append(el("tr", { class: "empty" }, el("td", { colspan: 4 }, "Nobody waiting.")));
  if (calls.length && empty) empty.remove();
  callTimers(now);
}

function callTimers(now) {
  for (const tr of document.querySelectorAll("#calls tbody tr[data-call]")) {
    const c = floor.calls.find((x) => x.call_id === tr.dataset.call);
    if (!c) continue;
    const wait = Math.max(0, now - c.entered_at);
    const cell = tr.querySelector('[data-field="wait"]');
    setText(cell, fmtDuration(wait));
    const q = floor.queues[c.queue];
    setLevel(cell, level(wait, q && q.thresholds ? q.thresholds.longest_wait_s : null));
  }
}

function renderCampaigns() {
  const body = $("#campaigns tbody");
  const names = Object.keys(floor.campaigns || {});
  $("#campaigns-panel").hidden = names.length === 0;
  for (const tr of Array.from(body.children)) if (!names.includes(tr.dataset.campaign)) tr.remove();
  names.forEach((name, i) => {
    const c = floor.campaigns[name];
    let tr = body.querySelector(`tr[data-campaign="${esc(name)}"]`);
    if (!tr) {
      tr = el("tr", { dataset: { campaign: name } },
        el("th", { scope: "row" }, name), el("td", { dataset: { field: "state" } }),
        el("td", { class: "num", dataset: { field: "lines" } }), el("td", { class: "num cue", dataset: { field: "abandon_rate" } }));
    }
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    setText(tr.querySelector('[data-field="state"]'), c.state || "—");
    setText(tr.querySelector('[data-field="lines"]'), c.lines ?? 0);
    const cell = tr.querySelector('[data-field="abandon_rate"]');
    const limit = c.abandon_limit;
    setText(cell, `${fmtPct(c.abandon_rate)} / ${limit === null || limit === undefined ? "—" : fmtPct(limit)}`);
    setLevel(cell, limit ? level(c.abandon_rate, [0.8 * limit, limit]) : "");
  });
}

function render() {
  const now = clock.now();
  renderTiles(now);
  renderAgents(now);
  renderCalls(now);
  renderCampaigns();
}

function tick() {
  const now = clock.now();
  const d = new Date(now * 1000);
  setText($("#clock"), d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
  renderTiles(now);
  for (const tr of document.querySelectorAll("#agents tbody tr[data-agent]")) {
    const a = floor.agents[tr.dataset.agent];
    if (a) agentTimers(tr, a, now);
  }
  callTimers(now);
}

// ---------------------------------------------------------------------------------- start

function setConn(state) {
  const c = $("#conn");
  c.className = `conn ${state}`;
  c.dataset.state = state;
  setText(c, { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline" }[state] || state);
}

let lastLive = 0;

async function pollFloor() {
  // The stream is down: keep the figures fresh from GET /api/v1/floor meanwhile.
  if (document.hidden || Date.now() - lastLive < 4000) return;
  try {
    const f = await get("/api/v1/floor");
    floor = normalise(f);
    clock.sync(floor.at);
    render();
  } catch (_) { /* the indicator already says reconnecting */ }
}

async function main() {
  const token = takeTokenFromUrl();
  let s = null;
  if (token) {
    try { s = await get("/api/v1/session", { noRedirect: true }); } catch (_) { s = null; }
  } else {
    s = await session();
    if (!s) { goLogin(); return; }
  }
  me = s;
  canSupervise = !!(s && Array.isArray(s.scopes) && s.scopes.includes("supervise"));
  document.body.classList.toggle("kiosk", !!token);
  document.querySelector("th.col-actions").hidden = !canSupervise;
  if (s && s.user) {
    setText($("#who"), `${s.name || s.user} (${s.role})`);
    const out = $("#signout");
    out.hidden = !!token;
    out.addEventListener("click", async () => { await signOut(); goLogin(); });
    $("#agent-link").hidden = !s.agent;
  } else if (token) {
    setText($("#who"), "kiosk");
  }
  const live = new Live({
    onSnapshot: (f) => { floor = normalise(f); clock.sync(floor.at); lastLive = Date.now(); render(); },
    onFloor: (f) => { floor = normalise(f); clock.sync(floor.at); lastLive = Date.now(); render(); },
    onEvent: (ev) => { applyEvent(floor, ev); lastLive = Date.now(); render(); },
    onState: (st) => setConn(st),
    onUnauthorised: () => { if (!token) goLogin(); else status("The wallboard token was refused.", "error"); },
    probe: stillSignedIn,
  });
  live.start();
  setInterval(tick, 1000);
  setInterval(pollFloor, 5000);
}

main().catch((e) => status(`Could not start the wallboard: ${e && e.message ? e.message : e}`, "error"));
