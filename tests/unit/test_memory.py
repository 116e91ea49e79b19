"""The daemon's call path keeps no memory per finished call (the in-process half of `bench load --leak`)."""

from __future__ import annotations

import asyncio
import copy
import gc
import tracemalloc
from pathlib import Path
from typing import Any

import yaml

from callcenter import config, events as ev
from callcenter.features.acd import model as acd
from callcenter.features.acd.service import AcdService
from callcenter.journal import Journal
from callcenter.persistence import DbThread
from callcenter.protocol.ami import Message
from callcenter.tasks import Supervisor
from callcenter.telemetry import Metrics

BASE = yaml.safe_load(open("tests/asterisk/lab.yaml"))


class _NullAmi:
    """Answers every action with Success and remembers nothing (unlike FakeAmi, which records)."""

    def new_action_id(self) -> str:
        return "x"

    def send(self, name: str, headers: Any = (), *, action_id: str | None = None) -> asyncio.Future[Message]:
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        fut.set_result(Message((("Response", "Success"),)))
        return fut

    async def action(self, name: str, headers: Any = (), *, action_id: str | None = None,
                     timeout: float = 10.0) -> Message:
        return await self.send(name, headers)


async def test_calls_through_the_core_journal_and_metrics_leave_no_python_memory_behind(tmp_path: Path) -> None:
    """3,000 calls (queued, rung, answered, ended) through AcdService, the journal on its thread and
    the metrics: Python memory after call 3,000 is within 64 KiB of after call 1,000."""
    cfg = config.parse(copy.deepcopy(BASE))
    bus, db = ev.Bus(), DbThread("journal")
    journal = Journal(tmp_path / "j.sqlite3")
    journal.subscribe(bus, db)
    Metrics().subscribe(bus)
    now = [1000.0]
    svc = AcdService(cfg, bus, _NullAmi(), Supervisor(lambda n, e: None), clock=lambda: now[0])
    svc.submit(acd.Resync(()))
    svc.submit(acd.Login("alice"))
    tracemalloc.start()
    try:
        marks = []
        for i in range(3000):
            cid = f"{i:016x}"
            bus.publish(ev.CallStarted(cid, f"u{i}", f"PJSIP/trunk-{i}", "5550100", "Ann", "5551000", now[0], "local"))
            bus.publish(ev.CallQueued(cid, "sales", now[0]))
            svc.submit(acd.CallQueued(cid, "sales", f"PJSIP/trunk-{i}", "5550100", entered_at=now[0]))
            for _ in range(3):
                await asyncio.sleep(0)
            svc.submit(acd.OfferAnswered(cid, "alice"))
            svc.submit(acd.AgentHungUp("alice", cid))
            now[0] += 3600
            svc.submit(acd.Tick())
            if i + 1 in (1000, 3000):
                await db.run(lambda: None)  # the journal has written everything so far
                gc.collect()
                marks.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
        db.close()
    assert svc.state.agents["alice"].state == acd.AgentState.READY and not svc.state.calls
    assert marks[1] - marks[0] < 64 * 1024, marks
