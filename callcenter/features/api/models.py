"""The API's request and response models: validation of what comes in, and the OpenAPI document's
schemas (:mod:`.openapi` generates the document from these and the route table)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Error", "Locked", "SignIn", "SessionInfo", "Floor", "QueueLive", "AgentLive", "LiveCall", "CampaignLive",
    "QueueList", "AgentList", "CallList", "AgentResult", "PauseRequest", "SpyRequest", "SpyStarted",
    "DispositionRequest", "DispositionResult", "RecordingResult", "CallContext", "HistoryItem", "Callback",
    "CallbackList", "CampaignList", "CampaignResult", "LeadImport", "DncResult", "Recording", "RecordingList",
    "Interval", "IntervalStats", "AuditEntry", "AuditList",
]

NAME = r"^[a-z][a-z0-9_-]{0,31}$"
CALL_ID = r"^[0-9a-f]{16}$"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=200)


class Error(_Out):
    error: str = Field(description="a stable code: bad_request, unauthenticated, missing_scope, not_in_team, "
                                   "not_self, unknown_agent, no_phone, csrf, not_found, conflict, ...")
    detail: str = ""


class Locked(_Out):
    error: Literal["locked"]
    detail: str = ""
    retry_after_s: float


class SignIn(_In):
    login: str = Field(min_length=1, max_length=64, description="a user name, or an agent's extension")
    password: str = Field(min_length=1, max_length=200, description="the password, or the agent's PIN")


class SessionInfo(_Out):
    user: str
    role: str
    name: str
    agent: str | None
    supervisor: str | None
    teams: list[str]
    scopes: list[str]
    csrf: str | None = Field(default=None, description="send as X-CSRF-Token on every write (browser sessions)")


class QueueLive(_Out):
    waiting: int
    ringing: int
    talking: int
    longest_wait_s: float
    service_level: float | None
    asa_s: float | None
    aht_s: float | None
    abandon_rate: float | None
    offered: int
    answered: int
    abandoned: int
    agents: dict[str, int]
    thresholds: dict[str, list[float]]
    fcr_rate: float | None = Field(default=None, description="first-call resolution: answered calls not followed "
                                   "by a repeat call (window)")
    csat_avg: float | None = Field(default=None, description="average after-call survey rating (window)")


class AgentLive(_Out):
    name: str
    team: str | None
    phone: str
    queues: list[str]
    state: str
    since: float
    reason: str
    pause_limit_s: float | None
    call_id: str | None
    handled: int
    missed: int
    aht_s: float | None
    paused_s: dict[str, float]
    fcr_rate: float | None = Field(default=None, description="first-call resolution of the agent's calls (window)")
    csat_avg: float | None = Field(default=None, description="the agent's average survey rating (window)")


class LiveCall(_Out):
    call_id: str
    queue: str
    agent: str | None
    state: Literal["waiting", "ringing", "talking"]
    entered_at: float
    answered_at: float | None
    caller_num: str
    caller_name: str


class CampaignLive(_Out):
    state: str | None
    queue: str | None = Field(description="live answers join this queue")
    lines: int
    abandon_rate: float
    abandon_limit: float | None
    dispositions: dict[str, str]


class Floor(_Out):
    at: float
    seq: int
    stream: str
    queues: dict[str, QueueLive]
    agents: dict[str, AgentLive]
    calls: list[LiveCall]
    campaigns: dict[str, CampaignLive]
    state_thresholds_s: dict[str, list[float]]
    pause_reasons: list[str]
    window_s: float


class QueueList(_Out):
    queues: dict[str, QueueLive]


class AgentList(_Out):
    agents: dict[str, AgentLive]


class CallList(_Out):
    calls: list[LiveCall]


class AgentResult(_Out):
    agent: str
    state: str


class PauseRequest(_In):
    reason: str = Field(default="break", pattern=NAME)


class SpyRequest(_In):
    agent: str = Field(pattern=NAME)
    mode: Literal["listen", "whisper", "barge"]


class SpyStarted(_Out):
    agent: str
    mode: str
    supervisor: str
    phone: str


class DispositionRequest(_In):
    agent: str = Field(pattern=NAME)
    code: str = Field(pattern=r"^[0-9]{1,2}$")


class DispositionResult(_Out):
    agent: str
    disposition: str


class RecordingResult(_Out):
    call_id: str
    result: str
    paused: bool | None = None
    rec_id: str | None = None


class HistoryItem(_Out):
    call_id: str
    at: float
    queue: str | None
    agent: str | None
    outcome: str | None


class MessageInfo(_Out):
    """A message the caller left while waiting (features.messages); audio at /calls/{call_id}/message."""

    id: str
    state: str = Field(description="recording | ready | empty (silence only) | missing")
    duration_s: float | None
    created_at: float
    heard_at: float | None
    heard_by: str | None


class CustomerRecord(_Out):
    """The caller's customer record (features.crm: the local table or the CRM's lookup)."""

    name: str
    vip: bool
    priority: int | None
    language: str | None
    account_manager: str | None
    tags: list[str]
    source: str = Field(description="table (the local customer table) or lookup (the CRM)")


class CallContext(_Out):
    call_id: str
    caller_num: str
    caller_name: str
    queue: str | None
    path: list[str]
    entered_at: float | None
    campaign: str | None = Field(default=None, description="the campaign that dialled it (its dispositions)")
    customer: CustomerRecord | None = Field(default=None, description="who the caller is (while the call lives)")
    history: list[HistoryItem]
    repeat_of: str | None = Field(default=None, description="a repeat caller: the earlier call of the number to "
                                  "the same queue within the queue's repeat_window_s")
    csat: int | None = Field(default=None, description="the after-call survey's rating")
    message: MessageInfo | None = Field(default=None, description="the message the caller left while waiting")


class Callback(_Out):
    call_id: str
    queue: str
    number: str
    attempts: int
    not_before: float


class CallbackList(_Out):
    callbacks: list[Callback]


class CampaignList(_Out):
    campaigns: dict[str, CampaignLive]


class CampaignResult(_Out):
    campaign: str
    state: str


class LeadImport(_Out):
    campaign: str
    imported: int
    rejected: list[dict[str, Any]]


class DncResult(_Out):
    number: str
    listed: bool


class Recording(_Out):
    rec_id: str
    call_id: str
    agent: str | None
    queue: str | None
    campaign: str | None
    started_at: float
    ended_at: float | None
    duration_s: float | None
    status: str
    truncated: bool
    sha256: str | None


class RecordingList(_Out):
    recordings: list[Recording]


class Interval(_Out):
    start: float
    key: str = Field(description="the queue or agent")
    offered: int
    answered: int
    abandoned: int
    answered_in_sl: int
    asa_s: float | None
    aht_s: float | None


class IntervalStats(_Out):
    size_min: int
    by: Literal["queue", "agent"]
    intervals: list[Interval]


class AuditEntry(_Out):
    at: float
    actor: str | None
    via: str
    action: str
    target: str
    outcome: str
    reason: str
    remote: str


class AuditList(_Out):
    audit: list[AuditEntry]
