"""Customer records and what they change, without I/O: the record's validation, how a record steers
a queued call (priority, a language skill, the account manager as preferred agent), the callee's
calling window, and the bus event that tells subscribers (screen pop, webhooks) who called."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone
from pydantic import BaseModel, ConfigDict, Field, field_validator

from callcenter.events import DomainEvent
from callcenter.features.acd import model as acd
from callcenter.features.crm.schema import parse_window

if TYPE_CHECKING:
    from callcenter.config import Config

__all__ = ["Customer", "CustomerIdentified", "Steer", "steer", "parse_record", "normalise", "local_time_ok",
           "callee_zones"]

_TEXT = re.compile(r"[\x00-\x1f\x7f]")


class Customer(BaseModel):
    """A customer record, from the CRM's answer or the local table. Unknown fields are ignored (a CRM
    sends more than we use); what we keep is bounded and free of control characters."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(default="", max_length=100)
    vip: bool = False
    priority: int | None = Field(default=None, ge=0, le=100)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    account_manager: str | None = Field(default=None, max_length=64)
    tags: tuple[str, ...] = Field(default=(), max_length=20)
    source: str = Field(default="", exclude=True)  # "table" | "lookup": where it came from (logs, API)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _TEXT.sub(" ", v).strip()

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(t) > 40 or _TEXT.search(t) for t in v):
            raise ValueError("a tag is at most 40 characters, no control characters")
        return v

    def public(self) -> dict[str, Any]:
        """What the API, the screen pop and webhooks show."""
        return {"name": self.name, "vip": self.vip, "priority": self.priority, "language": self.language,
                "account_manager": self.account_manager, "tags": list(self.tags), "source": self.source}


def parse_record(data: object, source: str) -> Customer | None:
    """The record in a CRM's JSON answer (an object; ``null`` or ``{}``: unknown caller), or None."""
    if not isinstance(data, dict) or not data:
        return None
    return Customer.model_validate({**data, "source": source})  # ValidationError: an invalid record


@dataclass(frozen=True)
class CustomerIdentified(DomainEvent):
    """The caller of ``call_id`` is this customer (published before the call is queued)."""

    call_id: str
    number: str
    record: dict[str, Any]
    at: float


@dataclass(frozen=True)
class Steer:
    """What a record changes about a queued call."""

    priority: int = 0
    skills: tuple[tuple[str, int], ...] = ()
    preferred: str | None = None
    prefer_until: float = 0.0

    def apply(self, ev: acd.CallQueued) -> acd.CallQueued:
        need = dict(ev.skills)
        for s, lv in self.skills:
            need[s] = max(lv, need.get(s, 0))
        return replace(ev, priority=max(ev.priority, self.priority), skills=tuple(need.items()),
                       preferred=self.preferred, prefer_until=self.prefer_until)


def steer(cfg: Config, rec: Customer, queue: str, now: float) -> Steer:
    """How ``rec`` routes a call entering ``queue`` at ``now``: VIP -> the configured priority (or the
    record's own), language -> its skill (only if some member of the queue has it: never a call
    nobody can take), account manager -> preferred agent for the queue's wait (only a member)."""
    crm = cfg.crm
    q = cfg.queues[queue]
    vip = crm.lookup.vip_priority if crm.lookup is not None else 10
    priority = max(rec.priority or 0, vip if rec.vip else 0)
    skills: tuple[tuple[str, int], ...] = ()
    skill = crm.language_skills.get(rec.language or "") or crm.language_skills.get((rec.language or "")[:2])
    if skill and any(cfg.agents[m].skills.get(skill, 0) >= crm.language_level for m in q.members):
        skills = ((skill, crm.language_level),)
    preferred, until = None, 0.0
    wait = q.account_manager_wait_s if q.account_manager_wait_s is not None else crm.account_manager_wait_s
    if rec.account_manager in q.members and wait > 0:
        preferred, until = rec.account_manager, now + wait
    return Steer(priority, skills, preferred, until)


def normalise(number: str, region: str) -> str | None:
    """E.164 of a caller ID or typed number (national ones read in ``region``), or None if invalid."""
    text = (number or "").strip()
    if not text or len(text) > 32:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def callee_zones(e164: str) -> tuple[str, ...]:
    """The time zones the number may ring in (phonenumbers' geography; empty when unknown)."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    zones = tuple(z for z in pn_timezone.time_zones_for_number(parsed) if z != "Etc/Unknown")
    return zones


def local_time_ok(e164: str, window: str, now: float, fallback_zone: str = "UTC") -> bool:
    """Whether it is inside ``window`` (HH:MM-HH:MM) where the number rings, in every zone it may
    ring in (a number spanning zones must be inside the window in all of them); an unknown zone is
    ``fallback_zone``'s time."""
    start, end = parse_window(window)
    for name in callee_zones(e164) or (fallback_zone,):
        try:
            tz: dt.tzinfo = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            tz = dt.UTC
        t = dt.datetime.fromtimestamp(now, tz)
        minute = t.hour * 60 + t.minute
        if not start <= minute < end:
            return False
    return True
