"""Install into ``/opt/callcenter``, ``/etc/callcenter``, ``/etc/asterisk/callcenter`` and the
systemd unit — idempotently, with a manifest so that ``uninstall`` removes exactly what install made.

Rules:
- A file we own (program, unit, Asterisk fragments) is rewritten only when its bytes differ.
- A configuration file is created once; on a later install it is updated only if nobody edited it
  since (its SHA-256 is still the one we wrote), else the new version lands beside it as ``.dist``.
  ``conf.d/00-install.yaml`` (this host's paths, a random AMI secret) is never rewritten.
- The site's Asterisk files are never overwritten: one marked ``#include`` block is appended
  (a ``.callcenter-orig`` backup is taken first) and uninstall takes exactly that block out.
- With ``destdir`` (a scratch root, e.g. for packaging or tests) no user is created, no ownership
  is changed, no venv is built unless asked and systemd is not told: those are reported instead.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callcenter.install import asterisk_site as site_mod
from callcenter.install import venv as venv_mod

__all__ = ["Options", "Result", "install", "uninstall", "PREFIX", "CONFDIR", "UNIT", "MANIFEST", "USER"]

PREFIX = "/opt/callcenter"
CONFDIR = "/etc/callcenter"
ASTERISK_ETC = "/etc/asterisk"
UNIT = "/etc/systemd/system/callcenter.service"
MANIFEST = f"{CONFDIR}/install-manifest.json"  # outlives a plain uninstall, with the kept config
STATE = "/var/lib/callcenter"
RECORDINGS = "/var/spool/asterisk/callcenter"  # Asterisk writes, the daemon reads and prunes
USER = "callcenter"
ASTERISK_GROUP = "asterisk"


@dataclass
class Options:
    source: Path
    destdir: Path = Path("/")
    venv: bool = True
    edit_asterisk: bool = True
    purge: bool = False

    @property
    def live(self) -> bool:
        return self.destdir.resolve() == Path("/")


@dataclass
class Result:
    changes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config_errors: list[str] = field(default_factory=list)  # then Asterisk's part was left as it was


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Tree:
    """File operations under a root, each reported once when it changes something."""

    def __init__(self, opts: Options, result: Result) -> None:
        self.o = opts
        self.r = result
        self.root = opts.destdir
        self._warned: set[str] = set()
        self.created: list[str] = []  # directories this run made (parents too), for the manifest

    def mkdirs(self, d: Path) -> None:
        missing = []
        while not d.exists():
            missing.append(d)
            d = d.parent
        for m in reversed(missing):
            m.mkdir()
            self.created.append("/" + str(m.relative_to(self.root)))

    def p(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def change(self, msg: str) -> None:
        self.r.changes.append(msg)

    def own(self, path: str, user: str | None, group: str | None) -> None:
        if not self.o.live or (user is None and group is None):
            return
        try:
            uid = pwd.getpwnam(user).pw_uid if user else -1
            gid = grp.getgrnam(group).gr_gid if group else -1
        except KeyError as e:
            if str(e) not in self._warned:
                self._warned.add(str(e))
                self.r.notes.append(f"no user/group {e}: ownership of {path} left as is")
            return
        st = self.p(path).lstat()
        if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
            os.chown(self.p(path), uid, gid)
            self.change(f"owner {user or ''}:{group or ''} {path}")

    def mode(self, path: str, mode: int) -> None:
        st = self.p(path).stat()
        if st.st_mode & 0o7777 != mode:
            os.chmod(self.p(path), mode)
            self.change(f"mode {mode:04o} {path}")

    def dir(self, path: str, mode: int, user: str | None = None, group: str | None = None) -> bool:
        """Make ``path`` (and parents); True if this call created it."""
        d = self.p(path)
        created = not d.exists()
        if created:
            self.mkdirs(d)
            os.chmod(d, mode)
            self.change(f"created {path}/ ({mode:04o})")
        self.mode(path, mode)
        self.own(path, user, group)
        return created

    def write(self, path: str, data: bytes, mode: int, user: str | None = None, group: str | None = None) -> bool:
        f = self.p(path)
        changed = not f.exists() or f.read_bytes() != data
        if changed:
            self.mkdirs(f.parent)
            tmp = f.with_name(f".{f.name}.callcenter-tmp")
            tmp.write_bytes(data)
            os.chmod(tmp, mode)
            tmp.replace(f)
            self.change(f"wrote {path}")
        self.mode(path, mode)
        self.own(path, user, group)
        return changed


def _load_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    for k in ("files", "conffiles", "includes", "backups"):
        data.setdefault(k, {})
    data.setdefault("dirs", [])
    return data


def _install_yaml() -> bytes:
    return ("# Written once by `callcenter install` and never rewritten: this host's paths and a random AMI\n"
            "# secret (rendered into /etc/asterisk for Asterisk's side). Your own settings go in further\n"
            "# conf.d/*.yaml files, merged after this one in name order (e.g. 10-site.yaml).\n"
            f"daemon:\n  database: {STATE}/callcenter.sqlite3\n"
            f"ami:\n  secret: {secrets.token_urlsafe(24)}\n"
            f"recordings:\n  dir: {RECORDINGS}\n").encode()


def install(opts: Options) -> Result:
    """Install (or bring up to date) everything; a second run with the same source changes nothing."""
    r = Result()
    t = _Tree(opts, r)
    src = opts.source
    old = _load_manifest(t.p(MANIFEST))
    new: dict[str, Any] = {"files": {}, "conffiles": dict(old["conffiles"]), "includes": {},
                           "backups": dict(old["backups"]), "dirs": list(old["dirs"]),
                           "user_created": bool(old.get("user_created")), "venv": bool(old.get("venv"))}

    # --------------------------------------------------------------- the service user
    if opts.live:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--user-group", "--home-dir", STATE, "--no-create-home",
                            "--shell", "/usr/sbin/nologin", "--comment", "callcenter ACD daemon", USER], check=True)
            new["user_created"] = True
            t.change(f"created system user {USER}")
    else:
        r.notes.append(f"DESTDIR: the system user `{USER}` is not created and no ownership is set "
                       f"(on the target: useradd --system --user-group --home-dir {STATE} {USER})")

    def mkdir(path: str, mode: int, user: str | None = None, group: str | None = None) -> None:
        t.dir(path, mode, user, group)

    def managed(path: str, data: bytes, mode: int, user: str | None = None, group: str | None = None) -> None:
        t.write(path, data, mode, user, group)
        new["files"][path] = _sha(data)

    def conffile(path: str, data: bytes | None, mode: int, group: str | None = USER) -> None:
        """``data`` None: create once (generated content), never compare."""
        f = t.p(path)
        ours = old["conffiles"].get(path)
        if not f.exists():
            data = data if data is not None else _install_yaml()
            t.write(path, data, mode, "root", group)
            new["conffiles"][path] = _sha(data)
            return
        t.mode(path, mode)
        t.own(path, "root", group)
        if data is None:
            return
        current = _sha(f.read_bytes())
        if current == _sha(data):
            return
        if ours is not None and current == ours:  # unedited since we wrote it: update
            t.write(path, data, mode, "root", group)
            new["conffiles"][path] = _sha(data)
        else:
            managed(path + ".dist", data, 0o640, "root", group)
            r.notes.append(f"{path} was edited here and is kept; the shipped version is {path}.dist")

    # --------------------------------------------------------------- program
    mkdir(PREFIX, 0o755)
    if opts.venv:
        for line in venv_mod.ensure(src, t.p(f"{PREFIX}/.venv")):
            t.change(line)
        new["venv"] = True
    else:
        r.notes.append(f"no venv built (--no-venv): {PREFIX}/.venv/bin/callcenter must be provided")
    managed(f"{PREFIX}/README.md", (src / "README.md").read_bytes(), 0o644)

    # --------------------------------------------------------------- configuration (secrets: 0640 root:callcenter)
    mkdir(CONFDIR, 0o750, "root", USER)
    mkdir(f"{CONFDIR}/conf.d", 0o750, "root", USER)
    conffile(f"{CONFDIR}/callcenter.yaml", (src / "config/callcenter.yaml").read_bytes(), 0o640)
    conffile(f"{CONFDIR}/conf.d/README", (src / "config/conf.d/README").read_bytes(), 0o644, None)
    conffile(f"{CONFDIR}/conf.d/00-install.yaml", None, 0o640)

    # --------------------------------------------------------------- systemd
    unit = (src / "systemd/callcenter.service").read_bytes()
    unit_changed = t.write(UNIT, unit, 0o644, "root", "root")
    new["files"][UNIT] = _sha(unit)

    # --------------------------------------------------------------- Asterisk
    etc = t.p(ASTERISK_ETC)
    if etc.is_dir():
        from callcenter import config as config_mod
        try:
            _asterisk(opts, t, r, old, new, managed, mkdir)
        except config_mod.ConfigError as e:  # keep what Asterisk has; the manifest still records the rest
            r.config_errors = list(e.problems)
            for key in ("files", "includes"):
                new[key].update({p: v for p, v in old[key].items() if p.startswith(ASTERISK_ETC + "/")})
    else:
        r.notes.append(f"no {ASTERISK_ETC}: install Debian's Asterisk (apt-get install asterisk), then run "
                       "the install again to add callcenter's part of its configuration")

    # --------------------------------------------------------------- what is no longer ours, the manifest
    for path in sorted(set(old["files"]) - set(new["files"]) - {MANIFEST}):
        f = t.p(path)
        if f.exists() and _sha(f.read_bytes()) == old["files"][path]:
            f.unlink()
            t.change(f"removed {path} (no longer installed)")
    new["dirs"] = sorted(set(new["dirs"]) | set(t.created))
    t.write(MANIFEST, (json.dumps(new, indent=2, sort_keys=True) + "\n").encode(), 0o644)

    if opts.live and unit_changed and Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    return r


def _asterisk(opts: Options, t: _Tree, r: Result, old: dict[str, Any], new: dict[str, Any], managed: Any,
              mkdir: Any) -> None:
    from callcenter import config as config_mod
    from callcenter.asterisk.render import render

    etc = t.p(ASTERISK_ETC)
    cfg = config_mod.load(t.p(f"{CONFDIR}/callcenter.yaml"))
    site = {name: site_mod.read_site(etc, name) for name in site_mod.SITE_FILES}
    plan = site_mod.fragments(render(cfg), cfg, site)
    r.notes += plan.notes + site_mod.module_notes(site_mod.read_site(etc, "modules.conf"))
    # Phone and AMI secrets are in these files: readable by Asterisk's group only.
    mkdir(f"{ASTERISK_ETC}/{site_mod.FRAG_DIR}", 0o750, "root", ASTERISK_GROUP)
    for rel, text in sorted(plan.files.items()):
        managed(f"{ASTERISK_ETC}/{rel}", text.encode(), 0o640, "root", ASTERISK_GROUP)
    mkdir(RECORDINGS, 0o2770, ASTERISK_GROUP, USER)  # setgid: Asterisk's files readable by the daemon

    for name, targets in sorted(plan.includes.items()):
        path = f"{ASTERISK_ETC}/{name}"
        f = t.p(path)
        text = f.read_text() if f.exists() else ""
        if not opts.edit_asterisk:
            r.notes.append(f"add to {path}:\n" + site_mod.block(targets).rstrip("\n"))
            continue
        updated = site_mod.add_block(text, targets)
        new["includes"][path] = targets
        if updated == text:
            continue
        backup = path + ".callcenter-orig"
        if f.exists() and not t.p(backup).exists() and site_mod.BEGIN not in text:
            shutil.copy2(f, t.p(backup))
            new["backups"][backup] = _sha(f.read_bytes())
            t.change(f"backed up {path} to {backup}")
        st = f.stat() if f.exists() else None
        f.write_text(updated)
        if st is None:
            os.chmod(f, 0o640)
            t.own(path, "root", ASTERISK_GROUP)
        t.change(f"added the callcenter #include block to {path}")
    for path in sorted(set(old["includes"]) - set(new["includes"])):
        f = t.p(path)
        if f.exists():
            f.write_text(site_mod.remove_block(f.read_text()))
            t.change(f"removed the callcenter #include block from {path}")


def uninstall(opts: Options) -> Result:
    """Remove what the manifest says install made; configuration only with ``purge``."""
    r = Result()
    t = _Tree(opts, r)
    mpath = t.p(MANIFEST)
    if not mpath.exists() or not _load_manifest(mpath)["files"] and not opts.purge:
        r.notes.append(f"nothing to uninstall: no {MANIFEST}")
        return r
    m = _load_manifest(mpath)
    if opts.live and Path("/run/systemd/system").is_dir() and t.p(UNIT).exists():
        subprocess.run(["systemctl", "disable", "--now", "callcenter.service"], check=False)
        t.change("stopped and disabled callcenter.service")
    for path in m["includes"]:
        f = t.p(path)
        if f.exists() and site_mod.BEGIN in f.read_text():
            rest = site_mod.remove_block(f.read_text())
            if rest.strip():
                f.write_text(rest)
            else:  # the install made this file for the block alone
                f.unlink()
            t.change(f"removed the callcenter #include block from {path}")
    for backup, digest in m["backups"].items():
        b, f = t.p(backup), t.p(backup.removesuffix(".callcenter-orig"))
        if b.exists() and f.exists() and b.read_bytes() == f.read_bytes():
            b.unlink()
            t.change(f"removed {backup} (the file is back as it was)")
        elif b.exists():
            r.notes.append(f"kept {backup}: {f} differs from it (edited since)")
    for path, digest in m["files"].items():
        f = t.p(path)
        if not f.exists():
            continue
        if _sha(f.read_bytes()) == digest:
            f.unlink()
            t.change(f"removed {path}")
        else:
            r.notes.append(f"kept {path}: edited since it was installed")
    for path in m["conffiles"]:
        f = t.p(path)
        if f.exists() and opts.purge:
            f.unlink()
            t.change(f"removed {path}")
        elif f.exists():
            r.notes.append(f"kept {path} (configuration; --purge removes it)")
    if m.get("venv") and t.p(f"{PREFIX}/.venv").exists():
        shutil.rmtree(t.p(f"{PREFIX}/.venv"))
        t.change(f"removed {PREFIX}/.venv")
    mpath.unlink()
    dirs = m["dirs"]
    if not opts.purge:  # remember the kept configuration: a later install adopts it, --purge removes it
        kept = {p: d for p, d in m["conffiles"].items() if t.p(p).exists()}
        dirs = [d for d in dirs if not (d == CONFDIR or d.startswith(CONFDIR + "/"))]
        rest = {"conffiles": kept, "dirs": sorted(set(m["dirs"]) - set(dirs)),
                "user_created": bool(m.get("user_created"))}
        t.write(MANIFEST, (json.dumps(rest, indent=2, sort_keys=True) + "\n").encode(), 0o644)
    for d in sorted(dirs, key=lambda p: -p.count("/")):
        with_contents = t.p(d).exists() and any(t.p(d).iterdir())
        if t.p(d).exists() and not with_contents:
            t.p(d).rmdir()
            t.change(f"removed {d}/")
        elif with_contents:
            r.notes.append(f"kept {d}/: not empty")
    if opts.live and opts.purge and m.get("user_created"):
        subprocess.run(["userdel", USER], check=False)
        t.change(f"removed system user {USER}")
    if opts.live and Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    r.notes.append(f"{STATE} (the database) is never removed: delete it yourself if you mean to")
    return r
