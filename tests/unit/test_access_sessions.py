"""Sign-in bookkeeping: lock-out after failed sign-ins, browser sessions, and what a login name means."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from callcenter import config as config_mod
from callcenter.features.access import sessions as ses
from callcenter.features.access.schema import AccessConf
from callcenter.features.access.sessions import Lockout, Sessions, login_key, resolve_login

ROOT = Path(__file__).resolve().parents[2]
CFG = config_mod.load(ROOT / "config" / "callcenter.yaml")
CONF = AccessConf(max_failed_logins=3, lockout_s=100, failure_window_s=50)


def counter():
    n = itertools.count()
    return lambda: f"tok{next(n)}"


def test_resolve_login():
    """A user name (any case) is itself; an agent's extension is that agent's user; anything else is nobody."""
    assert resolve_login(CFG, "sam") == "sam"
    assert resolve_login(CFG, "Admin") == "admin"
    assert resolve_login(CFG, "1001") == "alice"
    assert resolve_login(CFG, "1005") == "erin"
    assert resolve_login(CFG, "1900") is None  # sam's desk phone is no agent's
    assert resolve_login(CFG, "") is None
    assert resolve_login(CFG, "mallory") is None


def test_resolve_login_agent_without_user():
    """An extension whose agent has no user resolves to nobody."""
    data = copy.deepcopy(yaml.safe_load((ROOT / "config" / "callcenter.yaml").read_text()))
    del data["access"]["users"]["bob"]
    assert resolve_login(config_mod.parse(data), "1002") is None


def test_login_key():
    """Known logins lock their user (extension and name alike); unknown ones their lowercased name."""
    assert login_key(CFG, "1001") == login_key(CFG, "alice") == "alice"
    assert login_key(CFG, "Mallory") == login_key(CFG, "mallory") != "mallory"
    assert len(login_key(CFG, "x" * 10_000)) < 100


def test_locks_after_max_failures():
    """The max_failed_logins-th failure within the window locks the key for lockout_s, then it unlocks."""
    lo = Lockout()
    for t in (0.0, 1.0):
        lo = lo.failed("u", t, CONF)
        assert not lo.check("u", t).locked
    lo = lo.failed("u", 2.0, CONF)
    assert lo.check("u", 2.0) == ses.Check(True, 100.0)
    assert lo.check("u", 101.0) == ses.Check(True, 1.0)
    assert not lo.check("u", 102.0).locked
    assert not lo.check("other", 2.0).locked


def test_failures_outside_window_do_not_count():
    """Failures older than failure_window_s are forgotten."""
    lo = Lockout().failed("u", 0.0, CONF).failed("u", 20.0, CONF)
    lo = lo.failed("u", 60.0, CONF)  # the one at 0 is outside the window
    assert not lo.check("u", 60.0).locked
    assert lo.failed("u", 61.0, CONF).check("u", 61.0).locked


def test_success_clears_failures():
    """A success forgets the key's failures, so the count starts again."""
    lo = Lockout().failed("u", 0.0, CONF).failed("u", 1.0, CONF).succeeded("u", 2.0, CONF)
    assert lo.failures == {} and not lo.failed("u", 3.0, CONF).failed("u", 4.0, CONF).check("u", 4.0).locked


def test_pruned_forgets_the_past():
    """Pruning drops expired lock-outs and failures outside the window (the state stays small)."""
    lo = Lockout()
    for i in range(3):
        lo = lo.failed("a", float(i), CONF)
    lo = lo.failed("b", 0.0, CONF)
    assert set(lo.locked_until) == {"a"} and set(lo.failures) == {"b"}
    p = lo.pruned(500.0, CONF)
    assert (dict(p.failures), dict(p.locked_until)) == ({}, {})


def test_lockout_bounded(monkeypatch):
    """No more than MAX_LOCKOUT_KEYS keys are remembered; the least recently failing go first."""
    monkeypatch.setattr(ses, "MAX_LOCKOUT_KEYS", 50)
    lo = Lockout()
    for i in range(55):
        lo = lo.failed(f"k{i}", i / 10, CONF)
    assert len(lo.failures) == 50 and "k4" not in lo.failures and "k5" in lo.failures
    for i in range(55):
        for _ in range(3):
            lo = lo.failed(f"x{i}", 10.0 + i / 10, CONF)  # locked ones
    assert len(lo.locked_until) == 50 and "x4" not in lo.locked_until and lo.check("x54", 15.4).locked


@given(st.lists(st.tuples(st.sampled_from(["f", "s"]), st.floats(0, 30)), max_size=30))
def test_lockout_invariant(events):
    """Never locked without max_failed_logins failures since the last success; never locked past lockout_s."""
    lo, t, run, last_lock = Lockout(), 0.0, [], None
    for kind, dt in events:
        t += dt
        if lo.check("u", t).locked:
            assert last_lock is not None and t < last_lock + CONF.lockout_s
            continue
        if kind == "s":
            lo, run = lo.succeeded("u", t, CONF), []
        else:
            run = [x for x in run if t - x < CONF.failure_window_s] + [t]
            lo = lo.failed("u", t, CONF)
            if len(run) >= CONF.max_failed_logins:
                assert lo.check("u", t).locked
                last_lock, run = t, []
            else:
                assert not lo.check("u", t).locked


def test_sessions_create_get_expire():
    """A session is found by its token until it expires; its CSRF token differs from the session token."""
    s, tok, sess = Sessions().create("alice", 100.0, 10.0, counter())
    assert (tok, sess) == ("tok0", ses.Session("alice", "tok1", 100.0, 110.0))
    assert s.get("tok0", 109.9) == sess
    assert s.get("tok0", 110.0) is None
    assert s.get("tok1", 100.0) is None  # the CSRF token is no session token
    assert s.removed("tok0").get("tok0", 101.0) is None
    assert Sessions().create("a", 0, 1)[1] != Sessions().create("a", 0, 1)[1]  # real tokens are random


def test_sessions_bounded_in_all(monkeypatch):
    """No more than MAX_SESSIONS sessions in all; the oldest go first."""
    monkeypatch.setattr(ses, "MAX_SESSIONS", 30)
    s, gen, toks = Sessions(), counter(), []
    for i in range(35):
        s, t, _ = s.create(f"u{i}", float(i), 1000.0, gen)
        toks.append(t)
    assert set(s.by_token) == set(toks[5:])


def test_sessions_bounded_per_user():
    """A user keeps at most MAX_SESSIONS_PER_USER sessions; the oldest go first, others' stay."""
    s, gen = Sessions(), counter()
    s, bob_tok, _ = s.create("bob", 0.0, 1000.0, gen)
    toks = []
    for i in range(ses.MAX_SESSIONS_PER_USER + 3):
        s, t, _ = s.create("alice", float(i + 1), 1000.0, gen)
        toks.append(t)
    mine = [t for t, x in s.by_token.items() if x.login == "alice"]
    assert len(mine) == ses.MAX_SESSIONS_PER_USER
    assert set(mine) == set(toks[3:])
    assert s.get(bob_tok, 5.0) is not None


def test_sessions_only_and_pruned():
    """only() keeps live sessions of the given users; pruned() drops expired ones."""
    s, gen = Sessions(), counter()
    s, a, _ = s.create("alice", 0.0, 10.0, gen)
    s, b, _ = s.create("bob", 0.0, 100.0, gen)
    assert set(s.only({"alice"}, 1.0).by_token) == {a}
    assert set(s.pruned(50.0).by_token) == {b}
    assert s.create("carol", 50.0, 10.0, gen)[0].get(a, 50.0) is None
    assert a not in s.create("carol", 50.0, 10.0, gen)[0].by_token  # creating drops expired ones
