// Agent panel: my state and its buttons, the screen pop on call.offered (before the phone is
// answered), recording pause/resume while talking, dispositions after a campaign call, callbacks.

import {
  ApiError, Clock, el, fmtDuration, get, goLogin, level, post, session, setLevel, setText, signOut, status,
  stillSignedIn,
} from "./api.js";
import { applyEvent, normalise } from "./floor.js";
import { Live } from "./live.js";

const clock = new Clock();
let floor = normalise(null);
let agent = null; // the agent this panel is for
let selfAgent = null; // the signed-in user's own agent (role agent)
let pop = null; // {call_id, queue, caller_num, caller_name, path, entered_at, answered_at, state, campaign}
let recPaused = false;

const $ = (sel, root = document) => root.querySelector(sel);
const popField = (f) => $(`#pop [data-field="${f}"]`);

function errText(e) { return e instanceof ApiError ? e.message : String(e && e.message ? e.message : e); }

async function run(label, fn) {
  try {
    const msg = await fn();
    status(msg || `${label}: done.`, "ok");
    return true;
  } catch (e) {
    status(`${label}: ${errText(e)}`, "error");
    return false;
  }
}

// ---------------------------------------------------------------------------------- my state

function me() { return floor.agents[agent] || null; }

async function stateAction(action) {
  const a = encodeURIComponent(agent);
  const reason = $("#pause-reason").value || "break";
  if (action === "ready") {
    const st = me() ? me().state : null;
    const path = st === "Paused" ? "unpause" : "login";
    return run("Ready", async () => {
      const r = await post(`/api/v1/agents/${a}/${path}`);
      return `${path === "login" ? "Logged in" : "Unpaused"}: now ${r && r.state ? r.state : "Ready"}.`;
    });
  }
  if (action === "pause") {
    return run("Pause", async () => {
      const r = await post(`/api/v1/agents/${a}/pause`, { reason });
      return `Paused (${reason}): now ${r && r.state ? r.state : "Paused"}.`;
    });
  }
  if (action === "logout") {
    return run("Log out", async () => {
      const r = await post(`/api/v1/agents/${a}/logout`);
      return `Logged out${r && r.state ? ": now " + r.state : ""}.`;
    });
  }
  if (["listen", "whisper", "barge"].includes(action)) {
    const label = action[0].toUpperCase() + action.slice(1);
    return run(label, async () => {
      const r = await post("/api/v1/supervision", { agent, mode: action });
      return `${label}: your desk phone ${r && r.phone ? r.phone + " " : ""}is ringing — answer it.`;
    });
  }
  return false;
}

function renderMe() {
  const a = me();
  const st = $('#me [data-field="state"]');
  if (!a) {
    setText(st, "unknown");
    st.className = "state";
    setText($('#me [data-field="reason"]'), `Agent ${agent} is not on your floor.`);
    setText($('#me [data-field="time_in_state"]'), "—");
    for (const b of document.querySelectorAll("#me .buttons button")) b.disabled = false;
    return;
  }
  setText($("#me-h"), agent === selfAgent ? "My state" : `Agent ${a.name || agent}`);
  setText(st, a.state);
  st.className = `state state-${a.state}`;
  document.body.dataset.state = a.state;
  const reasons = floor.pause_reasons && floor.pause_reasons.length ? floor.pause_reasons : ["break"];
  const sel = $("#pause-reason");
  if (Array.from(sel.options).map((o) => o.value).join("\n") !== reasons.join("\n")) {
    const keep = sel.value;
    sel.replaceChildren(...reasons.map((r) => el("option", { value: r }, r)));
    if (reasons.includes(keep)) sel.value = keep;
  }
  const btn = (name) => $(`#me button[data-action="${name}"]`);
  if (btn("ready").getAttribute("aria-busy") !== "true") btn("ready").disabled = !(a.state === "LoggedOut" || a.state === "Paused");
  if (btn("pause").getAttribute("aria-busy") !== "true") btn("pause").disabled = a.state === "Paused" || a.state === "LoggedOut";
  if (btn("logout").getAttribute("aria-busy") !== "true") btn("logout").disabled = a.state === "LoggedOut";
  tickMe();
}

function tickMe() {
  const a = me();
  if (!a) return;
  const now = clock.now();
  const inState = Math.max(0, now - (a.since || now));
  const t = $('#me [data-field="time_in_state"]');
  setText(t, fmtDuration(inState));
  setLevel(t, a.state === "Ready" || a.state === "LoggedOut" ? "" : level(inState, (floor.state_thresholds_s || {})[a.state]));
  const r = $('#me [data-field="reason"]');
  if (a.state === "Paused") {
    const over = a.pause_limit_s && inState > a.pause_limit_s;
    setText(r, `${a.reason || "break"}${a.pause_limit_s ? (over ? ` — over the ${fmtDuration(a.pause_limit_s)} limit` : ` (limit ${fmtDuration(a.pause_limit_s)})`) : ""}`);
    setLevel(r, over ? "alarm" : "");
  } else {
    setText(r, a.state === "WrapUp" ? "after-call work" : "");
    setLevel(r, "");
  }
}

// ---------------------------------------------------------------------------------- the screen pop

function campaignFor(p) {
  const camps = floor.campaigns || {};
  if (p.campaign && camps[p.campaign]) return p.campaign;
  for (const [name, c] of Object.entries(camps)) if (c.queue && c.queue === p.queue) return name;
  return null;
}

function showPop(call, state) {
  const fresh = !pop || pop.call_id !== call.call_id;
  if (fresh) {
    pop = { call_id: call.call_id, queue: call.queue, caller_num: call.caller_num || "", caller_name: call.caller_name || "",
            path: call.path || [], entered_at: call.entered_at, answered_at: call.answered_at || null,
            campaign: call.campaign || null, state, disposed: false };
    recPaused = false;
    popField("history").replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 5 }, "Looking up earlier calls…")));
    popField("flags").hidden = true;
    $("#disposition").hidden = true;
    loadContext(pop.call_id);
  } else {
    pop.state = state;
    if (call.answered_at) pop.answered_at = call.answered_at;
    if (call.path && call.path.length) pop.path = call.path;
    if (call.campaign) pop.campaign = call.campaign;
  }
  const box = $("#pop");
  box.hidden = false;
  box.dataset.call = pop.call_id;
  renderPop();
}

function renderPop() {
  if (!pop) return;
  const box = $("#pop");
  box.dataset.state = pop.state;
  box.classList.toggle("ringing", pop.state === "ringing");
  setText(popField("call_state"), { ringing: "Incoming call — ringing", talking: "On the call", ended: "Call ended" }[pop.state] || pop.state);
  setText(popField("caller_num"), pop.caller_num || "unknown number");
  setText(popField("caller_name"), pop.caller_name);
  setText(popField("queue"), pop.queue || "—");
  const path = popField("path");
  const sig = (pop.path || []).join("\u0000");
  if (path.dataset.sig !== sig) {
    path.replaceChildren(...(pop.path && pop.path.length ? pop.path.map((p) => el("li", {}, p)) : [el("li", { class: "muted" }, "direct")]));
    path.dataset.sig = sig;
  }
  $("#recording").hidden = pop.state !== "talking";
  $('#recording [data-action="rec-pause"]').disabled = recPaused;
  $('#recording [data-action="rec-resume"]').disabled = !recPaused;
  setText(popField("recording"), recPaused ? "Recording paused" : "");
  tickPop();
}

function tickPop() {
  if (!pop || !pop.entered_at) return;
  const end = pop.answered_at || (pop.state === "ended" ? pop.ended_at : null) || clock.now();
  const w = popField("wait");
  setText(w, fmtDuration(Math.max(0, end - pop.entered_at)));
  const q = floor.queues[pop.queue];
  setLevel(w, level(end - pop.entered_at, q && q.thresholds ? q.thresholds.longest_wait_s : null));
}

async function loadContext(callId) {
  try {
    const ctx = await get(`/api/v1/calls/${encodeURIComponent(callId)}/context`);
    if (!pop || pop.call_id !== callId) return;
    if (ctx.path && ctx.path.length) pop.path = ctx.path;
    if (!pop.caller_num && ctx.caller_num) pop.caller_num = ctx.caller_num;
    if (!pop.caller_name && ctx.caller_name) pop.caller_name = ctx.caller_name;
    if (!pop.queue && ctx.queue) pop.queue = ctx.queue;
    if (ctx.campaign) pop.campaign = ctx.campaign;
    const flags = [];
    if (ctx.repeat_of) flags.push("Repeat caller: this number called this queue recently");
    if (ctx.message && ctx.message.state === "ready") {
      flags.push(`Left a message (${Math.round(ctx.message.duration_s || 0)} s), played to you before the call-back`);
    }
    setText(popField("flags"), flags.join(" · "));
    popField("flags").hidden = !flags.length;
    const rows = (ctx.history || []).map((h) => el("tr", { dataset: { call: h.call_id } },
      el("td", {}, h.at ? new Date(h.at * 1000).toLocaleString() : "—"),
      el("td", {}, h.queue || "—"), el("td", {}, h.agent || "—"), el("td", {}, h.outcome || "—"),
      el("td", {}, h.disposition || "—")));
    popField("history").replaceChildren(...(rows.length ? rows
      : [el("tr", { class: "empty" }, el("td", { colspan: 5 }, "No earlier calls in the last 30 days."))]));
    renderPop();
    if (pop.state === "ended") showDisposition();
  } catch (e) {
    if (!pop || pop.call_id !== callId) return;
    popField("history").replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 5 }, `History unavailable: ${errText(e)}`)));
  }
}

function showDisposition() {
  const form = $("#disposition");
  const name = pop ? campaignFor(pop) : null;
  const codes = name ? (floor.campaigns[name].dispositions || {}) : {};
  if (!pop || pop.disposed || !Object.keys(codes).length) { form.hidden = true; return; }
  const box = form.querySelector('[data-field="dispositions"]');
  box.replaceChildren(...Object.entries(codes).map(([code, label]) =>
    el("button", { type: "button", dataset: { code }, "aria-label": `Disposition ${code}: ${label}` }, `${code} · ${label}`)));
  form.hidden = false;
  form.dataset.campaign = name;
}

async function dispose(code) {
  const ok = await run("Disposition", async () => {
    const r = await post("/api/v1/dispositions", { agent, code });
    return `Disposition saved: ${r && r.disposition ? r.disposition : code}.`;
  });
  if (ok && pop) { pop.disposed = true; $("#disposition").hidden = true; }
}

async function recording(action) {
  if (!pop) return;
  await run(action === "pause" ? "Pause recording" : "Resume recording", async () => {
    const r = await post(`/api/v1/calls/${encodeURIComponent(pop.call_id)}/recording/${action}`);
    recPaused = r && typeof r.paused === "boolean" ? r.paused : action === "pause";
    renderPop();
    return recPaused ? "Recording paused." : "Recording resumed.";
  });
}

/** Keep the pop in step with the floor (a panel opened while the phone already rings). */
function popFromFloor() {
  const a = me();
  if (!a || !a.call_id) return;
  const c = floor.calls.find((x) => x.call_id === a.call_id);
  if (!c) return;
  if (!pop || pop.call_id !== c.call_id) showPop(c, c.state === "talking" ? "talking" : "ringing");
  else if (pop.state === "ringing" && c.state === "talking") { pop.answered_at = c.answered_at; pop.state = "talking"; renderPop(); }
}

function onEvent(ev) {
  const d = ev.data || {};
  applyEvent(floor, ev);
  if (ev.kind === "call.offered" && d.agent === agent) {
    showPop(d, "ringing");
  } else if (ev.kind === "call.answered" && pop && d.call_id === pop.call_id) {
    pop.state = "talking";
    pop.answered_at = d.at || ev.at;
    renderPop();
  } else if (ev.kind === "call.ended" && pop && d.call_id === pop.call_id) {
    const talked = pop.state === "talking"; // rung out or caller gone while ringing: nothing to wrap up
    pop.state = "ended";
    pop.ended_at = ev.at;
    renderPop();
    if (talked) showDisposition();
    else pop.disposed = true;
    refreshCallbacks();
  } else if (ev.kind === "recording" && pop && d.call_id === pop.call_id) {
    if (d.kind === "paused") recPaused = true;
    else if (d.kind === "resumed") recPaused = false;
    renderPop();
  }
  renderMe();
}

// ---------------------------------------------------------------------------------- callbacks

async function refreshCallbacks() {
  const body = $("#callbacks tbody");
  try {
    const r = await get("/api/v1/callbacks");
    const rows = (r && r.callbacks ? r.callbacks : []).map((c) => el("tr", { dataset: { call: c.call_id } },
      el("td", { class: "num" }, c.number || "—"), el("td", {}, c.queue || "—"),
      el("td", { class: "num" }, c.attempts ?? 0),
      el("td", {}, c.not_before ? new Date(c.not_before * 1000).toLocaleTimeString() : "now")));
    body.replaceChildren(...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colspan: 4 }, "No callbacks waiting."))]));
  } catch (e) {
    body.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: 4 }, `Callbacks unavailable: ${errText(e)}`)));
  }
}

// ---------------------------------------------------------------------------------- start

function setConn(state) {
  const c = $("#conn");
  c.className = `conn ${state}`;
  c.dataset.state = state;
  setText(c, { live: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", offline: "Offline" }[state] || state);
}

async function main() {
  const s = await session();
  if (!s) { goLogin(); return; }
  const asked = new URLSearchParams(window.location.search).get("agent");
  agent = asked || s.agent;
  selfAgent = s.agent || null;
  if (!agent) {
    status("Choose an agent: open this page from the wallboard or add ?agent=<name>.", "error");
    return;
  }
  document.body.dataset.agent = agent;
  setText($("#who"), `${s.name || s.user} (${s.role})`);
  const supervise = Array.isArray(s.scopes) && s.scopes.includes("supervise");
  $("#wallboard-link").hidden = !supervise;
  $("#supervise").hidden = !(supervise && agent !== s.agent);
  $("#signout").addEventListener("click", async () => { await signOut(); goLogin(); });

  for (const b of document.querySelectorAll("#me button[data-action]")) {
    b.addEventListener("click", async () => {
      b.disabled = true;
      b.setAttribute("aria-busy", "true");
      try { await stateAction(b.dataset.action); } finally {
        b.removeAttribute("aria-busy");
        b.disabled = false;
        renderMe();
      }
    });
  }
  $('#recording [data-action="rec-pause"]').addEventListener("click", () => recording("pause"));
  $('#recording [data-action="rec-resume"]').addEventListener("click", () => recording("resume"));
  $("#disposition").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-code]");
    if (b) dispose(b.dataset.code);
  });
  $("#disposition").addEventListener("submit", (ev) => ev.preventDefault());
  $('#pop [data-action="dismiss"]').addEventListener("click", () => { $("#pop").hidden = true; pop = null; });

  const live = new Live({
    onSnapshot: (f) => { floor = normalise(f); clock.sync(floor.at); renderMe(); popFromFloor(); },
    onFloor: (f) => { floor = normalise(f); clock.sync(floor.at); renderMe(); popFromFloor(); },
    onEvent,
    onState: setConn,
    onUnauthorised: () => goLogin(),
    probe: stillSignedIn,
  });
  live.start();
  renderMe();
  refreshCallbacks();
  setInterval(() => { tickMe(); tickPop(); }, 1000);
  setInterval(refreshCallbacks, 15000);
}

main().catch((e) => status(`Could not start the agent panel: ${errText(e)}`, "error"));
