"""`callcenter hash-password` and `callcenter make-token`: what they print is what access: accepts."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pytest

from callcenter.cli import main
from callcenter.features.access.passwords import verify


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_hash_password_from_stdin(monkeypatch, capsys):
    """A password piped in is printed as an Argon2id hash that verifies it (and nothing else)."""
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret pass\n"))
    assert main(["hash-password"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("$argon2id$") and "\n" not in out
    assert verify(out, "s3cret pass") and not verify(out, "s3cret pass\n") and not verify(out, "s3cret")


def test_hash_password_asks_twice_on_a_terminal(monkeypatch, capsys):
    """On a terminal the password is asked twice; differing entries print no hash and exit 1."""
    answers = iter(["pw-one", "pw-one", "pw-one", "pw-two"])
    monkeypatch.setattr("sys.stdin", Tty())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["hash-password"]) == 0
    assert verify(capsys.readouterr().out.strip(), "pw-one")
    assert main(["hash-password"]) == 1
    assert capsys.readouterr().out == ""


def test_hash_password_refuses_empty(monkeypatch, capsys):
    """An empty password is refused."""
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert main(["hash-password"]) == 1
    assert capsys.readouterr().out == ""


def test_make_token(capsys):
    """make-token prints a fresh random token and its lowercase hex sha256 as JSON."""
    assert main(["make-token"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert main(["make-token"]) == 0
    b = json.loads(capsys.readouterr().out)
    assert set(a) == {"token", "sha256"} and a["token"] != b["token"] and len(a["token"]) >= 43
    assert a["sha256"] == hashlib.sha256(a["token"].encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", a["sha256"])


@pytest.mark.parametrize("cmd", ["hash-password", "make-token"])
def test_listed_in_help(cmd: str, capsys):
    """Both commands are listed by `callcenter --help`."""
    with pytest.raises(SystemExit):
        main(["--help"])
    assert cmd in capsys.readouterr().out
