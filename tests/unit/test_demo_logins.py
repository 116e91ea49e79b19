"""The credentials `make demo` prints are the ones the shipped config accepts."""

from callcenter import config
from callcenter.features.access.passwords import verify
from callcenter.features.access.sessions import resolve_login
from callcenter.lab.demo import DEMO_LOGINS, wallboard_lines


def test_printed_demo_logins_verify_against_the_shipped_config():
    """Each printed login resolves to a user whose Argon2 hash accepts the printed secret."""
    cfg = config.load("config/callcenter.yaml")
    text = wallboard_lines(cfg)
    assert f"http://{cfg.http.host}:{cfg.http.port}/ui/wallboard.html" in text
    for _role, login, secret in DEMO_LOGINS:
        user = resolve_login(cfg, login.split(" ")[0])
        assert user is not None, login
        assert verify(cfg.access.users[user].password_hash, secret.removeprefix("PIN ")), login
        assert login in text
