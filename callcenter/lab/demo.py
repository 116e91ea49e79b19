"""``make demo``: the lab Asterisk, the daemon, a small simulated floor and a live screen.

Agents are pjsua2 desk phones that register, log in with the feature code and auto-answer;
they talk for a while and hang up. Callers dial the DID from the trunk side every few seconds,
press menu digits, and some give up if they wait too long. Ctrl-C stops everything this
started (daemon, phones, Asterisk) and unmounts the lab; so do SIGTERM and SIGHUP (closing
the terminal window). The lab is left running only if it was running before the demo began.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

from callcenter import config as config_mod
from callcenter.features.dialer.store import LeadStore
from callcenter.lab.asterisk import Lab, LabError, cache_dir, pstn_sim
from callcenter.lab.signals import interrupt_on_stop_signals, stop_children
from callcenter.cli.screen import fetch_status, render_text

CLEAR = "\x1b[H\x1b[2J"


def main(config_path: str, duration: float, n_agents: int, call_every: float) -> int:
    """Run the demo until ``duration`` ends (0: forever) or Ctrl-C, SIGTERM or SIGHUP (the terminal
    closed): all three take the same clean-up path."""
    cfg = config_mod.load(config_path)
    with interrupt_on_stop_signals():
        try:
            return _run(cfg, config_path, duration, n_agents, call_every)
        except KeyboardInterrupt:
            return 0  # stopped by hand (or by SIGTERM/SIGHUP): cleaned up, a normal end


def _say(text: str, err: bool = False) -> None:
    """Print, unless the terminal is gone (after SIGHUP a write fails with EIO)."""
    with contextlib.suppress(OSError, ValueError):
        stream = sys.stderr if err else sys.stdout
        stream.write(text + "\n")
        stream.flush()


def _run(cfg: config_mod.Config, config_path: str, duration: float, n_agents: int, call_every: float) -> int:
    lab = Lab.default()
    _say("demo: starting the lab Asterisk ...")
    sim = next((t for t in cfg.trunks.values() if t.host == "127.0.0.3"), None)
    log_path = cache_dir() / "demo-daemon.log"
    children: list[subprocess.Popen[bytes]] = []  # the daemon first, then the floor
    try:
        with lab.session(config_path, extra=pstn_sim(sim.port) if sim is not None else None) as info:
            try:
                return _floor(cfg, config_path, info, log_path, children, duration, n_agents, call_every)
            finally:
                _say("\ndemo: stopping ...")
                # Floor workers first (their phones hang up), then the daemon; the lab after them.
                stop_children(children[1:])
                stop_children(children[:1])
    except LabError as e:
        _say(f"demo: {e}", err=True)
        return 1
    finally:
        _say(f"demo: stopped (daemon and phones log: {log_path})")


def _floor(cfg: config_mod.Config, config_path: str, info: dict[str, object], log_path: Path,
           children: list[subprocess.Popen[bytes]], duration: float, n_agents: int, call_every: float) -> int:
    _say(f"demo: {info['asterisk']} up; starting the daemon")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")

    def spawn(cmd: list[str]) -> None:
        # Each child leads its own process group: the terminal's signals do not reach it, we do.
        children.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True))

    spawn([sys.executable, "-m", "callcenter", "run", "--config", config_path])
    daemon = children[0]
    if not _wait_daemon(cfg, daemon, 20):
        _say(f"demo: the daemon did not come up; see {log_path}", err=True)
        return 1
    sip = f"{cfg.sip.bind}:{cfg.sip.port}"
    floor = [sys.executable, "-m", "callcenter.lab.floor"]
    names = list(cfg.agents)[:n_agents]
    names += [m for c in cfg.campaigns.values() for m in cfg.queues[c.queue].members if m not in names]
    for k, name in enumerate(names):  # (and the campaigns' agents)
        ext = cfg.agents[name].phone
        spawn(floor + ["agent", "--sip", sip, "--ext", ext, "--secret", cfg.phones[ext].secret,
                       "--login", cfg.features.login, "--seed", str(k + 1)])
    for name in cfg.campaigns:
        _say(f"demo: campaign {name}: {_demo_leads(cfg, name)} fresh leads, started")
    did = next(iter(next(iter(cfg.trunks.values())).dids))
    n_callers = 3  # each places up to 3 calls at once
    for k in range(n_callers):
        spawn(floor + ["callers", "--sip", sip, "--did", did, "--every", str(call_every * n_callers),
                       "--seed", str(100 + k)])
    web = wallboard_lines(cfg)
    _say(web)
    t_end = time.monotonic() + duration if duration > 0 else float("inf")
    while time.monotonic() < t_end and daemon.poll() is None:
        try:
            st = fetch_status(cfg.http.host, cfg.http.port)
            _say(CLEAR + render_text(st, "callcenter demo (Ctrl-C to stop)") + "\n" + web)
        except OSError as e:
            _say(f"demo: status unavailable: {e}")
        time.sleep(1.0)  # the screen's refresh rate
    return 0


# The demo users of config/callcenter.yaml (access.users: only their Argon2 hashes are in the file).
DEMO_LOGINS = (("supervisor", "sam", "sam-demo"), ("admin", "admin", "admin-demo"),
               ("agent", "1001 (alice)", "PIN 1234"))


def wallboard_lines(cfg: config_mod.Config) -> str:
    """Where the browser pages are and who may sign in (the demo users that this config has)."""
    base = f"http://{cfg.http.host}:{cfg.http.port}"
    lines = [f"wallboard:   {base}/ui/wallboard.html", f"agent panel: {base}/ui/agent.html"]
    for role, login, secret in DEMO_LOGINS:
        user = login.split(" ")[0]
        if user in cfg.access.users or cfg.agent_by_phone(user) is not None:
            lines.append(f"  {role:<10} sign in as {login} / {secret}")
    return "\n".join(lines)


def _demo_leads(cfg: config_mod.Config, name: str, n: int = 300) -> int:
    """Fresh leads for a demo campaign (its old ones are removed), numbers of the simulated network:
    about 40 % people, 25 % machines, 10 % busy, 25 % no answer. They sit in a zone where it is
    now mid-day, so the calling window is open whenever the demo runs."""
    import random
    off = (12 - time.gmtime().tm_hour) % 24
    off = off - 24 if off > 14 else off
    tz = "Etc/GMT" if off == 0 else f"Etc/GMT{'-' if off > 0 else '+'}{abs(off)}"  # POSIX signs are inverted
    rng = random.Random(7)
    kinds = rng.choices("1234", weights=(40, 25, 10, 25), k=n)
    used: set[str] = set()
    rows = ["phone,name,tz"]
    for k in kinds:
        for _ in range(200):
            num = f"+12125550{k}{rng.randrange(100):02d}"
            if num not in used:
                used.add(num)
                rows.append(f"{num},demo lead,{tz}")
                break
    path = cache_dir() / "demo-leads.csv"
    path.write_text("\n".join(rows) + "\n")
    with LeadStore(cfg.daemon.database) as store:
        cid = store.campaign_id(name)
        store.db.execute("DELETE FROM dispositions WHERE lead_id IN (SELECT id FROM leads WHERE campaign_id = ?)",
                         (cid,))
        store.db.execute("DELETE FROM leads WHERE campaign_id = ?", (cid,))
        imported, _ = store.import_csv(cid, path)
        if store.campaign_state(cid) in ("created", "paused"):
            store.change_campaign(cid, "start")
    return imported


def _wait_daemon(cfg: config_mod.Config, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if fetch_status(cfg.http.host, cfg.http.port).get("synced"):
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(str(Path("config/callcenter.yaml")), 0, 3, 6.0))
