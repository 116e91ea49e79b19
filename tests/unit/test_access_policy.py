"""Who may do what through the API: principals from users and tokens, the decision, visibility."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from callcenter import config as config_mod
from callcenter.features.access import policy as pol
from callcenter.features.access.policy import ACTIONS, REASONS, SCOPES, Decision, Principal, may, visible_agents
from callcenter.features.access.schema import TokenConf

ROOT = Path(__file__).resolve().parents[2]


def _cfg() -> config_mod.Config:
    """The shipped config (alice, bob, erin: red; carol, dave: blue; sam: red+blue; tina: blue), plus
    agent zoe without a team and supervisor ned without a team."""
    data = copy.deepcopy(yaml.safe_load((ROOT / "config" / "callcenter.yaml").read_text()))
    data["phones"]["1006"] = {"secret": "demo-secret-1006"}
    data["phones"]["1909"] = {"secret": "demo-secret-1909"}
    data["agents"]["zoe"] = {"phone": "1006"}
    data["supervisors"]["ned"] = {"phone": "1909", "pin": "9999"}
    return config_mod.parse(data)


CFG = _cfg()
TEAM = {a: ag.team for a, ag in CFG.agents.items()}
NEEDS = {"read": {"read"}, "agent.state": {"agent"}, "disposition": {"agent"}, "recordings.pause": {"agent"},
         "supervise": {"supervise"}, "campaigns": {"supervise", "admin"}, "recordings.read": {"supervise", "admin"},
         "admin": {"admin"}}  # any one of these


def user(login: str) -> Principal:
    return pol.principal_for_user(login, CFG.access.users[login], CFG)


def token(scopes, teams=(), supervisor=None) -> Principal:
    return pol.principal_for_token("t", TokenConf(sha256="0" * 64, scopes=tuple(scopes), teams=tuple(teams),
                                                  supervisor=supervisor))


def test_principal_for_each_role():
    """Admins get every scope and team, supervisors their supervisors-entry teams, agents themselves only."""
    assert user("admin") == Principal("admin", "session", "admin", frozenset(SCOPES), frozenset({"*"}))
    assert user("sam") == Principal("sam", "session", "supervisor", frozenset({"read", "agent", "supervise"}),
                                    frozenset({"red", "blue"}), supervisor="sam")
    assert user("tina").teams == frozenset({"blue"})
    assert user("alice") == Principal("alice", "session", "agent", frozenset({"read", "agent"}), frozenset(),
                                      agent="alice")


def test_principal_for_token():
    """A token's principal has exactly its configured scopes, teams and supervisor, role "token"."""
    p = token(["read", "supervise"], ["red"], "sam")
    assert p == Principal("t", "token", "token", frozenset({"read", "supervise"}), frozenset({"red"}),
                          supervisor="sam")


@pytest.mark.parametrize(("who", "action", "agent", "expected"), [
    ("alice", "read", None, Decision(True, "ok")),
    ("alice", "agent.state", "alice", Decision(True, "ok")),
    ("alice", "agent.state", "bob", Decision(False, "not_self")),
    ("alice", "disposition", "alice", Decision(True, "ok")),
    ("alice", "recordings.pause", "erin", Decision(False, "not_self")),
    ("alice", "agent.state", "nobody", Decision(False, "unknown_agent")),
    ("alice", "agent.state", None, Decision(False, "unknown_agent")),
    ("alice", "supervise", "alice", Decision(False, "missing_scope")),
    ("alice", "recordings.read", None, Decision(False, "missing_scope")),
    ("alice", "campaigns", None, Decision(False, "missing_scope")),
    ("alice", "admin", None, Decision(False, "missing_scope")),
    ("sam", "agent.state", "carol", Decision(True, "ok")),
    ("sam", "supervise", "bob", Decision(True, "ok")),
    ("sam", "supervise", "zoe", Decision(False, "not_in_team")),
    ("sam", "supervise", "ghost", Decision(False, "unknown_agent")),
    ("sam", "recordings.read", None, Decision(True, "ok")),
    ("sam", "recordings.read", "dave", Decision(True, "ok")),
    ("sam", "campaigns", None, Decision(True, "ok")),
    ("sam", "admin", None, Decision(False, "missing_scope")),
    ("tina", "supervise", "carol", Decision(True, "ok")),
    ("tina", "supervise", "alice", Decision(False, "not_in_team")),
    ("tina", "agent.state", "bob", Decision(False, "not_in_team")),
    ("tina", "recordings.read", "erin", Decision(False, "not_in_team")),
    ("tina", "recordings.read", "ghost", Decision(False, "unknown_agent")),
    ("admin", "agent.state", "zoe", Decision(True, "ok")),
    ("admin", "recordings.read", "zoe", Decision(True, "ok")),
    ("admin", "supervise", "alice", Decision(False, "no_phone")),  # an admin without a supervisors entry
    ("admin", "admin", None, Decision(True, "ok")),
    ("admin", "reboot", None, Decision(False, "unknown_action")),
])
def test_decisions(who: str, action: str, agent: str | None, expected: Decision):
    """Each rule of the module doc, for the shipped demo users."""
    assert may(user(who), action, CFG, agent=agent) == expected


def test_token_rules():
    """Tokens act within their teams; a supervise token needs a configured supervisor for its phone."""
    assert may(token(["supervise"], ["red"], "sam"), "supervise", CFG, agent="alice") == Decision(True, "ok")
    assert may(token(["supervise"], ["red"]), "supervise", CFG, agent="alice") == Decision(False, "no_phone")
    assert may(token(["supervise"], ["red"], "sam"), "supervise", CFG, agent="carol").reason == "not_in_team"
    assert may(token(["agent"], ["*"]), "agent.state", CFG, agent="alice").reason == "not_self"
    assert may(token(["agent", "supervise"], ["*"]), "agent.state", CFG, agent="zoe").allowed
    assert may(token(["read"], ["*"]), "campaigns", CFG) == Decision(False, "missing_scope")
    assert may(token(["admin"]), "recordings.read", CFG) == Decision(True, "ok")
    assert may(token(["admin"]), "campaigns", CFG) == Decision(True, "ok")


def test_supervise_with_a_stale_supervisor_has_no_phone():
    """A principal naming a supervisor not (any longer) configured is refused with no_phone."""
    p = Principal("x", "token", "token", frozenset({"supervise"}), frozenset({"*"}), supervisor="gone")
    assert may(p, "supervise", CFG, agent="alice") == Decision(False, "no_phone")


def test_visible_agents():
    """Everyone for "*" or admin scope; a supervisor's teams; an agent only themself."""
    every = frozenset(CFG.agents)
    assert visible_agents(user("admin"), CFG) == every
    assert visible_agents(token(["read"], ["*"]), CFG) == every
    assert visible_agents(token(["admin"]), CFG) == every
    assert visible_agents(user("sam"), CFG) == every - {"zoe"}
    assert visible_agents(user("tina"), CFG) == {"carol", "dave"}
    assert visible_agents(user("alice"), CFG) == {"alice"}
    assert visible_agents(token(["read"]), CFG) == frozenset()


# --------------------------------------------------------------------------- properties

scopes_st = st.frozensets(st.sampled_from(SCOPES))
teams_st = st.frozensets(st.sampled_from(["red", "blue", "green", "*"]))
agents_st = st.one_of(st.sampled_from(sorted(CFG.agents)), st.text(max_size=20), st.none())
principals = st.builds(Principal, name=st.text(max_size=8), kind=st.sampled_from(["session", "token"]),
                       role=st.sampled_from(["admin", "supervisor", "agent", "token"]), scopes=scopes_st,
                       teams=teams_st, agent=st.one_of(st.none(), st.sampled_from(sorted(CFG.agents))),
                       supervisor=st.one_of(st.none(), st.sampled_from(["sam", "tina", "ned", "gone"])))


@given(principals, st.sampled_from(ACTIONS + ("bogus", "")), agents_st)
def test_never_raises_and_reasons_are_known(p: Principal, action: str, agent: str | None):
    """may() answers every principal, action and agent string with a known reason; allowed iff "ok"."""
    d = may(p, action, CFG, agent=agent)
    assert d.reason in REASONS and d.allowed == (d.reason == "ok")


@given(principals, st.sampled_from(ACTIONS), agents_st)
def test_missing_scope_never_allowed(p: Principal, action: str, agent: str | None):
    """A principal without any scope the action needs is never allowed it."""
    if not p.scopes & NEEDS[action]:
        assert not may(p, action, CFG, agent=agent).allowed


@given(st.sampled_from(sorted(CFG.agents)), st.sampled_from(sorted(CFG.agents)),
       st.sampled_from(["agent.state", "disposition", "recordings.pause"]))
def test_agent_acts_only_on_itself(me: str, target: str, action: str):
    """An agent-role principal is allowed per-agent actions exactly on itself."""
    p = Principal(me, "session", "agent", pol.ROLE_SCOPES["agent"], frozenset(), agent=me)
    d = may(p, action, CFG, agent=target)
    assert d.allowed == (me == target)
    if me != target:
        assert d.reason == "not_self"


@given(st.frozensets(st.sampled_from(["red", "blue", "green"])), st.sampled_from(sorted(CFG.agents)),
       st.sampled_from(["agent.state", "supervise", "recordings.read", "disposition", "recordings.pause"]))
def test_supervisor_iff_team(teams: frozenset[str], target: str, action: str):
    """A supervisor (with a phone) is allowed on X iff X's team is one of theirs."""
    p = Principal("s", "session", "supervisor", pol.ROLE_SCOPES["supervisor"], teams, supervisor="ned")
    d = may(p, action, CFG, agent=target)
    assert d.allowed == (TEAM[target] in teams)
    assert d.reason in ("ok", "not_in_team")


@given(principals, st.sampled_from(["agent.state", "supervise", "recordings.read", "disposition",
                                    "recordings.pause"]), st.sampled_from(sorted(CFG.agents)))
def test_allowed_implies_visible(p: Principal, action: str, agent: str):
    """Whoever may act on an agent may also see that agent."""
    if may(p, action, CFG, agent=agent).allowed:
        assert agent in visible_agents(p, CFG)


@given(principals)
def test_visible_agents_are_configured(p: Principal):
    """visible_agents() only ever names configured agents, and includes the principal's own agent."""
    seen = visible_agents(p, CFG)
    assert seen <= frozenset(CFG.agents)
    if p.agent is not None:
        assert p.agent in seen
