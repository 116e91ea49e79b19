"""The bus events webhooks need that other features publish: the dialler's disposition (with its call id)."""

from __future__ import annotations

from callcenter import events as ev
from tests.unit.test_dialer_live import CAMP, _response, rig_factory  # noqa: F401 - the fixture


async def test_a_disposition_is_published_with_the_dialled_calls_id(rig_factory) -> None:  # noqa: F811
    """dispose() publishes DispositionSet(agent, campaign, lead, disposition, call id), once."""
    rig = rig_factory({"out": CAMP})
    await rig.dialer.apply_config(rig.cfg)
    rig.leads("out", 1)
    await rig.dialer.tick()
    (lid,), aid = rig.line_ids(), rig.ami.originates()[0]["ActionID"]
    rig.dialer.on_originate_response(_response(aid, True))
    rig.dialer.on_queued(lid, "c1", lambda _s, fn: None)
    rig.dialer.on_call_answered("c1", "alice")
    assert await rig.dialer.dispose("alice", "1", rig.now) == "sale"
    assert await rig.dialer.dispose("alice", "1", rig.now) is None
    got = [e for e in rig.published if isinstance(e, ev.DispositionSet)]
    assert got == [ev.DispositionSet("alice", "out", got[0].lead_id, "sale", rig.now, "c1")]
    assert rig.dialer.last_call == {}
