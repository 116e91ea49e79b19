"""The ACD's config schema: queues (with overflow and penalty rules) and agents; and the check that
no chain of automatic queue-to-queue moves loops back (:func:`queue_cycles`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import EXTEN, NAME, STRICT, Prompt, check_level
from callcenter.features.callback.schema import CallbackConf
from callcenter.features.ivr.schema import Action
from callcenter.features.messages.schema import MessageConf
from callcenter.features.recording.schema import RecordingConf
from callcenter.features.survey.schema import SurveyConf

__all__ = ["AgentConf", "OverflowConf", "PenaltyRule", "QueueConf", "queue_cycles"]


@dataclass(config=STRICT)
class AgentConf:
    phone: str = Field(pattern=EXTEN)
    name: str = ""
    skills: dict[str, int] = Field(default_factory=dict)  # skill -> proficiency 1..10
    team: str | None = None

    @field_validator("skills")
    @classmethod
    def _levels(cls, v: dict[str, int]) -> dict[str, int]:
        for skill, level in v.items():
            check_level(skill, level)
        return v


@dataclass(config=STRICT)
class OverflowConf:
    queue: str
    after_s: float | None = Field(default=None, gt=0)  # move callers who waited this long here
    expected_wait_s: float | None = Field(default=None, gt=0)  # ... or whose expected wait exceeds this

    @model_validator(mode="after")
    def _threshold(self) -> OverflowConf:
        if self.after_s is None and self.expected_wait_s is None:
            raise ValueError("an overflow needs after_s or expected_wait_s")
        return self


@dataclass(config=STRICT)
class PenaltyRule:
    after_s: float = Field(ge=0)
    max_penalty: int = Field(ge=0)


@dataclass(config=STRICT)
class QueueConf:
    members: tuple[str, ...]
    fallback: Action
    strategy: Literal["longest-idle", "skills", "ringall", "leastrecent", "fewestcalls", "random", "rrmemory",
                      "rrordered", "linear", "wrandom"] = "longest-idle"
    penalties: dict[str, int] = Field(default_factory=dict)  # member -> penalty (default 0)
    max_penalty: int | None = Field(default=None, ge=0)  # members above it wait for penalty_rules
    penalty_rules: tuple[PenaltyRule, ...] = ()  # as callers wait, the maximum penalty changes
    skills: dict[str, int] = Field(default_factory=dict)  # required of every agent for every call
    ring_timeout_s: float = Field(default=15, gt=0, le=120)
    max_wait_s: float = Field(default=600, gt=0)
    wrapup_s: float = Field(default=5, ge=0, le=3600)
    max_no_answer: int = Field(default=3, ge=0)  # consecutive unanswered offers before auto-pause; 0: never
    retry_s: float = Field(default=5, ge=0, le=300)  # an agent who let a call ring out is not offered again sooner
    moh_class: str = Field(default="default", pattern=NAME)
    hook_interval_s: int = Field(default=20, ge=2, le=600)  # how often the wait loop calls the AGI hook
    announce: tuple[Prompt, ...] = ()  # played at every hook, e.g. queue-periodic-announce
    announce_position: bool = False
    announce_holdtime: bool = False  # expected wait from live statistics (position x AHT / agents)
    max_length: int = Field(default=0, ge=0)  # callers waiting at most (0: no limit); more go to fallback
    join_empty: bool = True  # False: with no agent logged in and unpaused, callers go straight to fallback
    leave_when_empty: bool = False  # True: waiting callers go to fallback when the last agent leaves
    overflow: OverflowConf | None = None
    service_level_s: float = Field(default=20, gt=0)  # "answered within" threshold of the service level
    callback: CallbackConf | None = None
    recording: RecordingConf | None = None  # None: recordings.default
    # relationship routing: how long a caller waits for their account manager (None: crm.account_manager_wait_s)
    account_manager_wait_s: float | None = Field(default=None, ge=0, le=3600)
    # first-call resolution: a caller whose number entered this queue within this many seconds is a
    # repeat caller (flagged in the call record, screen pop and statistics); 0: not checked
    repeat_window_s: float = Field(default=0, ge=0, le=90 * 86400)
    survey: SurveyConf | None = None  # after-call survey (CSAT)
    message: MessageConf | None = None  # leave a message instead of waiting (needs `callback`)


# --------------------------------------------------------------------------- queue cycles

def _action_queues(path: str, a: Action) -> Iterator[tuple[str, str]]:
    """The queues an action sends a caller to without asking them: ``(key path, queue)``.

    Business hours are followed down both branches (either may be in force some day); a menu
    stops the walk: from there on the caller chooses."""
    if a.queue is not None:
        yield f"{path}.queue", a.queue
    elif a.hours is not None:
        yield from _action_queues(f"{path}.hours.open", a.hours.open)
        yield from _action_queues(f"{path}.hours.closed", a.hours.closed)


def _moves(name: str, q: QueueConf) -> Iterator[tuple[str, str]]:
    """Every automatic move out of queue ``name``: its fallback (max wait, full, empty) and its overflow."""
    yield from _action_queues(f"queues.{name}.fallback", q.fallback)
    if q.overflow is not None:
        yield f"queues.{name}.overflow.queue", q.overflow.queue


def queue_cycles(queues: Mapping[str, QueueConf]) -> list[str]:
    """One problem per loop of automatic moves between queues (fallback into a queue, directly or
    through business hours; overflow), named at the key of the loop's first move, e.g.
    ``queues.a.fallback.queue: queue cycle a -> b -> a``.

    A caller refused by a full or unstaffed queue goes to its fallback at once, so such a loop
    would spin without end. A fallback into a *menu* is not a move: the caller picks the next step.
    Moves to unknown queues are left to the reference checks, and a direct fallback or overflow of
    a queue to itself to their own message. Iterative depth-first search: linear in the moves."""
    moves = {n: [(p, t) for p, t in _moves(n, q) if t in queues and not (
        t == n and p in (f"queues.{n}.fallback.queue", f"queues.{n}.overflow.queue"))]
        for n, q in queues.items()}
    problems: list[str] = []
    done: set[str] = set()
    for root in queues:
        if root in done:
            continue
        stack: list[tuple[str, Iterator[tuple[str, str]]]] = [(root, iter(moves[root]))]
        on_stack = {root: 0}
        via: list[str] = []  # via[i]: the key path of the move from stack[i] to stack[i + 1]
        while stack:
            node, it = stack[-1]
            step = next(it, None)
            if step is None:
                stack.pop()
                on_stack.pop(node)
                done.add(node)
                if via:
                    via.pop()
                continue
            path, target = step
            if target in on_stack:
                i = on_stack[target]
                names = [n for n, _ in stack[i:]] + [target]
                first = via[i] if i < len(via) else path
                problems.append(f"{first}: queue cycle {' -> '.join(names)}")
            elif target not in done:
                via.append(path)
                on_stack[target] = len(stack)
                stack.append((target, iter(moves[target])))
    return problems
