"""Configuration: YAML (plus a ``conf.d/`` overlay) validated into frozen dataclasses.

Every error names its dotted key path (``queues.sales.strategy: unknown value 'fastest'``);
unknown keys are errors too. Validation happens once, at start-up; the rest of the code only
ever sees the frozen result.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.dataclasses import dataclass

__all__ = ["Config", "ConfigError", "load", "parse"]

_STRICT = ConfigDict(extra="forbid", frozen=True)
NAME = r"^[a-z][a-z0-9_-]{0,31}$"  # queue, menu, agent ... names end up in dialplan extensions
PROMPT = r"^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_/-]{0,127}$"  # sound file names, no extension, no ..
EXTEN = r"^[0-9]{2,15}$"
DIGIT = r"^[0-9*#]$"
FEATURE = r"^\*[0-9]{1,4}$"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Secrets and display names are written into Asterisk .conf files: no whitespace or control
# characters (a newline would add a line, e.g. a second `write=` to manager.conf), no ';'
# (starts a comment), no quotes or backslashes.
SECRET = r"[!#-:<-\[\]-~]{8,128}"
DISPLAY = r"[A-Za-z0-9 .,_'-]{0,48}"


def _check_secret(v: str) -> str:
    if not re.fullmatch(SECRET, v):
        raise ValueError("a secret is 8-128 printable characters without spaces, quotes, ';' or '\\'")
    return v


def _check_display(v: str) -> str:
    if not re.fullmatch(DISPLAY, v):
        raise ValueError("a display name is up to 48 letters, digits, spaces and . , _ ' -")
    return v


class ConfigError(Exception):
    """Invalid configuration; ``str()`` is one line per problem, each with its dotted key path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


Prompt = str


@dataclass(config=_STRICT)
class Hours:
    schedule: str
    open: Action
    closed: Action


@dataclass(config=_STRICT)
class Action:
    """Where a caller goes next: exactly one of the fields is set."""

    menu: str | None = None
    queue: str | None = None
    hangup: tuple[Prompt, ...] | None = None  # prompts played before hanging up
    dial: str | None = Field(default=None, pattern=EXTEN)  # ring one phone extension
    hours: Hours | None = None
    # With `queue` only: what this caller needs (skill -> minimum level) and their priority.
    skills: dict[str, int] | None = None
    priority: int | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        set_ = [k for k in ("menu", "queue", "hangup", "dial", "hours") if getattr(self, k) is not None]
        if len(set_) != 1:
            raise ValueError("an action needs exactly one of menu, queue, hangup, dial, hours"
                             + (f" (got {', '.join(set_)})" if set_ else ""))
        if self.queue is None and (self.skills is not None or self.priority is not None):
            raise ValueError("skills and priority go with a queue action only")
        for skill, level in (self.skills or {}).items():
            _check_level(skill, level)
        return self

    @field_validator("hangup")
    @classmethod
    def _prompts(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for p in v or ():
            _check_prompt(p)
        return v

    @property
    def kind(self) -> str:
        return next(k for k in ("menu", "queue", "hangup", "dial", "hours") if getattr(self, k) is not None)


def _check_level(skill: str, level: int) -> None:
    if not re.fullmatch(NAME, skill):
        raise ValueError(f"bad skill name {skill!r} (lowercase letters, digits, _ or -)")
    if not 0 <= level <= 10:
        raise ValueError(f"skill {skill!r}: level {level} is outside 0..10")


def _check_prompt(p: str) -> str:
    if not re.fullmatch(PROMPT, p):
        raise ValueError(f"bad prompt name {p!r} (letters, digits, _ - / only; no extension)")
    return p


@dataclass(config=_STRICT)
class Menu:
    prompt: tuple[Prompt, ...]
    options: dict[str, Action]
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    max_retries: int = Field(default=3, ge=0, le=10)
    invalid_prompt: Prompt = "pm-invalid-option"
    timeout_prompt: Prompt | None = None
    on_failure: Action = Field(default_factory=lambda: Action(hangup=("goodbye",)))

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            _check_prompt(p)
        return v

    @field_validator("invalid_prompt", "timeout_prompt")
    @classmethod
    def _prompt(cls, v: str | None) -> str | None:
        return None if v is None else _check_prompt(v)

    @field_validator("options")
    @classmethod
    def _digits(cls, v: dict[str, Action]) -> dict[str, Action]:
        for d in v:
            if not re.fullmatch(DIGIT, d):
                raise ValueError(f"option key {d!r} must be one DTMF digit (0-9, *, #)")
        return v


@dataclass(config=_STRICT)
class HolidayConf:
    country: str | None = None
    subdiv: str | None = None
    dates: tuple[str, ...] = ()

    @field_validator("dates")
    @classmethod
    def _dates(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for d in v:
            if not re.fullmatch(r"^\d{4}-\d{2}-\d{2}$", d):
                raise ValueError(f"date {d!r} is not YYYY-MM-DD")
        return v


@dataclass(config=_STRICT)
class Schedule:
    timezone: str = "UTC"
    weekly: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], tuple[str, ...]] = Field(
        default_factory=dict)
    holidays: HolidayConf = Field(default_factory=HolidayConf)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("weekly")
    @classmethod
    def _ranges(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for day, ranges in v.items():
            for r in ranges:
                m = re.fullmatch(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$", r)
                if not m or r[:5] >= r[6:]:
                    raise ValueError(f"{day}: bad time range {r!r} (HH:MM-HH:MM, start before end)")
        return v


@dataclass(config=_STRICT)
class Phone:
    secret: str
    name: str = ""

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        return _check_secret(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_display(v)


@dataclass(config=_STRICT)
class Agent:
    phone: str = Field(pattern=EXTEN)
    name: str = ""
    skills: dict[str, int] = Field(default_factory=dict)  # skill -> proficiency 1..10
    team: str | None = None

    @field_validator("skills")
    @classmethod
    def _levels(cls, v: dict[str, int]) -> dict[str, int]:
        for skill, level in v.items():
            _check_level(skill, level)
        return v


@dataclass(config=_STRICT)
class Supervisor:
    phone: str = Field(pattern=EXTEN)
    pin: str = Field(pattern=r"^[0-9]{4,12}$")
    teams: tuple[str, ...] = ()
    name: str = ""


@dataclass(config=_STRICT)
class Trunk:
    match: tuple[str, ...]  # source addresses (IP or CIDR) Asterisk accepts calls from
    dids: dict[str, Action]
    host: str | None = None  # where outbound calls go; None: inbound only
    port: int = Field(default=5060, ge=1, le=65535)

    @field_validator("match")
    @classmethod
    def _match(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for m in v:
            try:
                ipaddress.ip_network(m, strict=False)
            except ValueError:
                raise ValueError(f"{m!r} is not an IP address or network") from None
        return v

    @field_validator("dids")
    @classmethod
    def _dids(cls, v: dict[str, Action]) -> dict[str, Action]:
        for did in v:
            if not re.fullmatch(r"^\+?[0-9]{2,15}$", did):
                raise ValueError(f"DID {did!r} must be digits (optionally a leading +)")
        return v


@dataclass(config=_STRICT)
class Overflow:
    queue: str
    after_s: float | None = Field(default=None, gt=0)  # move callers who waited this long here
    expected_wait_s: float | None = Field(default=None, gt=0)  # ... or whose expected wait exceeds this

    @model_validator(mode="after")
    def _threshold(self) -> Overflow:
        if self.after_s is None and self.expected_wait_s is None:
            raise ValueError("an overflow needs after_s or expected_wait_s")
        return self


@dataclass(config=_STRICT)
class PenaltyRule:
    after_s: float = Field(ge=0)
    max_penalty: int = Field(ge=0)


@dataclass(config=_STRICT)
class Recording:
    """Which calls are recorded: all, none, on demand (agent feature code / API) or a sample."""

    mode: Literal["all", "none", "on_demand", "sample"] = "all"
    sample_percent: float = Field(default=100, ge=0, le=100)  # with mode "sample"


@dataclass(config=_STRICT)
class Callback:
    """A waiting caller may press `digit`, hang up, and be called back when their turn comes."""

    digit: str = Field(default="5", pattern=DIGIT)
    offer_after_s: float = Field(default=0, ge=0)  # offer (prompt) only after waiting this long
    prompt: tuple[Prompt, ...] = ()  # played at each hook while the offer stands
    confirm: tuple[Prompt, ...] = ("auth-thankyou",)  # played after the digit, before hanging up
    schedule: str | None = None  # dial back only while this schedule is open (business hours)
    trunk: str | None = None  # dial back through this trunk (default: the one the call came in on)
    ring_s: float = Field(default=30, ge=15, le=120)
    max_attempts: int = Field(default=2, ge=1, le=10)
    retry_s: float = Field(default=120, ge=0)


@dataclass(config=_STRICT)
class Queue:
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
    overflow: Overflow | None = None
    service_level_s: float = Field(default=20, gt=0)  # "answered within" threshold of the service level
    callback: Callback | None = None
    recording: Recording | None = None  # None: recordings.default


@dataclass(config=_STRICT)
class Ami:
    secret: str
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = Field(default="callcenter", pattern=NAME)

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        return _check_secret(v)


@dataclass(config=_STRICT)
class Listen:
    host: str = "127.0.0.1"
    port: int = Field(default=4573, ge=1, le=65535)


@dataclass(config=_STRICT)
class Sip:
    bind: str = "127.0.0.1"
    port: int = Field(default=5060, ge=1, le=65535)
    rtp_start: int = Field(default=10000, ge=1024, le=65000)
    rtp_end: int = Field(default=10999, ge=1024, le=65535)


@dataclass(config=_STRICT)
class Features:
    login: str = Field(default="*61", pattern=FEATURE)
    logout: str = Field(default="*62", pattern=FEATURE)
    pause: str = Field(default="*63", pattern=FEATURE)
    unpause: str = Field(default="*64", pattern=FEATURE)
    record_pause: str = Field(default="*65", pattern=FEATURE)  # agent, mid-call: stop recording (card numbers)
    record_resume: str = Field(default="*66", pattern=FEATURE)
    record_start: str = Field(default="*67", pattern=FEATURE)  # agent, mid-call: record an on-demand call
    disposition: str = Field(default="*69", pattern=FEATURE)  # agent after a dialer call: *69<code>
    listen: str = Field(default="*71", pattern=FEATURE)  # supervisor: *71<agent extension>
    whisper: str = Field(default="*72", pattern=FEATURE)
    barge: str = Field(default="*73", pattern=FEATURE)


@dataclass(config=_STRICT)
class Recordings:
    dir: str = "recordings"  # relative to the daemon's working directory
    retention_days: float = Field(default=90, gt=0)
    default: Recording = Field(default_factory=Recording)
    # The same directory as Asterisk sees it, when that differs (Asterisk in a chroot or a
    # container); None: Asterisk sees `dir` itself. It goes into MixMonitor's arguments, so:
    # an absolute path of letters, digits and _ . / - only, without `..`.
    asterisk_dir: str | None = None

    @field_validator("asterisk_dir")
    @classmethod
    def _asterisk_dir(cls, v: str | None) -> str | None:
        if v is not None and (not re.fullmatch(r"/[A-Za-z0-9_./-]*", v) or ".." in v.split("/")):
            raise ValueError(f"{v!r} must be an absolute path of letters, digits, _ . / - (no '..')")
        return v


@dataclass(config=_STRICT)
class Campaign:
    """An outbound campaign. Leads come by `callcenter campaign import`; state lives in SQLite."""

    queue: str  # live answers join this queue (at `priority`) to reach an agent
    trunk: str
    mode: Literal["preview", "progressive", "predictive"] = "predictive"
    region: str = Field(default="US", pattern=r"^[A-Z]{2}$")  # for numbers without a country code
    window: str = Field(default="08:00-21:00", pattern=r"^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$")
    caller_id: str = Field(default="", pattern=r"^(\+?[0-9]{2,15})?$")
    max_abandon_rate: float = Field(default=0.03, gt=0, le=0.2)
    max_attempts: int = Field(default=5, ge=1, le=50)
    ring_s: float = Field(default=25, ge=15, le=120)  # rules: ring at least 15 s before giving up
    # predictive: a line that has rung this long may be given up when its answer would find no
    # agent (rules: >= 15 s); at or above ring_s, lines always ring the full ring_s
    release_after_s: float = Field(default=15, ge=15, le=120)
    priority: int = Field(default=10, ge=0, le=100)
    amd: bool = True
    amd_profile: str | None = None
    machine_message: Prompt | None = None  # left after the beep; None: hang up on machines
    compliance_message: Prompt = "silence/1"  # heard by a live answer no agent takes within 2 s
    recording: Recording | None = None
    dispositions: dict[str, str] = Field(default_factory=lambda: {"1": "sale", "2": "callback", "3": "not_interested",
                                                                  "4": "wrong_number", "5": "dnc"})


@dataclass(config=_STRICT)
class Daemon:
    database: str = "callcenter.sqlite3"
    log_format: Literal["auto", "json", "console"] = "auto"
    reconnect_max_s: float = Field(default=10, gt=0, le=300)
    stats_window_s: float = Field(default=3600, gt=0)  # live statistics cover this much recent time


@dataclass(config=_STRICT)
class Config:
    ami: Ami
    phones: dict[str, Phone]
    agents: dict[str, Agent]
    queues: dict[str, Queue]
    menus: dict[str, Menu]
    trunks: dict[str, Trunk]
    agi: Listen = Field(default_factory=Listen)
    audiosocket: Listen = Field(default_factory=lambda: Listen(port=9093))  # live AMD audio from Asterisk
    amd: dict[str, int | float] = Field(default_factory=dict)  # detector parameters (callcenter.features.amd.detector.AmdParams)
    amd_profiles: dict[str, dict[str, int | float]] = Field(default_factory=dict)  # per campaign: name -> parameters
    http: Listen = Field(default_factory=lambda: Listen(port=9180))
    sip: Sip = Field(default_factory=Sip)
    features: Features = Field(default_factory=Features)
    daemon: Daemon = Field(default_factory=Daemon)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    supervisors: dict[str, Supervisor] = Field(default_factory=dict)
    recordings: Recordings = Field(default_factory=Recordings)
    campaigns: dict[str, Campaign] = Field(default_factory=dict)
    # *63<code> pauses with a named reason; *63 alone is "break". Reason names label metrics.
    pause_reasons: dict[str, str] = Field(default_factory=lambda: {"1": "lunch", "2": "training", "3": "meeting"})

    def agent_by_phone(self, phone: str) -> str | None:
        return next((a for a, ag in self.agents.items() if ag.phone == phone), None)


from pydantic.dataclasses import rebuild_dataclass  # noqa: E402

rebuild_dataclass(Hours)
rebuild_dataclass(Menu)


# --------------------------------------------------------------------------- cross references

def _references(cfg: Config) -> list[str]:
    problems: list[str] = []

    def names(kind: str, d: dict[str, Any]) -> None:
        for n in d:
            if not re.fullmatch(NAME, n):
                problems.append(f"{kind}.{n}: bad name (lowercase letters, digits, _ or -, max 32)")

    for kind in ("agents", "queues", "menus", "trunks", "schedules", "supervisors", "campaigns"):
        names(kind, getattr(cfg, kind))
    for ext in cfg.phones:
        if not re.fullmatch(EXTEN, ext):
            problems.append(f"phones.{ext}: extension must be 2-15 digits")

    def action(path: str, a: Action) -> None:
        if a.menu is not None and a.menu not in cfg.menus:
            problems.append(f"{path}.menu: unknown menu {a.menu!r}")
        if a.queue is not None and a.queue not in cfg.queues:
            problems.append(f"{path}.queue: unknown queue {a.queue!r}")
        if a.dial is not None and a.dial not in cfg.phones:
            problems.append(f"{path}.dial: unknown phone {a.dial!r}")
        if a.hours is not None:
            if a.hours.schedule not in cfg.schedules:
                problems.append(f"{path}.hours.schedule: unknown schedule {a.hours.schedule!r}")
            action(f"{path}.hours.open", a.hours.open)
            action(f"{path}.hours.closed", a.hours.closed)

    for name, ag in cfg.agents.items():
        if ag.phone not in cfg.phones:
            problems.append(f"agents.{name}.phone: unknown phone {ag.phone!r}")
    seen: dict[str, str] = {}
    for name, ag in cfg.agents.items():
        if ag.phone in seen:
            problems.append(f"agents.{name}.phone: phone {ag.phone!r} already belongs to agent {seen[ag.phone]!r}")
        seen[ag.phone] = name
    for name, sv in cfg.supervisors.items():
        if sv.phone not in cfg.phones:
            problems.append(f"supervisors.{name}.phone: unknown phone {sv.phone!r}")
    for name, q in cfg.queues.items():
        for i, m in enumerate(q.members):
            if m not in cfg.agents:
                problems.append(f"queues.{name}.members.{i}: unknown agent {m!r}")
        for m, pen in q.penalties.items():
            if m not in q.members:
                problems.append(f"queues.{name}.penalties.{m}: not a member of the queue")
            if pen < 0:
                problems.append(f"queues.{name}.penalties.{m}: must be >= 0")
        for skill, level in q.skills.items():
            try:
                _check_level(skill, level)
            except ValueError as e:
                problems.append(f"queues.{name}.skills.{skill}: {e}")
        action(f"queues.{name}.fallback", q.fallback)
        if q.overflow is not None and q.overflow.queue not in cfg.queues:
            problems.append(f"queues.{name}.overflow.queue: unknown queue {q.overflow.queue!r}")
        elif q.overflow is not None and q.overflow.queue == name:
            problems.append(f"queues.{name}.overflow.queue: a queue cannot overflow to itself")
        if q.fallback.queue == name:
            problems.append(f"queues.{name}.fallback.queue: a queue cannot fall back to itself")
        cb = q.callback
        if cb is not None and cb.schedule is not None and cb.schedule not in cfg.schedules:
            problems.append(f"queues.{name}.callback.schedule: unknown schedule {cb.schedule!r}")
        if cb is not None and cb.trunk is not None and cb.trunk not in cfg.trunks:
            problems.append(f"queues.{name}.callback.trunk: unknown trunk {cb.trunk!r}")
        elif cb is not None and cb.trunk is not None and cfg.trunks[cb.trunk].host is None:
            problems.append(f"queues.{name}.callback.trunk: trunk {cb.trunk!r} has no host to dial out to")
    for name, c in cfg.campaigns.items():
        if c.queue not in cfg.queues:
            problems.append(f"campaigns.{name}.queue: unknown queue {c.queue!r}")
        if c.trunk not in cfg.trunks:
            problems.append(f"campaigns.{name}.trunk: unknown trunk {c.trunk!r}")
        elif cfg.trunks[c.trunk].host is None:
            problems.append(f"campaigns.{name}.trunk: trunk {c.trunk!r} has no host to dial out to")
        if c.amd_profile is not None and c.amd_profile not in cfg.amd_profiles:
            problems.append(f"campaigns.{name}.amd_profile: unknown profile {c.amd_profile!r}")
        for code, disp in c.dispositions.items():
            if not re.fullmatch(r"[0-9]{1,2}", code):
                problems.append(f"campaigns.{name}.dispositions.{code}: a disposition code is 1-2 digits")
            if not re.fullmatch(NAME, disp):
                problems.append(f"campaigns.{name}.dispositions.{code}: bad name {disp!r}")
        for key in ("machine_message", "compliance_message"):
            v = getattr(c, key)
            if v is not None and not re.fullmatch(PROMPT, v):
                problems.append(f"campaigns.{name}.{key}: bad prompt name {v!r}")
    for name, sv in cfg.supervisors.items():
        for t in sv.teams:
            if not any(ag.team == t for ag in cfg.agents.values()):
                problems.append(f"supervisors.{name}.teams: no agent is in team {t!r}")
    for name, m in cfg.menus.items():
        for d, a in m.options.items():
            action(f"menus.{name}.options.{d}", a)
        action(f"menus.{name}.on_failure", m.on_failure)
    for name, t in cfg.trunks.items():
        for did, a in t.dids.items():
            action(f"trunks.{name}.dids.{did}", a)
    for code, reason in cfg.pause_reasons.items():
        if not re.fullmatch(r"[0-9]{1,4}", code):
            problems.append(f"pause_reasons.{code}: a reason code is 1-4 digits")
        if not re.fullmatch(NAME, reason):
            problems.append(f"pause_reasons.{code}: bad reason name {reason!r} (lowercase letters, digits, _ or -)")
    try:
        from callcenter.features.amd.detector import AmdConfigError, AmdParams
        AmdParams.from_mapping(cfg.amd, prefix="amd")
    except AmdConfigError as e:
        problems.append(str(e))
    for name, prof in cfg.amd_profiles.items():
        if not re.fullmatch(NAME, name):
            problems.append(f"amd_profiles.{name}: bad name (lowercase letters, digits, _ or -)")
        try:
            AmdParams.from_mapping({**cfg.amd, **prof}, prefix=f"amd_profiles.{name}")
        except AmdConfigError as e:
            problems.append(str(e))
    codes = [getattr(cfg.features, f.name) for f in dataclasses.fields(cfg.features)]
    if len(set(codes)) != len(codes):
        problems.append("features: feature codes must differ")
    if cfg.sip.rtp_start >= cfg.sip.rtp_end:
        problems.append("sip.rtp_end: must be above sip.rtp_start")
    return problems


# --------------------------------------------------------------------------- loading

def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    typ = err["type"]
    if typ in ("extra_forbidden", "unexpected_keyword_argument"):
        msg = "unknown key"
    elif typ == "missing":
        msg = "required key missing"
    elif typ in ("literal_error", "enum"):
        msg = f"unknown value {err['input']!r} (expected {err['ctx'].get('expected', '?')})"
    elif typ == "value_error":
        msg = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
    else:
        msg = err["msg"][0].lower() + err["msg"][1:]
    return f"{loc}: {msg}" if loc else msg


def parse(data: Any, *, source: str = "<config>") -> Config:
    """Validate a plain mapping (already merged) into a frozen :class:`Config`."""
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the top level must be a mapping"])
    try:
        cfg = Config(**{k: v for k, v in data.items() if isinstance(k, str)})
    except ValidationError as e:
        raise ConfigError(sorted({_describe(err) for err in e.errors()})) from None
    except TypeError as e:  # non-string top-level keys etc.
        raise ConfigError([f"{source}: {e}"]) from None
    bad = [k for k in data if not isinstance(k, str)]
    problems = [f"{k}: unknown key" for k in bad] + _references(cfg)
    if problems:
        raise ConfigError(problems)
    return cfg


def _merge(base: Any, over: Any) -> Any:
    """conf.d overlays: mappings merge key by key; anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else v
        return out
    return over


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"{path}: cannot read ({e.strerror})"]) from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError([f"{where}: invalid YAML ({getattr(e, 'problem', None) or e})"]) from None


def load(path: str | Path) -> Config:
    """Read ``path`` and every ``conf.d/*.yaml`` beside it (in name order), merge, validate."""
    path = Path(path)
    data = _read_yaml(path)
    overlay = path.parent / "conf.d"
    if overlay.is_dir():
        for extra in sorted(overlay.glob("*.yaml")):
            data = _merge(data, _read_yaml(extra))
    cfg = parse(data, source=str(path))
    # A relative database path is relative to the config file, not to the cwd of whoever starts us.
    db = Path(cfg.daemon.database)
    if not db.is_absolute():
        cfg = dataclasses.replace(cfg, daemon=dataclasses.replace(
            cfg.daemon, database=str((path.parent.resolve() / db))))
    return cfg
