"""Live answering-machine detection: Asterisk's AudioSocket streams each answered call here.

One :class:`AmdEngine` holds every live session in one detector state and steps them all at
once, one numpy pass per 20 ms frame (``callcenter.features.amd.detector.step``). A session ends when its
verdict is final (HUMAN or NOTSURE at once; MACHINE once the beep is heard or the wait for it
is over): the socket is closed, ``AudioSocket()`` returns in the dialplan, and the verdict is
handed to the dialplan by the ``amd-result`` AGI. A malformed stream closes that session only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import structlog

from callcenter.features.amd import detector as amd
from callcenter.protocol.audiosocket import (
    Audio,
    AudioSocketParser,
    AudioSocketProtocolError,
    Hangup,
    Uuid,
)
from callcenter.asterisk.tcp import TcpService

__all__ = ["AmdEngine", "AmdServer", "Verdict"]

log = structlog.get_logger("amd")
FRAME_BYTES = amd.FRAME * 2


@dataclass(frozen=True)
class Verdict:
    verdict: str  # HUMAN | MACHINE | NOTSURE
    decided_ms: int
    beep_ms: int | None = None
    rule: str = ""                                  # the rule that decided (detector.RULES)
    score: float | None = None                      # the model's score then
    features: tuple[tuple[str, float], ...] = ()    # the first utterance's features then

    def trace(self) -> str:
        """One short token for the call record: ``RULE/SCORE``."""
        return f"{self.rule}/{'' if self.score is None else f'{self.score:.2f}'}"


@dataclass
class _Session:
    uuid: str
    slot: int
    buf: bytearray = field(default_factory=bytearray)
    verdict: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class AmdEngine:
    """All live sessions in one vectorised detector; fed by the sockets, stepped per frame."""

    def __init__(self, params: amd.AmdParams, on_final: Callable[[str, Verdict], None]):
        self.state = amd.new_state(16, params)
        self.sessions: dict[int, _Session] = {}
        self.on_final = on_final
        self.t_ms = 0

    def open(self, call_uuid: str) -> _Session:
        slot = amd.add_channel(self.state)
        s = _Session(call_uuid, slot)
        self.sessions[slot] = s
        return s

    def close(self, s: _Session) -> None:
        if self.sessions.pop(s.slot, None) is not None:
            amd.remove_channel(self.state, s.slot)
        s.done.set()

    def pump(self) -> None:
        """Step every complete 20 ms frame that has arrived, all channels together per step."""
        while True:
            ready = [s for s in self.sessions.values() if len(s.buf) >= FRAME_BYTES]
            if not ready:
                return
            frames = np.zeros((self.state.capacity, amd.FRAME), dtype=np.int16)
            active = np.zeros(self.state.capacity, dtype=bool)
            for s in ready:
                frames[s.slot] = np.frombuffer(bytes(s.buf[:FRAME_BYTES]), dtype="<i2")
                del s.buf[:FRAME_BYTES]
                active[s.slot] = True
            self.t_ms += amd.FRAME_MS
            self.state, verdicts = amd.step(self.state, frames, active, self.t_ms)
            for slot in np.flatnonzero(verdicts):
                self._verdict(self.sessions[int(slot)], int(verdicts[slot]))
            for s in [s for s in ready if s.slot in self.sessions]:
                if s.verdict == "MACHINE" and self.state.phase[s.slot] == amd.DONE:  # no beep came
                    self._final(s, self._traced(s, "MACHINE"))

    def _traced(self, s: _Session, name: str, beep_ms: int | None = None) -> Verdict:
        st, i = self.state, s.slot
        return Verdict(name, int(st.decided_ms[i]), beep_ms, amd.RULES[int(st.rule[i])], round(float(st.score[i]), 4),
                       tuple((k, round(float(v), 4)) for k, v in zip(amd.FEATURES, st.feats[i])))

    def _verdict(self, s: _Session, v: int) -> None:
        name = amd.VERDICT_NAMES[v]
        decided = int(self.state.decided_ms[s.slot])
        if name == "BEEP":
            self._final(s, self._traced(s, "MACHINE", int(self.state.beep_ms[s.slot])))
        elif name == "MACHINE":
            s.verdict = name  # keep listening for the beep
            log.info("amd.machine", uuid=s.uuid, decided_ms=decided, rule=amd.RULES[int(self.state.rule[s.slot])])
        else:
            self._final(s, self._traced(s, name))

    def _final(self, s: _Session, v: Verdict) -> None:
        s.verdict = v.verdict
        self.on_final(s.uuid, v)
        self.close(s)


class AmdServer(TcpService):
    """``params`` is the default detector; ``profiles`` are named ones (one per campaign), each its
    own vectorised state. The dialplan names a call's profile before streaming (:meth:`expect`)."""

    def __init__(self, host: str, port: int, params: amd.AmdParams,
                 on_final: Callable[[str, Verdict], None], profiles: dict[str, amd.AmdParams] | None = None):
        self.host, self.port = host, port
        self.engine = AmdEngine(params, on_final)
        self.engines = {name: AmdEngine(p, on_final) for name, p in (profiles or {}).items()}
        self._expected: dict[str, str] = {}  # call UUID -> profile, until its stream arrives

    @property
    def streams(self) -> int:
        """Calls streaming now, and streams announced but not arrived yet."""
        return sum(len(e.sessions) for e in (self.engine, *self.engines.values())) + len(self._expected)

    def expect(self, call_uuid: str, profile: str) -> bool:
        """The stream for ``call_uuid`` is to use ``profile``; False if there is no such profile."""
        if profile not in self.engines:
            return False
        if len(self._expected) > 10_000:  # streams that never came: forget the oldest
            self._expected.pop(next(iter(self._expected)))
        self._expected[call_uuid] = profile
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = AudioSocketParser()
        session: _Session | None = None
        engine = self.engine
        try:
            while True:
                read = asyncio.ensure_future(reader.read(4096))
                waits = {read} | ({asyncio.ensure_future(session.done.wait())} if session else set())
                done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for p in pending:
                    p.cancel()
                if read not in done:  # the verdict is final: release the call
                    return
                data = read.result()
                if not data:
                    return
                for ev in parser.feed(data):
                    if isinstance(ev, Uuid):
                        if session is None:
                            engine = self.engines.get(self._expected.pop(str(ev.value), ""), self.engine)
                            session = engine.open(str(ev.value))
                    elif isinstance(ev, Audio) and session is not None:
                        session.buf += ev.data
                    elif isinstance(ev, Hangup):
                        return
                engine.pump()
                if session is not None and session.done.is_set():
                    return
        except (AudioSocketProtocolError, ValueError) as e:
            log.warning("amd.session_closed", error=f"{type(e).__name__}: {e}")
        except ConnectionError:
            pass
        finally:
            if session is not None:
                engine.close(session)
            writer.close()
