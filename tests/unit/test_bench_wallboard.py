"""``callcenter bench wallboard`` run tiny: the real daemon, the fake Asterisk replaying the recorded events,
a few viewers."""

from __future__ import annotations

from callcenter.bench import wallboard


def test_templates_rewrite_every_identifier_of_the_recorded_call():
    """A replayed DialBegin names the new call, channels and phone, and none of the recorded ones."""
    tpl = wallboard.Templates.from_recording(wallboard.load_recording())
    text = tpl.event("dial_begin", caller="PJSIP/trunk-pstn-000000aa", cuid="1.1", leg="PJSIP/3007-000000ab",
                     luid="1.2", call="0123456789abcdef", entered="1.000", queue="CC_QUEUE=wall", phone="3007",
                     num="5550001", name="X").decode()
    assert "DestChannel: PJSIP/3007-000000ab\r\n" in text and "ChanVariable: CC_CALL_ID=0123456789abcdef\r\n" in text
    assert "ChanVariable: CC_ROLE=caller\r\n" in text and "CC_QUEUE=wall" in text
    assert "trunk-pstn-00000007" not in text and "a8f1320f13344edf" not in text and "3001" not in text


def test_tiny_run_times_every_event_for_every_viewer():
    """5 viewers, 900 events at 300/s: the JSON keys, positive latencies, every viewer got every event."""
    out = wallboard.run_bench(viewers=5, events=900, rate=300, callers=20, agents=10, seed=3)
    for key in ("p95_ms", "p99_ms", "cpu_share", "db_queries_per_viewer", "db_method", "ami_actions_per_viewer",
                "events_replayed", "stream_messages_received", "viewers_connected", "floor_per_viewer_per_s",
                "targets_met"):
        assert key in out, key
    assert out["events_replayed"] == 900 and out["viewers_connected"] == 5
    assert out["timed_ami_events"] > 0 and out["latency_pairs"] == 5 * out["timed_ami_events"]
    assert 0 < out["p95_ms"] <= out["p99_ms"] < 5000
    assert out["unmatched_expectations"] == 0 and out["missing_pairs"] == 0
    assert out["every_viewer_got_every_event"] and out["stream_events"] > 0
    assert out["stream_messages_received"] >= 5 * out["stream_events"]
    assert out["floor_per_viewer_per_s"] > 0.3  # a floor about every second
    assert out["cpu_share_without"] > 0 and out["sim_errors"] == {}
