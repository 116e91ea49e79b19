// The floor model both pages keep: the last snapshot/floor message, with the stream's events
// applied at once between two floor messages (a queued caller shows before the next refresh).

const CALL_STATES = ["waiting", "ringing", "talking"];

export function emptyFloor() {
  return { at: Date.now() / 1000, seq: 0, queues: {}, agents: {}, calls: [], campaigns: {},
           state_thresholds_s: {}, pause_reasons: [], window_s: 3600 };
}

export function normalise(floor) {
  const f = Object.assign(emptyFloor(), floor || {});
  f.calls = Array.isArray(f.calls) ? f.calls.slice() : [];
  return f;
}

function recount(floor, queue) {
  const q = floor.queues[queue];
  if (!q) return;
  const n = { waiting: 0, ringing: 0, talking: 0 };
  for (const c of floor.calls) if (c.queue === queue && n[c.state] !== undefined) n[c.state] += 1;
  Object.assign(q, n);
}

function upsertCall(floor, call) {
  const i = floor.calls.findIndex((c) => c.call_id === call.call_id);
  if (i >= 0) floor.calls[i] = Object.assign({}, floor.calls[i], call);
  else floor.calls.push(call);
  return floor.calls[i >= 0 ? i : floor.calls.length - 1];
}

/** Apply one stream event to ``floor`` (mutates it). Returns the kind applied. */
export function applyEvent(floor, ev) {
  const d = ev.data || {};
  switch (ev.kind) {
    case "call.queued":
      upsertCall(floor, { call_id: d.call_id, queue: d.queue, agent: null, state: "waiting",
                          entered_at: d.entered_at ?? ev.at, answered_at: null,
                          caller_num: d.caller_num || "", caller_name: d.caller_name || "" });
      recount(floor, d.queue);
      break;
    case "call.offered": {
      const c = upsertCall(floor, { call_id: d.call_id, queue: d.queue, agent: d.agent, state: "ringing",
                                    entered_at: d.entered_at ?? ev.at, caller_num: d.caller_num || "",
                                    caller_name: d.caller_name || "" });
      if (c.answered_at === undefined) c.answered_at = null;
      recount(floor, d.queue);
      break;
    }
    case "call.answered": {
      const c = floor.calls.find((x) => x.call_id === d.call_id);
      if (c) {
        c.state = "talking"; c.agent = d.agent || c.agent; c.answered_at = d.at ?? ev.at;
        recount(floor, c.queue);
      }
      break;
    }
    case "call.ended": {
      const c = floor.calls.find((x) => x.call_id === d.call_id);
      floor.calls = floor.calls.filter((x) => x.call_id !== d.call_id);
      if (c) recount(floor, c.queue);
      break;
    }
    case "agent.state": {
      const a = floor.agents[d.agent];
      if (a) {
        const before = a.state;
        if (before !== d.state) {
          a.since = d.at ?? ev.at;
          for (const qn of a.queues || []) {
            const q = floor.queues[qn];
            if (q && q.agents) {
              if (q.agents[before] > 0) q.agents[before] -= 1;
              q.agents[d.state] = (q.agents[d.state] || 0) + 1;
            }
          }
        }
        a.state = d.state;
        a.reason = d.reason || "";
        a.call_id = d.call_id ?? null;
        if (d.state !== "Paused") a.pause_limit_s = null;
      }
      break;
    }
    default:
      break;
  }
  if (typeof ev.seq === "number") floor.seq = ev.seq;
  return ev.kind;
}

export function callsIn(floor, states = CALL_STATES) {
  return floor.calls.filter((c) => states.includes(c.state));
}
