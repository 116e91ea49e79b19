"""The access config section: users, tokens, settings, and their cross references."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import pytest
import yaml

from callcenter import config as config_mod
from callcenter.config import ConfigError, parse
from callcenter.features.access.passwords import verify

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "callcenter.yaml"
RAW = yaml.safe_load(SHIPPED.read_text())
HASH = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$2Bp0wi0BQ3Pd5rsqTDxL5Q"  # only its prefix matters here
SHA = hashlib.sha256(b"t").hexdigest()


def with_access(access: dict, **extra) -> dict:
    data = copy.deepcopy(RAW)
    data["access"] = access
    data.update(extra)
    return data


def problems(access: dict, **extra) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse(with_access(access, **extra))
    return e.value.problems


def test_shipped_demo_users_and_token():
    """The shipped config's demo users sign in with the documented passwords, the wall token with its plaintext."""
    cfg = config_mod.load(SHIPPED)
    users = cfg.access.users
    assert set(users) == {"admin", "sam", "tina", "alice", "bob", "carol", "dave", "erin"}
    assert verify(users["admin"].password_hash, "admin-demo") and users["admin"].role == "admin"
    assert verify(users["sam"].password_hash, "sam-demo") and users["sam"].supervisor == "sam"
    assert verify(users["tina"].password_hash, "tina-demo") and cfg.supervisors["tina"].teams == ("blue",)
    assert cfg.supervisors["tina"].phone == "1901" and "1901" in cfg.phones
    for a in ("alice", "bob", "carol", "dave", "erin"):
        assert users[a].role == "agent" and users[a].agent == a and verify(users[a].password_hash, "1234")
    assert not verify(users["alice"].password_hash, "4321")
    wall = cfg.access.tokens["wall"]
    assert wall.sha256 == hashlib.sha256(b"wall-demo-kiosk-token").hexdigest()
    assert wall.scopes == ("read",) and wall.teams == ("*",)


def test_defaults_without_section():
    """A config without `access:` has no users and tokens and the documented defaults."""
    data = copy.deepcopy(RAW)
    del data["access"]
    a = parse(data).access
    assert (a.users, a.tokens) == ({}, {})
    assert (a.max_failed_logins, a.lockout_s, a.failure_window_s, a.session_ttl_s) == (5, 900, 900, 43200)
    assert a.secure_cookies is False and a.open_from == ("127.0.0.0/8", "::1/128")


def test_valid_users_and_tokens():
    """Users of every role and a supervising token with teams validate."""
    cfg = parse(with_access({
        "users": {"root": {"role": "admin", "password_hash": HASH, "supervisor": "sam"},
                  "sam": {"role": "supervisor", "password_hash": HASH, "supervisor": "sam"},
                  "alice": {"role": "agent", "password_hash": HASH, "agent": "alice"}},
        "tokens": {"crm": {"sha256": SHA, "scopes": ["read", "supervise"], "teams": ["red"], "supervisor": "sam"},
                   "wall": {"sha256": SHA, "scopes": ["read"], "teams": ["*"]}}}))
    assert cfg.access.users["root"].supervisor == "sam"
    assert cfg.access.tokens["crm"].teams == ("red",)


@pytest.mark.parametrize(("access", "expected"), [
    ({"users": {"u": {"role": "agent", "password_hash": HASH, "agent": "zed"}}},
     "access.users.u.agent: unknown agent 'zed'"),
    ({"users": {"u": {"role": "agent", "password_hash": HASH}}}, "access.users.u.agent: required for role agent"),
    ({"users": {"u": {"role": "supervisor", "password_hash": HASH}}},
     "access.users.u.supervisor: required for role supervisor"),
    ({"users": {"u": {"role": "supervisor", "password_hash": HASH, "supervisor": "nobody"}}},
     "access.users.u.supervisor: unknown supervisor 'nobody'"),
    ({"users": {"u": {"role": "admin", "password_hash": "hunter2"}}},
     "access.users.u.password_hash: not an argon2 hash (make one with `callcenter hash-password`)"),
    ({"users": {"u": {"role": "admin", "password_hash": "$2b$12$abcdefghijklmnopqrstuv"}}},
     "access.users.u.password_hash: not an argon2 hash (make one with `callcenter hash-password`)"),
    ({"users": {"u": {"role": "agent", "password_hash": HASH, "agent": "bob"},
                "v": {"role": "agent", "password_hash": HASH, "agent": "bob"}}},
     "access.users.v.agent: agent 'bob' already belongs to user 'u'"),
    ({"users": {"u": {"role": "supervisor", "password_hash": HASH, "supervisor": "sam", "agent": "bob"}}},
     "access.users.u.agent: only for role agent"),
    ({"users": {"u": {"role": "agent", "password_hash": HASH, "agent": "bob", "supervisor": "sam"}}},
     "access.users.u.supervisor: not for role agent"),
    ({"users": {"Bad Name": {"role": "admin", "password_hash": HASH}}},
     "access.users.Bad Name: bad name (lowercase letters, digits, _ or -, max 32)"),
    ({"tokens": {"t": {"sha256": SHA, "scopes": ["read"], "teams": ["red", "green"]}}},
     "access.tokens.t.teams.1: no agent is in team 'green'"),
    ({"tokens": {"t": {"sha256": SHA, "scopes": ["supervise"], "supervisor": "nobody"}}},
     "access.tokens.t.supervisor: unknown supervisor 'nobody'"),
])
def test_cross_references(access: dict, expected: str):
    """Each broken cross reference is reported with its dotted key path."""
    assert expected in problems(access)


@pytest.mark.parametrize(("access", "path"), [
    ({"users": {"u": {"role": "root", "password_hash": HASH}}}, "access.users.u.role: unknown value 'root'"),
    ({"users": {"u": {"role": "admin"}}}, "access.users.u.password_hash: required key missing"),
    ({"users": {"u": {"role": "admin", "password_hash": HASH, "pin": "1"}}}, "access.users.u.pin: unknown key"),
    ({"tokens": {"t": {"sha256": SHA.upper(), "scopes": ["read"]}}}, "access.tokens.t.sha256:"),
    ({"tokens": {"t": {"sha256": SHA[:-1], "scopes": ["read"]}}}, "access.tokens.t.sha256:"),
    ({"tokens": {"t": {"sha256": SHA, "scopes": ["write"]}}}, "access.tokens.t.scopes.0: unknown value 'write'"),
    ({"tokens": {"t": {"sha256": SHA, "scopes": []}}}, "access.tokens.t.scopes: a token needs at least one scope"),
    ({"open_from": ["10.0.0.0/8", "nowhere"]}, "access.open_from: 'nowhere' is not an IP address or network"),
    ({"max_failed_logins": 0}, "access.max_failed_logins:"),
    ({"lockout_s": 0}, "access.lockout_s:"),
    ({"session_ttl_s": -1}, "access.session_ttl_s:"),
    ({"bogus": 1}, "access.bogus: unknown key"),
])
def test_schema_errors(access: dict, path: str):
    """Bad values and unknown keys in the access section name their key path."""
    assert any(p.startswith(path) for p in problems(access)), problems(access)
