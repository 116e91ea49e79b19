"""Reload without restart, on the real Asterisk: a new agent and a new queue serve a caller who was
already waiting; Asterisk's modules are reloaded under the call; a bad config changes nothing."""

from __future__ import annotations

import signal
from pathlib import Path

import yaml

from callcenter.lab.asterisk import Lab

from .conftest import DaemonProc, Floor


async def test_reload_adds_an_agent_and_a_queue_while_a_caller_waits(daemon_config, floor: Floor,
                                                                     tmp_path: Path) -> None:
    """SIGHUP with dave (new agent) and vip (new queue, sales overflows into it): the waiting caller is served."""
    lab = Lab.default()
    rendered = tmp_path / "asterisk"
    path = daemon_config(daemon__asterisk_config_dir=str(rendered),
                         daemon__asterisk_reload=lab.rx_argv())
    d = DaemonProc(path).start()
    try:
        d.wait_for("ami.resynced", 20)
        mark = d.mark()
        call = await floor.call_in("5550177")
        await floor.press(d, call, "1", "main", mark)
        queued = await d.until("call.queued", 15, after=mark, queue="sales")
        call_id = queued["call_id"]

        bad = yaml.safe_load(path.read_text())
        bad["queues"]["sales"]["strategy"] = "fastest"
        good = yaml.safe_load(path.read_text())
        good["agents"]["dave"] = {"phone": "2004"}
        good["queues"]["vip"] = {"members": ["dave"], "ring_timeout_s": 8, "fallback": {"hangup": ["goodbye"]}}
        good["queues"]["sales"]["overflow"] = {"queue": "vip", "after_s": 1}

        path.write_text(yaml.safe_dump(bad))
        m = d.mark()
        d.proc.send_signal(signal.SIGHUP)
        refused = await d.until("config.reload_refused", 15, after=m)
        assert any(str(p).startswith("queues.sales.strategy") for p in refused["problems"])

        path.write_text(yaml.safe_dump(good))
        m = d.mark()
        d.proc.send_signal(signal.SIGHUP)
        done = await d.until("config.reloaded", 30, after=m)
        assert done["added_agents"] == ["dave"] and done["added_queues"] == ["vip"]
        assert done["asterisk"] == "reloaded", done
        assert (rendered / "extensions.conf").is_file()
        assert d.proc.poll() is None and not d.find("call.ended", call_id=call_id)  # the caller is still there

        desk = floor.phones.__dict__.setdefault("desk", {})
        acc = desk.get("2004") or desk.setdefault("2004", floor.phones.agent("2004", d.cfg.phones["2004"].secret))
        acc.auto_answer = True
        floor.accounts.append(acc)
        await floor.wait(lambda: acc.registered, 10, "2004 registered")
        await floor.feature(acc, "*61")
        await d.until("agent.state", 10, after=m, agent="dave", state="Ready")
        await d.until("call.overflow", 15, after=m, call_id=call_id, queue="vip")
        await d.until("call.answered", 20, after=m, call_id=call_id, agent="dave")
        call.hangup()
        await d.until("call.ended", 10, after=m, call_id=call_id, outcome="completed")
        await floor.feature(acc, "*62")
    finally:
        d.stop()
