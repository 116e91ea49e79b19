// Sign-in: POST /api/v1/session, then on to ?next= (a path on this site only) or the page for the role.

import { ApiError, post, status } from "./api.js";

/** ``next`` if it is a path of this site (never another origin: "//host", "/\\host", "http:..."). */
export function safeNext(next) {
  if (!next || typeof next !== "string") return null;
  if (!next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return null;
  try {
    const u = new URL(next, window.location.origin);
    if (u.origin !== window.location.origin) return null;
    if (u.pathname === "/ui/login.html") return null;
    return u.pathname + u.search + u.hash;
  } catch (_) {
    return null;
  }
}

function landing(body) {
  return body && body.role === "agent" ? "/ui/agent.html" : "/ui/wallboard.html";
}

async function submit(ev) {
  ev.preventDefault();
  const form = ev.target;
  const login = form.login.value.trim();
  const password = form.password.value;
  if (!login || !password) {
    status("Enter your login and password.", "error");
    (login ? form.password : form.login).focus();
    return;
  }
  const btn = document.getElementById("submit");
  btn.disabled = true;
  status("Signing in…");
  try {
    const body = await post("/api/v1/session", { login, password }, { noRedirect: true });
    status(`Signed in as ${body && (body.name || body.user) ? body.name || body.user : login}.`, "ok");
    const next = safeNext(new URLSearchParams(window.location.search).get("next"));
    window.location.assign(next || landing(body));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) status("Wrong login or password.", "error");
    else if (e instanceof ApiError && e.status === 423) status(e.message, "error");
    else status(e instanceof ApiError ? e.message : `Sign-in failed: ${e}`, "error");
    form.password.value = "";
    form.password.focus();
  } finally {
    btn.disabled = false;
  }
}

document.getElementById("login").addEventListener("submit", submit);
