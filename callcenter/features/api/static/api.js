// Same-origin JSON API client: the browser session (cookie + X-CSRF-Token on writes) or a kiosk
// token (Authorization: Bearer), and the error answers mapped to readable messages.

const TOKEN_KEY = "callcenter.kiosk_token";
let csrf = null;
let token = null;

/** Take a kiosk token from ?token=..., keep it for this tab only and drop it from the address bar. */
export function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const t = url.searchParams.get("token");
  if (t) {
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch (_) { /* storage off: memory only */ }
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    token = t;
  } else {
    try { token = sessionStorage.getItem(TOKEN_KEY); } catch (_) { token = null; }
  }
  return token;
}

export function kioskToken() { return token; }
export function setCsrf(value) { csrf = value || null; }

export class ApiError extends Error {
  constructor(status, code, detail, body) {
    super(describe(status, code, detail, body));
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body || {};
  }
}

const MESSAGES = {
  bad_credentials: "Wrong login or password.",
  missing_scope: "Not allowed: your access does not include this action.",
  not_in_team: "Not allowed: this agent is not in your team.",
  not_self: "Not allowed: you may only act on yourself.",
  unknown_agent: "Unknown agent.",
  no_phone: "Not possible: you have no desk phone configured to ring.",
  csrf: "Refused: the security token of this page is stale — reload the page.",
  agent_not_on_call: "The agent is not on a call.",
  illegal_transition: "Not possible in the agent's current state.",
  not_recording: "This call is not being recorded.",
  unauthenticated: "Please sign in.",
};

export function describe(status, code, detail, body) {
  if (status === 423 || code === "locked") {
    const s = body && Number(body.retry_after_s);
    return s ? `Account locked after too many failed sign-ins. Try again in ${Math.ceil(s / 60)} min.`
      : "Account locked after too many failed sign-ins.";
  }
  let msg = (code && MESSAGES[code]) || null;
  if (!msg) {
    if (status === 401) msg = MESSAGES.unauthenticated;
    else if (status === 403) msg = "Not allowed.";
    else if (status === 404) msg = "Not found.";
    else if (status === 409) msg = "Conflict with the current state.";
    else if (status === 0) msg = "The server cannot be reached.";
    else msg = `Request failed (${status}).`;
  }
  if (detail && typeof detail === "string") msg += ` (${detail})`;
  return `${status ? status + " " : ""}${msg}`;
}

/** The sign-in page, coming back to this page afterwards. */
export function loginUrl() {
  const here = window.location.pathname + window.location.search;
  return `/ui/login.html?next=${encodeURIComponent(here)}`;
}

export function goLogin() { window.location.assign(loginUrl()); }

/** fetch() a JSON API path. Throws ApiError; a 401 of a browser session sends to the sign-in page
 *  (unless opts.noRedirect). */
export async function api(method, path, body, opts = {}) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers["Authorization"] = `Bearer ${token}`;
  if (method !== "GET" && method !== "HEAD" && csrf) headers["X-CSRF-Token"] = csrf;
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network", String(e && e.message || e));
  }
  let data = null;
  if (resp.status !== 204) {
    const text = await resp.text();
    if (text) { try { data = JSON.parse(text); } catch (_) { data = { detail: text.slice(0, 200) }; } }
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data && data.error, data && data.detail, data);
    if (resp.status === 401 && !token && !opts.noRedirect) goLogin();
    throw err;
  }
  return data;
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body, opts) => api("POST", path, body, opts);

/** The signed-in session (sets the CSRF token), or null when not signed in. */
export async function session() {
  try {
    const s = await api("GET", "/api/v1/session", undefined, { noRedirect: true });
    setCsrf(s && s.csrf);
    return s;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 404)) return null;
    throw e;
  }
}

/** Still allowed in? false only on a definite 401 (signed out, or a restarted daemon forgot the
 *  session); network errors and other answers count as yes (the stream keeps retrying). */
export async function stillSignedIn() {
  try {
    await api("GET", "/api/v1/session", undefined, { noRedirect: true });
    return true;
  } catch (e) {
    return !(e instanceof ApiError && e.status === 401);
  }
}

export async function signOut() {
  try { await api("DELETE", "/api/v1/session", undefined, { noRedirect: true }); } catch (_) { /* gone anyway */ }
  setCsrf(null);
}

// ---- small DOM helpers: text only, never HTML from data ---------------------------------------

/** el("td", {class: "num", dataset: {field: "x"}}, "text", child, ...) */
export function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") n.className = v;
    else if (k === "dataset") Object.assign(n.dataset, v);
    else if (k === "text") n.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

export function setText(node, text) {
  const t = text === null || text === undefined ? "" : String(text);
  if (node && node.textContent !== t) node.textContent = t;
}

/** A status line (role=status): message, kind "ok" | "error" | "". */
export function status(msg, kind = "") {
  const s = document.getElementById("status");
  if (!s) return;
  s.className = kind;
  s.textContent = msg;
}

// ---- formatting -------------------------------------------------------------------------------

export function fmtDuration(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "—";
  return s < 100 ? `${Math.round(s)} s` : fmtDuration(s);
}

export function fmtPct(x) {
  if (x === null || x === undefined || !isFinite(x)) return "—";
  return `${(x * 100).toFixed(x < 0.1 && x > 0 ? 1 : 0)} %`;
}

/** "ok" | "warn" | "alarm" | "" of value against [warn, alarm]; lowerIsWorse for service level. */
export function level(value, thresholds, lowerIsWorse = false) {
  if (value === null || value === undefined || !Array.isArray(thresholds) || thresholds.length < 2) return "";
  const [warn, alarm] = thresholds;
  if (lowerIsWorse) {
    if (alarm !== null && value < alarm) return "alarm";
    if (warn !== null && value < warn) return "warn";
    return "ok";
  }
  if (alarm !== null && value >= alarm) return "alarm";
  if (warn !== null && value >= warn) return "warn";
  return "ok";
}

export function setLevel(node, lvl) {
  for (const c of ["lvl-ok", "lvl-warn", "lvl-alarm"]) node.classList.toggle(c, lvl !== "" && c === `lvl-${lvl}`);
  if (lvl) node.dataset.level = lvl; else delete node.dataset.level;
}

/** Server time (epoch s) from the local clock, corrected by the offset of the server's "at". */
export class Clock {
  constructor() { this.offset = 0; }
  sync(serverAt) { if (typeof serverAt === "number") this.offset = serverAt - Date.now() / 1000; }
  now() { return Date.now() / 1000 + this.offset; }
}
