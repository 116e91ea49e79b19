"""The daemon (``callcenter run``, a subprocess) SIGKILLed in the middle of a burst of 1,000 events, then
restarted: every event journalled before the kill reaches the receiver at least once with its id, each
ordering key's events in order; the outbox and the journal agree (one transaction)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from callcenter.bench.webhooks import Receiver, build_config, drive, outbox, start_daemon, stop_daemon


def _first_receipts(rx: Receiver) -> list[str]:
    return rx.delivered_ids()


async def test_sigkill_mid_burst_loses_nothing_and_keeps_each_keys_order(tmp_path: Path) -> None:
    """1,000 agent operations at 500/s over 25 agents to a receiver answering in 30 ms (8 at a time: a backlog
    builds); SIGKILL once 500 are answered (deliveries in flight and pending); restart; all rows written before the kill delivered (same ids), per-agent order kept, the agents
    table == the last outbox state of each agent."""
    rx = await Receiver(delay_s=0.03).start()
    cfg = build_config(tmp_path, rx.url, 25)
    base = f"http://127.0.0.1:{cfg['http']['port']}"
    proc = await start_daemon(cfg, tmp_path)
    half = asyncio.Event()
    burst = asyncio.create_task(drive(base, list(cfg["agents"]), 1000, 500, half, 500))
    try:
        await asyncio.wait_for(half.wait(), 30)
        delivered_at_kill = len(rx.delivered_ids())
        assert stop_daemon(proc, kill=True) == -9
        ops = await burst
    finally:
        stop_daemon(proc, kill=True)
    answered = sum(1 for o in ops if o[3] == 200)
    assert 500 <= answered < 1000, answered  # killed mid-burst
    assert delivered_at_kill > 0
    db_path = cfg["daemon"]["database"]
    before = outbox(db_path)
    db = sqlite3.connect(db_path)
    agents = dict(db.execute("SELECT agent, state FROM agents").fetchall())
    bodies = dict(db.execute("SELECT id, body FROM webhook_outbox").fetchall())
    db.close()
    assert len(before) >= 400 and len(before) > delivered_at_kill  # some were still to be delivered
    last_state: dict[str, str] = {}
    for _, msg_id, _, _, _ in before:
        data = json.loads(bodies[msg_id])["data"]
        last_state[data["agent"]] = data["state"]
    assert {a: agents[a] for a in last_state} == last_state  # the journal's rows and the outbox's: together

    rx.delay_s = 0.0
    proc = await start_daemon(cfg, tmp_path, log_name="daemon2.log")
    try:
        ids = {r[1] for r in before}
        assert await rx.wait_for(lambda r: ids <= set(r.delivered_ids()), 30), len(ids - set(rx.delivered_ids()))
    finally:
        assert stop_daemon(proc) == 0
        await rx.close()
    order = {msg_id: i for i, msg_id in enumerate(_first_receipts(rx))}
    by_key: dict[str, list[int]] = {}
    for _, msg_id, key, _, _ in before:  # in n order
        by_key.setdefault(key, []).append(order[msg_id])
    assert all(seq == sorted(seq) for seq in by_key.values())
    assert all(r.verified for r in rx.receipts)
    print(f"answered before the kill {answered}, rows written {len(before)}, delivered at the kill {delivered_at_kill},"
          f" receipts {len(rx.receipts)}, repeats {len(rx.receipts) - len(rx.delivered_ids())}")
