"""Who may do what through the API: principals (a signed-in user or an API token) and the decision.

Rules of this module: pure -- no I/O, no clock. :func:`may` takes the principal, the action, the
config and (for per-agent actions) the agent acted on, and returns a :class:`Decision` whose
``reason`` is a stable code (audited, and part of the API's error answers).

Team permissions have one truth: a supervisor's teams come from ``supervisors.<name>.teams``,
the same entry the phone codes ``*71``-``*73`` use. ``"*"`` in a principal's teams means every
team (admins; tokens configured so). An agent without a team is reachable only through ``"*"``.

Checks per action (the first that fails is the reason):

* ``read``: scope ``read`` -> ``missing_scope``.
* ``agent.state`` / ``disposition`` / ``recordings.pause`` on agent X: ``unknown_agent`` -> scope
  ``agent`` (``missing_scope``) -> X is the principal itself: ``ok`` -> scope ``supervise``
  (an agent acting on someone else: ``not_self``) -> X's team in the principal's teams
  (``not_in_team``).
* ``supervise`` (listen / whisper / barge on X): scope ``supervise`` -> ``unknown_agent`` ->
  ``not_in_team`` -> the principal names a configured supervisor whose phone will ring (``no_phone``).
* ``recordings.read`` (X's recordings; no agent: the listing): scope ``supervise`` or ``admin``
  -> ``unknown_agent`` -> ``not_in_team``.
* ``campaigns``: scope ``supervise`` or ``admin``.
* ``admin`` (the audit log): scope ``admin``.
* anything else: ``unknown_action``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from callcenter.config import Config
    from callcenter.features.access.schema import TokenConf, UserConf

__all__ = ["ACTIONS", "ALL_TEAMS", "REASONS", "ROLE_SCOPES", "SCOPES", "Decision", "Principal", "may",
           "principal_for_token", "principal_for_user", "visible_agents"]

SCOPES = ("read", "agent", "supervise", "admin")
ACTIONS = ("read", "agent.state", "supervise", "recordings.read", "recordings.pause", "disposition", "campaigns",
           "admin")
REASONS = ("ok", "missing_scope", "not_in_team", "not_self", "unknown_agent", "no_phone", "unknown_action")
ALL_TEAMS = "*"
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(SCOPES),
    "supervisor": frozenset({"read", "agent", "supervise"}),
    "agent": frozenset({"read", "agent"}),
}
_ON_AGENT = ("agent.state", "disposition", "recordings.pause")  # an agent may do these to themself


@dataclass(frozen=True)
class Principal:
    """Who is asking: a signed-in user (``kind`` ``session``) or an API token (``token``)."""

    name: str  # user login or token name (what the audit records)
    kind: Literal["session", "token"]
    role: str  # admin | supervisor | agent | token
    scopes: frozenset[str]
    teams: frozenset[str]  # ALL_TEAMS in it: every team
    agent: str | None = None  # the agent this principal is (role agent)
    supervisor: str | None = None  # the supervisors.<name> entry (its phone rings for a spy)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # one of REASONS


OK = Decision(True, "ok")


def principal_for_user(login: str, user: UserConf, cfg: Config) -> Principal:
    """The principal of a signed-in user: scopes by role; a supervisor's teams from their
    ``supervisors`` entry, an admin's all teams, an agent's none (they act on themself only)."""
    if user.role == "admin":
        teams = frozenset({ALL_TEAMS})
    elif user.role == "supervisor" and user.supervisor in cfg.supervisors:
        teams = frozenset(cfg.supervisors[user.supervisor].teams)
    else:
        teams = frozenset()
    return Principal(login, "session", user.role, ROLE_SCOPES.get(user.role, frozenset()), teams,
                     agent=user.agent if user.role == "agent" else None,
                     supervisor=user.supervisor if user.role != "agent" else None)


def principal_for_token(name: str, tok: TokenConf) -> Principal:
    """The principal of an API token: exactly its configured scopes and teams."""
    return Principal(name, "token", "token", frozenset(tok.scopes), frozenset(tok.teams), supervisor=tok.supervisor)


def _in_team(p: Principal, agent: str, cfg: Config) -> bool:
    if ALL_TEAMS in p.teams:
        return True
    team = cfg.agents[agent].team
    return team is not None and team in p.teams


def may(p: Principal, action: str, cfg: Config, *, agent: str | None = None) -> Decision:
    """May ``p`` do ``action`` (on ``agent``, for per-agent actions)? See the module doc for the checks."""
    if action == "read":
        return OK if "read" in p.scopes else Decision(False, "missing_scope")
    if action in _ON_AGENT:
        if agent is None or agent not in cfg.agents:
            return Decision(False, "unknown_agent")
        if "agent" not in p.scopes:
            return Decision(False, "missing_scope")
        if p.agent == agent:
            return OK
        if "supervise" not in p.scopes:
            return Decision(False, "not_self")
        return OK if _in_team(p, agent, cfg) else Decision(False, "not_in_team")
    if action == "supervise":
        if "supervise" not in p.scopes:
            return Decision(False, "missing_scope")
        if agent is None or agent not in cfg.agents:
            return Decision(False, "unknown_agent")
        if not _in_team(p, agent, cfg):
            return Decision(False, "not_in_team")
        if p.supervisor is None or p.supervisor not in cfg.supervisors:
            return Decision(False, "no_phone")
        return OK
    if action == "recordings.read":
        if not p.scopes & {"supervise", "admin"}:
            return Decision(False, "missing_scope")
        if agent is None:
            return OK
        if agent not in cfg.agents:
            return Decision(False, "unknown_agent")
        return OK if _in_team(p, agent, cfg) else Decision(False, "not_in_team")
    if action == "campaigns":
        return OK if p.scopes & {"supervise", "admin"} else Decision(False, "missing_scope")
    if action == "admin":
        return OK if "admin" in p.scopes else Decision(False, "missing_scope")
    return Decision(False, "unknown_action")


def visible_agents(p: Principal, cfg: Config) -> frozenset[str]:
    """The agents ``p`` may see (lists, the live event stream): all with ``"*"`` or scope admin;
    else those of ``p``'s teams, plus ``p``'s own agent."""
    if ALL_TEAMS in p.teams or "admin" in p.scopes:
        return frozenset(cfg.agents)
    seen = {a for a, ag in cfg.agents.items() if ag.team is not None and ag.team in p.teams}
    if p.agent is not None and p.agent in cfg.agents:
        seen.add(p.agent)
    return frozenset(seen)

