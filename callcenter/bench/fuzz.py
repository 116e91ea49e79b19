"""``callcenter bench fuzz``: the codec fuzz properties of ``tests/unit/test_fuzz_codecs.py``, run for longer.

Each property takes arbitrary bytes (a soup of protocol tokens and random bytes, so the fuzzer gets
past the framing) cut into arbitrary chunks and checks, for the AMI, FastAGI and AudioSocket
parsers:

- nothing but the codec's own protocol error is ever raised;
- the parser's buffers stay within the codec's limits after every ``feed`` (memory bounded);
- the events do not depend on how the bytes were cut (no state lost at a chunk boundary);
- the encoders round-trip through the parsers and refuse CR, LF and NUL in AMI/AGI values.

"No hang" is hypothesis's per-example deadline: work is bounded per byte fed.

``callcenter bench fuzz --seconds N [--json]`` runs the properties round-robin with hypothesis until
N seconds are up and prints the examples run, the failures (with the falsifying input) and the peak
RSS. It needs ``hypothesis`` (the ``test`` extra).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from callcenter.protocol import agi, ami, audiosocket

__all__ = ["PROPERTIES", "main", "run", "chunked",
           "ami_stream", "agi_stream", "audiosocket_stream", "prop_ami_feed", "prop_agi_feed",
           "prop_audiosocket_feed", "prop_ami_round_trip", "prop_ami_unsafe", "prop_agi_round_trip",
           "prop_agi_unsafe", "prop_audiosocket_round_trip"]

COUNTS: dict[str, int] = {}  # examples run, per property (the bench's own counter)

# ------------------------------------------------------------------ inputs

_AMI_TOKENS = [b"Asterisk Call Manager/6.0.0\r\n", b"\r\n", b"\r\n\r\n", b"\r", b"\n", b": ", b":", b" ",
               b"Event: Newchannel", b"Response: Success", b"ActionID: 1", b"Channel: PJSIP/x-1",
               b"ChanVariable: CC_ROLE=caller", b"Variable: A=b=c", b"bad line", b"\x00", b"\xff\xfe",
               b"\xc3\xa9", b"Output: ", b"--END COMMAND--", b"x" * 300]
_AGI_TOKENS = [b"agi_network: yes\n", b"agi_request: agi://127.0.0.1/ivr\n", b"agi_channel: PJSIP/t-1\n",
               b"agi_uniqueid: 1.2\n", b"agi_callerid: ", b"agi_calleridname: ", b"agi_dnid: ",
               b"agi_context: cc\n", b"agi_arg_1: x\n", b"agi_arg_999: y\n", b"agi_x: y\n", b"\n", b"\r\n",
               b"200 result=0\n", b"200 result=-1\n", b"200 result=1 (timeout) endpos=5\n", b"520-Invalid\n",
               b"520 End of proper usage.\n", b"HANGUP\n", b"511 Command Not Permitted\n", b"200 ",
               b"result=", b"(", b")", b"\x00", b"\xff", b": ", b"x" * 200]


def _audiosocket_tokens() -> list[bytes]:
    u = uuid.UUID(int=0x1234)
    return [audiosocket.encode_uuid(u), audiosocket.encode_audio(b"\x01\x00" * 160), audiosocket.encode_hangup(),
            b"\x03\x00\x015", b"\x03\x00\x01x", b"\x03\x00\x02", b"\xff\x00\x00", b"\xff\x00\x02\x01\x02",
            b"\x10\x00\x03", b"\x10\x10\x00", b"\x10\x10\x02", b"\x01\x00\x0f", b"\x10", b"\x00", b"\x42"]


def _soup(st: Any, tokens: list[bytes]) -> Any:
    piece = st.one_of(st.sampled_from(tokens), st.binary(max_size=24))
    return st.lists(piece, max_size=40).map(b"".join)


def ami_stream(st: Any) -> Any:
    """Mostly a banner and AMI-like lines; sometimes raw bytes."""
    banner = st.sampled_from([b"Asterisk Call Manager/6.0.0\r\n", b""])
    return st.one_of(st.tuples(banner, _soup(st, _AMI_TOKENS)).map(b"".join), st.binary(max_size=600))


def agi_stream(st: Any) -> Any:
    return st.one_of(_soup(st, _AGI_TOKENS), st.binary(max_size=600))


def audiosocket_stream(st: Any) -> Any:
    return st.one_of(_soup(st, _audiosocket_tokens()), st.binary(max_size=600))


def cuts(st: Any) -> Any:
    """Where to cut the stream: positions (reduced modulo its length) of chunk boundaries."""
    return st.lists(st.integers(min_value=0, max_value=10_000), max_size=30)


def chunked(data: bytes, positions: list[int]) -> list[bytes]:
    if not data:
        return [b""]
    at = sorted({p % len(data) for p in positions} | {0, len(data)})
    return [data[a:b] for a, b in zip(at, at[1:])]


# ------------------------------------------------------------------ feeding


def _feed_all(parser: Any, chunks: list[bytes], error: type[Exception],
              check: Callable[[Any], None]) -> tuple[list[Any], bool]:
    """Feed every chunk; the events until the codec's error (if any) and whether it came."""
    events: list[Any] = []
    for c in chunks:
        try:
            events += parser.feed(c)
        except error:
            return events, True
        check(parser)
    return events, False


def _ami_bounded(p: ami.AmiParser) -> None:
    limit = 256 if p.banner is None else ami.MAX_MESSAGE
    assert len(p._buf) <= limit, f"AMI buffer {len(p._buf)} > {limit}"


def _agi_bounded(p: agi.AgiParser) -> None:
    assert len(p._buf) <= max(agi.MAX_ENV, agi.MAX_LINE), len(p._buf)
    assert sum(len(k) + len(v) for k, v in p._env.items()) <= agi.MAX_ENV
    assert p._usage_size <= agi.MAX_USAGE


def _as_bounded(p: audiosocket.AudioSocketParser) -> None:
    assert len(p._buf) < 3 + audiosocket.MAX_PAYLOAD, len(p._buf)


def prop_ami_feed(data: bytes, positions: list[int]) -> None:
    """Any bytes in any chunks: only AmiProtocolError, bounded buffer, same messages as in one piece."""
    COUNTS["ami_feed"] = COUNTS.get("ami_feed", 0) + 1
    split, err = _feed_all(ami.AmiParser(), chunked(data, positions), ami.AmiProtocolError, _ami_bounded)
    whole, err1 = _feed_all(ami.AmiParser(), [data], ami.AmiProtocolError, _ami_bounded)
    # Limits are checked per feed (a too-long banner is refused only when seen without its CRLF),
    # so only streams well inside the limits must give the same verdict in every chunking.
    if len(data) <= 256:
        assert err == err1, (err, err1)
    if not err and not err1:
        assert split == whole


def prop_agi_feed(data: bytes, positions: list[int]) -> None:
    """Any bytes in any chunks: only AgiProtocolError, bounded buffers, same events as in one piece."""
    COUNTS["agi_feed"] = COUNTS.get("agi_feed", 0) + 1
    split, err = _feed_all(agi.AgiParser(), chunked(data, positions), agi.AgiProtocolError, _agi_bounded)
    whole, err1 = _feed_all(agi.AgiParser(), [data], agi.AgiProtocolError, _agi_bounded)
    assert err == err1, (err, err1)
    if not err:
        assert split == whole


def prop_audiosocket_feed(data: bytes, positions: list[int]) -> None:
    """Any bytes in any chunks: only AudioSocketProtocolError (then every later feed raises it too),
    buffer under one frame, same events as in one piece."""
    COUNTS["audiosocket_feed"] = COUNTS.get("audiosocket_feed", 0) + 1
    p = audiosocket.AudioSocketParser()
    split, err = _feed_all(p, chunked(data, positions), audiosocket.AudioSocketProtocolError, _as_bounded)
    whole, err1 = _feed_all(audiosocket.AudioSocketParser(), [data], audiosocket.AudioSocketProtocolError,
                            _as_bounded)
    assert err == err1, (err, err1)
    assert split == whole or err  # after an error, events before it may differ by where it was cut
    if err:
        try:
            p.feed(b"\x10\x00\x00")
        except audiosocket.AudioSocketProtocolError:
            pass
        else:
            raise AssertionError("a poisoned AudioSocket parser accepted more bytes")


# ------------------------------------------------------------------ round trips

_SAFE_CHARS = {"blacklist_characters": "\r\n\x00", "blacklist_categories": ("Cs",)}


def ami_actions(st: Any) -> Any:
    key = st.from_regex(r"\A[A-Za-z0-9_()-]{1,64}\Z")
    value = st.text(st.characters(**_SAFE_CHARS), max_size=80)
    return st.lists(st.tuples(key, st.lists(st.tuples(key, value), max_size=8)), min_size=1, max_size=5)


def prop_ami_round_trip(actions: list[tuple[str, list[tuple[str, str]]]], positions: list[int]) -> None:
    """encode_action -> AmiParser (in any chunks) gives back every action, headers in order."""
    COUNTS["ami_round_trip"] = COUNTS.get("ami_round_trip", 0) + 1
    data = b"Asterisk Call Manager/6.0.0\r\n" + b"".join(ami.encode_action(a, h) for a, h in actions)
    p = ami.AmiParser()
    msgs = [m for c in chunked(data, positions) for m in p.feed(c)]
    assert [m.headers for m in msgs] == [(("Action", a), *h) for a, h in actions]


def prop_ami_unsafe(prefix: str, bad: str, suffix: str) -> None:
    """A CR, LF or NUL anywhere in an AMI value (or the action name) is refused by the encoder."""
    COUNTS["ami_unsafe"] = COUNTS.get("ami_unsafe", 0) + 1
    for action, headers in (("Originate", [("CallerID", prefix + bad + suffix)]), (prefix + bad + suffix, [])):
        try:
            ami.encode_action(action, headers)
        except ami.UnsafeValue:
            continue
        raise AssertionError(f"encoded an unsafe AMI value {prefix + bad + suffix!r}")


def agi_sessions(st: Any) -> Any:
    value = st.text(st.characters(**_SAFE_CHARS), max_size=60)
    env = st.fixed_dictionaries({"agi_request": st.just("agi://127.0.0.1:4573/ivr"),
                                 "agi_channel": value, "agi_callerid": value, "agi_calleridname": value,
                                 "agi_context": value},  # caller ID is followed by a fixed key, as from Asterisk
                                optional={"agi_dnid": value, "agi_uniqueid": value, "agi_extension": value})
    response = st.one_of(
        st.tuples(st.sampled_from([200, 510, 511]), st.from_regex(r"\A-?[0-9]{0,4}\Z"),
                  st.text(st.characters(blacklist_characters="\r\n\x00)", blacklist_categories=("Cs",)),
                          max_size=20), st.sampled_from(["", "endpos=1234"])))
    return st.tuples(env, st.lists(st.text(st.characters(**_SAFE_CHARS), max_size=30), max_size=6),
                     st.lists(response, max_size=5))


def _env_bytes(env: dict[str, str], args: list[str]) -> bytes:
    keys = sorted(env, key=lambda k: agi.ENV_ORDER.index(k) if k in agi.ENV_ORDER else len(agi.ENV_ORDER))
    lines = [f"{k}: {env[k]}" for k in keys] + [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
    return ("\n".join(lines) + "\n\n").encode()


def prop_agi_round_trip(session: tuple[dict[str, str], list[str], list[tuple[int, str, str, str]]],
                        positions: list[int]) -> None:
    """An environment and responses as Asterisk writes them parse back to the same values, in any chunks."""
    COUNTS["agi_round_trip"] = COUNTS.get("agi_round_trip", 0) + 1
    env, args, responses = session
    # An empty argument ends Env.args (the values are still there); keep the list args() can give back.
    args = args[:next((i for i, a in enumerate(args) if a == ""), len(args))] if "" in args else args
    data = _env_bytes(env, args)
    for code, result, d, rest in responses:
        data += (f"{code} result={result}" + (f" ({d})" if d else "") + (f" {rest}" if rest else "") + "\n").encode()
    p = agi.AgiParser()
    events = [e for c in chunked(data, positions) for e in p.feed(c)]
    assert isinstance(events[0], agi.Env)
    assert {k: v for k, v in events[0].values.items() if not k.startswith("agi_arg_")} == env
    assert events[0].args == tuple(args)
    want = [agi.Response(code, result, d, rest) for code, result, d, rest in responses]
    assert events[1:] == want


def prop_agi_unsafe(prefix: str, bad: str, suffix: str) -> None:
    """A CR, LF or NUL anywhere in an AGI argument is refused by the encoder."""
    COUNTS["agi_unsafe"] = COUNTS.get("agi_unsafe", 0) + 1
    try:
        agi.encode_command("SET VARIABLE", "CC_X", prefix + bad + suffix)
    except agi.UnsafeArgument:
        return
    raise AssertionError(f"encoded an unsafe AGI argument {prefix + bad + suffix!r}")


def prop_audiosocket_round_trip(call: uuid.UUID, frames: list[tuple[str, bytes]], positions: list[int]) -> None:
    """encode_uuid/encode_audio/DTMF/encode_hangup -> the parser (in any chunks) gives back the same events."""
    COUNTS["audiosocket_round_trip"] = COUNTS.get("audiosocket_round_trip", 0) + 1
    data = audiosocket.encode_uuid(call)
    want: list[Any] = [audiosocket.Uuid(call)]
    for kind, payload in frames:
        if kind == "audio":
            data += audiosocket.encode_audio(payload)
            pieces = [payload[i:i + audiosocket.MAX_PAYLOAD] for i in range(0, len(payload), audiosocket.MAX_PAYLOAD)]
            want += [audiosocket.Audio(x) for x in pieces or [b""]]
        else:
            data += bytes((audiosocket.KIND_DTMF, 0, 1)) + payload
            want.append(audiosocket.Dtmf(payload.decode()))
    data += audiosocket.encode_hangup() + b"trailing bytes are ignored"
    want.append(audiosocket.Hangup())
    p = audiosocket.AudioSocketParser()
    assert [e for c in chunked(data, positions) for e in p.feed(c)] == want


def audiosocket_frames(st: Any) -> Any:
    audio = st.integers(min_value=0, max_value=5000).flatmap(
        lambda n: st.binary(min_size=2 * n, max_size=2 * n)).map(lambda b: ("audio", b))
    dtmf = st.sampled_from(list(b"0123456789*#ABCD")).map(lambda d: ("dtmf", bytes([d])))
    return st.lists(st.one_of(audio, dtmf), max_size=6)


# ------------------------------------------------------------------ hypothesis wiring (shared with the tests)


def PROPERTIES() -> dict[str, Callable[..., None]]:  # noqa: N802 - a registry, built lazily
    """name -> the property wrapped in ``hypothesis.given`` (no settings: the caller adds them)."""
    from hypothesis import given
    from hypothesis import strategies as st
    bad = st.sampled_from(["\r", "\n", "\x00", "\r\n"])
    text = st.text(max_size=20)
    return {
        "ami_feed": given(ami_stream(st), cuts(st))(prop_ami_feed),
        "agi_feed": given(agi_stream(st), cuts(st))(prop_agi_feed),
        "audiosocket_feed": given(audiosocket_stream(st), cuts(st))(prop_audiosocket_feed),
        "ami_round_trip": given(ami_actions(st), cuts(st))(prop_ami_round_trip),
        "ami_unsafe": given(text, bad, text)(prop_ami_unsafe),
        "agi_round_trip": given(agi_sessions(st), cuts(st))(prop_agi_round_trip),
        "agi_unsafe": given(text, bad, text)(prop_agi_unsafe),
        "audiosocket_round_trip": given(st.uuids(), audiosocket_frames(st), cuts(st))(prop_audiosocket_round_trip),
    }


def run(seconds: float, batch: int = 500, deadline_ms: float = 1000) -> dict[str, Any]:
    """Run every property round-robin, ``batch`` examples at a time, until ``seconds`` are up."""
    from hypothesis import HealthCheck, Phase, settings
    names = list(PROPERTIES())
    COUNTS.clear()
    failures: list[dict[str, str]] = []
    failed: set[str] = set()
    start = time.monotonic()
    rounds = 0
    while time.monotonic() - start < seconds and len(failed) < len(names):
        props = PROPERTIES()  # settings() marks the wrapped test: fresh wrappers every round
        for name in names:
            prop = props[name]
            if name in failed or time.monotonic() - start >= seconds:
                continue
            # A fresh random seed every batch (no example database): new inputs each round.
            wrapped = settings(max_examples=batch, deadline=deadline_ms, database=None, derandomize=False,
                               phases=[Phase.generate, Phase.shrink],
                               suppress_health_check=list(HealthCheck))(prop)
            try:
                wrapped()
            except Exception as e:  # noqa: BLE001 - a failing property is the result we report
                failed.add(name)
                failures.append({"property": name, "error": f"{type(e).__name__}: {str(e)[:2000]}",
                                 "traceback": traceback.format_exc()[-4000:]})
        rounds += 1
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": round(time.monotonic() - start, 1), "rounds": rounds,
            "examples": sum(COUNTS.values()), "examples_by_property": dict(COUNTS),
            "failures": len(failures), "failed": failures, "peak_rss_mb": round(rss_kb / 1024, 1)}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench fuzz", description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz (default 60)")
    ap.add_argument("--batch", type=int, default=500, help="examples per property per round (default 500)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a = ap.parse_args(argv)
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        print("callcenter bench fuzz needs hypothesis (pip install -e '.[test]')", file=sys.stderr)
        return 2
    out = run(a.seconds, a.batch)
    if a.json:
        print(json.dumps(out))
    else:
        print(json.dumps({k: v for k, v in out.items() if k != "failed"}, indent=2))
        for f in out["failed"]:
            print(f"\n--- {f['property']}: {f['error']}\n{f['traceback']}")
    return 0 if not out["failures"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
