"""Configuration: YAML (plus a ``conf.d/`` overlay) validated into frozen dataclasses.

Every error names its dotted key path (``queues.sales.strategy: unknown value 'fastest'``);
unknown keys are errors too. Validation happens once, at start-up; the rest of the code only
ever sees the frozen result.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import (DIGIT, DISPLAY, EXTEN, NAME, PROMPT, SECRET, STRICT, Prompt, check_display,
                                  check_level, check_networks, check_prompt, check_secret)
from callcenter.features.access.schema import AccessConf, TokenConf, UserConf
from callcenter.features.api.schema import WallboardConf
from callcenter.features.acd.schema import AgentConf, OverflowConf, PenaltyRule, QueueConf, queue_cycles
from callcenter.features.callback.numbers import DEFAULT_ALLOW, check_country, check_pattern
from callcenter.features.callback.schema import CallbackConf
from callcenter.features.cards.dial import dials_out
from callcenter.features.cards.plan import check as check_cards
from callcenter.features.cards.schema import CardsConf, fed_trunks
from callcenter.features.crm.schema import CrmConf
from callcenter.features.dialer.schema import CampaignConf
from callcenter.features.provisioning import schema as _prov
from callcenter.features.provisioning.schema import ProvisioningConf
from callcenter.features.ivr.schema import Action, HolidayConf, Hours, Menu, Schedule
from callcenter.features.recording.schema import RecordingConf, Recordings
from callcenter.features.supervision.schema import SupervisorConf
from callcenter.features.trunks.schema import CALLER_ID, TrunkAuth, TrunkRegister, trunk_problems
from callcenter.features.parking import schema as parking_schema
from callcenter.features.transfer import schema as transfer_schema
from callcenter.features.webhooks.schema import WebhooksConf

__all__ = [
    "Config", "ConfigError", "FrozenDict", "freeze", "load", "parse",
    "DaemonConf", "Site", "Trunk", "Phone", "Ami", "Listen", "Sip", "Features",
    # re-exported from the features' schemas, under their new names ...
    "Action", "Hours", "Menu", "HolidayConf", "Schedule", "AgentConf", "QueueConf", "OverflowConf", "PenaltyRule",
    "CallbackConf", "RecordingConf", "Recordings", "SupervisorConf", "CampaignConf", "AccessConf", "UserConf",
    "TokenConf",
    # ... and their old ones
    "Agent", "Queue", "Overflow", "Callback", "Recording", "Supervisor", "Campaign", "Daemon",
    "Prompt", "NAME", "PROMPT", "EXTEN", "DIGIT", "SECRET", "DISPLAY",
]

# Backwards-compatible names: the schema moved to the feature owning it (callcenter.features.*.schema)
# and the classes that collided with domain classes were renamed. Use the new names in new code.
Agent = AgentConf
Queue = QueueConf
Overflow = OverflowConf
Callback = CallbackConf
Recording = RecordingConf
Supervisor = SupervisorConf
Campaign = CampaignConf
_STRICT = STRICT
_check_level = check_level
_check_prompt = check_prompt
_check_secret = check_secret
_check_display = check_display
FEATURE = r"^\*[0-9]{1,4}$"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigError(Exception):
    """Invalid configuration; ``str()`` is one line per problem, each with its dotted key path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(config=STRICT)
class Phone:
    secret: str
    name: str = ""
    # Desk-phone auto-provisioning (features.provisioning): the phone's MAC, model, and the digest HA1
    # of its provisioning password (`callcenter provisioning credentials <extension>`).
    mac: str | None = None
    model: str | None = None
    provisioning_ha1: str | None = None

    @field_validator("mac")
    @classmethod
    def _mac(cls, v: str | None) -> str | None:
        return _prov.check_mac(v)

    @field_validator("model")
    @classmethod
    def _model(cls, v: str | None) -> str | None:
        return _prov.check_model(v)

    @field_validator("provisioning_ha1")
    @classmethod
    def _ha1(cls, v: str | None) -> str | None:
        return _prov.check_ha1(v)

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        return check_secret(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_display(v)


def _check_patterns(v: tuple[str, ...] | None) -> tuple[str, ...] | None:
    for p in v or ():
        check_pattern(p)
    return v


@dataclass(config=STRICT)
class Site:
    """Where the call centre is: what a "national" number is, and what may be dialled back by default."""

    country: str = "US"  # ISO 3166 code: numbers without a country code are read as this country's
    # Callback numbers (caller IDs) allowed on trunks without their own dial_allow; see
    # callcenter.features.callback.numbers: national, mobile, international, premium, +PREFIX, _PATTERN
    dial_allow: tuple[str, ...] = DEFAULT_ALLOW

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        return check_country(v)

    @field_validator("dial_allow")
    @classmethod
    def _allow(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        _check_patterns(v)
        return v


@dataclass(config=STRICT)
class Trunk:
    dids: dict[str, Action]
    match: tuple[str, ...] = ()  # source addresses (IP or CIDR) Asterisk accepts calls from (or register)
    host: str | None = None  # where outbound calls go; None: inbound only
    port: int = Field(default=5060, ge=1, le=65535)
    dial_allow: tuple[str, ...] | None = None  # numbers a callback may dial here; None: site.dial_allow
    # carrier settings (callcenter.features.trunks): digest auth, registration, outbound identity
    auth: TrunkAuth | None = None
    register: TrunkRegister | None = None
    from_user: str = Field(default="", pattern=r"^([A-Za-z0-9._~+-]{1,64})?$")
    from_domain: str = ""
    caller_id: str = Field(default="", pattern=CALLER_ID)  # presented when the call's own is unset
    send_pai: bool | None = None  # P-Asserted-Identity with the caller ID; default: yes when from_user is set
    codecs: tuple[str, ...] = ("ulaw", "alaw")
    did_from: Literal["request_uri", "to"] = "request_uri"  # where the dialled number (DID) is read

    @field_validator("match")
    @classmethod
    def _match(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return check_networks(v)

    @field_validator("dids")
    @classmethod
    def _dids(cls, v: dict[str, Action]) -> dict[str, Action]:
        for did in v:
            if not re.fullmatch(r"^\+?[0-9]{2,15}$", did):
                raise ValueError(f"DID {did!r} must be digits (optionally a leading +)")
        return v

    @field_validator("dial_allow")
    @classmethod
    def _allow(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _check_patterns(v)


@dataclass(config=STRICT)
class Ami:
    secret: str
    host: str = "127.0.0.1"
    port: int = Field(default=5038, ge=1, le=65535)
    username: str = Field(default="callcenter", pattern=NAME)

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        return _check_secret(v)


@dataclass(config=STRICT)
class Listen:
    host: str = "127.0.0.1"
    port: int = Field(default=4573, ge=1, le=65535)


@dataclass(config=STRICT)
class Sip:
    bind: str = "127.0.0.1"
    port: int = Field(default=5060, ge=1, le=65535)
    rtp_start: int = Field(default=10000, ge=1024, le=65000)
    rtp_end: int = Field(default=10999, ge=1024, le=65535)


@dataclass(config=STRICT)
class Features:
    login: str = Field(default="*61", pattern=FEATURE)
    logout: str = Field(default="*62", pattern=FEATURE)
    pause: str = Field(default="*63", pattern=FEATURE)
    unpause: str = Field(default="*64", pattern=FEATURE)
    record_pause: str = Field(default="*65", pattern=FEATURE)  # agent, mid-call: stop recording (card numbers)
    record_resume: str = Field(default="*66", pattern=FEATURE)
    record_start: str = Field(default="*67", pattern=FEATURE)  # agent, mid-call: record an on-demand call
    conference: str = Field(default="*68", pattern=FEATURE)  # agent, mid-call: then the third party's number and #
    disposition: str = Field(default="*69", pattern=FEATURE)  # agent after a dialer call: *69<code>
    listen: str = Field(default="*71", pattern=FEATURE)  # supervisor: *71<agent extension>
    whisper: str = Field(default="*72", pattern=FEATURE)
    barge: str = Field(default="*73", pattern=FEATURE)


@dataclass(config=STRICT)
class DaemonConf:
    database: str = "callcenter.sqlite3"
    log_format: Literal["auto", "json", "console"] = "auto"
    reconnect_max_s: float = Field(default=10, gt=0, le=300)
    stats_window_s: float = Field(default=3600, gt=0)  # live statistics cover this much recent time
    # Reload: where Asterisk reads the rendered files (#include them), and the argv prefix that runs
    # one Asterisk CLI command (e.g. [asterisk, -rx]); the daemon's AMI user never gets `system`.
    asterisk_config_dir: str | None = None
    asterisk_reload: tuple[str, ...] = ()

    @field_validator("asterisk_reload")
    @classmethod
    def _argv(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(not a or "\n" in a or "\0" in a for a in v):
            raise ValueError("each argument must be non-empty, without newlines or NUL")
        return v


@dataclass(config=STRICT)
class Config:
    ami: Ami
    phones: dict[str, Phone]
    agents: dict[str, AgentConf]
    queues: dict[str, QueueConf]
    menus: dict[str, Menu]
    trunks: dict[str, Trunk]
    agi: Listen = Field(default_factory=Listen)
    audiosocket: Listen = Field(default_factory=lambda: Listen(port=9093))  # live AMD audio from Asterisk
    amd: dict[str, int | float] = Field(default_factory=dict)  # detector parameters (callcenter.features.amd.detector.AmdParams)
    amd_profiles: dict[str, dict[str, int | float]] = Field(default_factory=dict)  # per campaign: name -> parameters
    http: Listen = Field(default_factory=lambda: Listen(port=9180))
    sip: Sip = Field(default_factory=Sip)
    features: Features = Field(default_factory=Features)
    daemon: DaemonConf = Field(default_factory=DaemonConf)
    site: Site = Field(default_factory=Site)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    supervisors: dict[str, SupervisorConf] = Field(default_factory=dict)
    recordings: Recordings = Field(default_factory=Recordings)
    campaigns: dict[str, CampaignConf] = Field(default_factory=dict)
    wallboard: WallboardConf = Field(default_factory=WallboardConf)  # thresholds and the live stream (features.api)
    access: AccessConf = Field(default_factory=AccessConf)  # API users, tokens, sessions (features.access)
    crm: CrmConf = Field(default_factory=CrmConf)  # customer lookup, relationship routing, click-to-call (features.crm)
    webhooks: WebhooksConf = Field(default_factory=WebhooksConf)  # signed, durable event delivery (features.webhooks)
    provisioning: ProvisioningConf = Field(default_factory=ProvisioningConf)  # desk-phone files (features.provisioning)
    cards: CardsConf = Field(default_factory=CardsConf)  # DAHDI telephony cards: PRI, BRI, analog (features.cards)
    transfers: transfer_schema.TransferConf = Field(default_factory=transfer_schema.TransferConf)  # features.transfer
    parking: parking_schema.ParkingConf = Field(default_factory=parking_schema.ParkingConf)  # features.parking
    # *63<code> pauses with a named reason; *63 alone is "break". Reason names label metrics.
    pause_reasons: dict[str, str] = Field(default_factory=lambda: {"1": "lunch", "2": "training", "3": "meeting"})

    def agent_by_phone(self, phone: str) -> str | None:
        return next((a for a, ag in self.agents.items() if ag.phone == phone), None)


Daemon = DaemonConf  # backwards-compatible name


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
        elif cb is not None and cb.trunk is not None and not dials_out(cfg, cb.trunk):
            problems.append(f"queues.{name}.callback.trunk: trunk {cb.trunk!r} has no host to dial out to")
        if q.message is not None and cb is None:
            problems.append(f"queues.{name}.message: needs queues.{name}.callback (a message is called back)")
        elif q.message is not None and cb is not None and q.message.digit == cb.digit:
            problems.append(f"queues.{name}.message.digit: {q.message.digit!r} is already the callback digit")
    problems.extend(queue_cycles(cfg.queues))
    problems.extend(transfer_schema.problems(cfg))
    problems.extend(parking_schema.problems(cfg))
    for name, c in cfg.campaigns.items():
        if c.queue not in cfg.queues:
            problems.append(f"campaigns.{name}.queue: unknown queue {c.queue!r}")
        if c.trunk not in cfg.trunks:
            problems.append(f"campaigns.{name}.trunk: unknown trunk {c.trunk!r}")
        elif not dials_out(cfg, c.trunk):
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
    problems.extend(trunk_problems(cfg.trunks, fed_trunks(cfg.cards)))
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
    problems.extend(_access_references(cfg))
    problems.extend(_crm_references(cfg))
    problems.extend(_prov.references(cfg))
    problems.extend(check_cards(cfg.cards, cfg.trunks, cfg.phones))
    for name in cfg.webhooks.endpoints:
        if not re.fullmatch(NAME, name):
            problems.append(f"webhooks.endpoints.{name}: bad name (lowercase letters, digits, _ or -, max 32)")
    for q in cfg.wallboard.queues:
        if q not in cfg.queues:
            problems.append(f"wallboard.queues.{q}: unknown queue {q!r}")
    reasons = {"break", *cfg.pause_reasons.values()}
    for r in cfg.wallboard.pause_limits_s:
        if r not in reasons:
            problems.append(f"wallboard.pause_limits_s.{r}: unknown pause reason {r!r}")
    codes = [getattr(cfg.features, f.name) for f in dataclasses.fields(cfg.features)]
    if len(set(codes)) != len(codes):
        problems.append("features: feature codes must differ")
    if cfg.sip.rtp_start >= cfg.sip.rtp_end:
        problems.append("sip.rtp_end: must be above sip.rtp_start")
    return problems


def _crm_references(cfg: Config) -> list[str]:
    """crm.click_to_call.trunk and crm.language_skills against trunks and agents' skills."""
    problems: list[str] = []
    c2c = cfg.crm.click_to_call
    if c2c is not None and c2c.trunk not in cfg.trunks:
        problems.append(f"crm.click_to_call.trunk: unknown trunk {c2c.trunk!r}")
    elif c2c is not None and not dials_out(cfg, c2c.trunk):
        problems.append(f"crm.click_to_call.trunk: trunk {c2c.trunk!r} has no host to dial out to")
    skills = {s for a in cfg.agents.values() for s in a.skills}
    for lang, skill in cfg.crm.language_skills.items():
        if not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", lang):
            problems.append(f"crm.language_skills.{lang}: a language code such as es or pt-BR")
        if skill not in skills:
            problems.append(f"crm.language_skills.{lang}: no agent has skill {skill!r}")
    return problems


def _access_references(cfg: Config) -> list[str]:
    """access.users and access.tokens against agents, supervisors and teams."""
    problems: list[str] = []
    teams = {ag.team for ag in cfg.agents.values() if ag.team is not None}
    agent_user: dict[str, str] = {}
    for u, user in cfg.access.users.items():
        path = f"access.users.{u}"
        if not re.fullmatch(NAME, u):
            problems.append(f"{path}: bad name (lowercase letters, digits, _ or -, max 32)")
        if not user.password_hash.startswith("$argon2"):
            problems.append(f"{path}.password_hash: not an argon2 hash (make one with `callcenter hash-password`)")
        if user.agent is not None:
            if user.agent not in cfg.agents:
                problems.append(f"{path}.agent: unknown agent {user.agent!r}")
            elif user.agent in agent_user:
                problems.append(f"{path}.agent: agent {user.agent!r} already belongs to user {agent_user[user.agent]!r}")
            else:
                agent_user[user.agent] = u
            if user.role != "agent":
                problems.append(f"{path}.agent: only for role agent")
        elif user.role == "agent":
            problems.append(f"{path}.agent: required for role agent")
        if user.supervisor is not None:
            if user.supervisor not in cfg.supervisors:
                problems.append(f"{path}.supervisor: unknown supervisor {user.supervisor!r}")
            if user.role == "agent":
                problems.append(f"{path}.supervisor: not for role agent")
        elif user.role == "supervisor":
            problems.append(f"{path}.supervisor: required for role supervisor")
    for t, tok in cfg.access.tokens.items():
        path = f"access.tokens.{t}"
        if not re.fullmatch(NAME, t):
            problems.append(f"{path}: bad name (lowercase letters, digits, _ or -, max 32)")
        for i, team in enumerate(tok.teams):
            if team != "*" and team not in teams:
                problems.append(f"{path}.teams.{i}: no agent is in team {team!r}")
        if tok.supervisor is not None and tok.supervisor not in cfg.supervisors:
            problems.append(f"{path}.supervisor: unknown supervisor {tok.supervisor!r}")
    return problems


# --------------------------------------------------------------------------- loading

class FrozenDict(dict):  # type: ignore[type-arg]
    """A dict that refuses changes: the mappings of a validated config (still a ``dict`` to pydantic,
    ``json`` and ``dataclasses.asdict``; copies and pickles as a ``FrozenDict``)."""

    def _frozen(self, *_: Any, **__: Any) -> Any:
        raise TypeError("the configuration is frozen")

    __setitem__ = __delitem__ = __ior__ = _frozen  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _frozen  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self


def freeze(obj: Any) -> Any:
    """Every mapping inside a validated config, at any depth, made a :class:`FrozenDict` (in place:
    the dataclasses themselves are frozen already)."""
    if isinstance(obj, dict):
        return obj if isinstance(obj, FrozenDict) and all(
            v is freeze(v) for v in obj.values()) else FrozenDict({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, tuple):
        return tuple(freeze(v) for v in obj) if any(isinstance(v, (dict, tuple)) or dataclasses.is_dataclass(v)
                                                     for v in obj) else obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            fv = freeze(v)
            if fv is not v:
                object.__setattr__(obj, f.name, fv)
    return obj


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
    return freeze(cfg)


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
    return freeze(cfg)
