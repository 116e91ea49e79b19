"""The production install into a scratch root (DESTDIR): files and modes, idempotence, exact
uninstall, the site's Asterisk files extended but never overwritten, and the systemd unit checked
by ``systemd-analyze`` (verify; security exposure at most 2.0)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.install import asterisk_site as site
from callcenter.install import installer as inst
from callcenter.install.cli import main_install, main_uninstall

SOURCE = Path(__file__).resolve().parents[2]

# The non-comment lines of Debian's stock Asterisk 22 files (package asterisk-config).
DEBIAN = {
    "manager.conf": "[general]\nenabled = yes\nport = 5038\nbindaddr = 127.0.0.1\n\n#include \"manager.d/*.conf\"\n",
    "manager.d/README.conf": "; files here are included from manager.conf\n",
    "extensions.conf": "[general]\nstatic=yes\nwriteprotect=no\nclearglobalvars=no\n\n[globals]\n"
                       "CONSOLE=Console/dsp\nTRUNK=DAHDI/G2\n\n[default]\nexten => 1234,1,Playback(tt-weasels)\n",
    "pjsip.conf": "; PJSIP Configuration Samples and Quick Reference\n;[transport-udp]\n;type=transport\n",
    "features.conf": "[general]\n\n[featuremap]\n\n[applicationmap]\n",
    "musiconhold.conf": "[general]\n\n[default]\nmode=files\ndirectory=moh\n",
    "rtp.conf": "[general]\nrtpstart=10000\nrtpend=20000\n",
    "modules.conf": "[modules]\nautoload=yes\n",
}


def _site(root: Path, files: dict[str, str] = DEBIAN) -> None:
    for name, text in files.items():
        p = root / "etc/asterisk" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under ``root`` -> (mode, sha256 of the bytes or '' for a directory)."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = Path(dirpath) / n
            st_ = p.lstat()
            digest = "" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(p.relative_to(root))] = (st_.st_mode, digest)
    return out


def _install(root: Path, *extra: str) -> int:
    return main_install(["--destdir", str(root), "--source", str(SOURCE), "--no-venv", *extra])


def test_destdir_install_yields_the_expected_files_and_modes(tmp_path: Path, capsys) -> None:
    """Program, configuration (secrets 0640), unit, Asterisk fragments and one include block per site file."""
    _site(tmp_path)
    assert _install(tmp_path) == 0
    snap = _snapshot(tmp_path)
    expected = {
        "opt/callcenter/README.md": 0o644, "etc/callcenter/install-manifest.json": 0o644,
        "etc/callcenter": 0o750, "etc/callcenter/conf.d": 0o750,
        "etc/callcenter/callcenter.yaml": 0o640, "etc/callcenter/conf.d/00-install.yaml": 0o640,
        "etc/systemd/system/callcenter.service": 0o644,
        "etc/asterisk/callcenter": 0o750,
        "etc/asterisk/callcenter/pjsip.conf": 0o640, "etc/asterisk/callcenter/extensions.conf": 0o640,
        "etc/asterisk/callcenter/callcenter-dialplan.conf": 0o640, "etc/asterisk/callcenter/features.conf": 0o640,
        "etc/asterisk/callcenter/musiconhold.conf": 0o640,
        "etc/asterisk/manager.d/callcenter.conf": 0o640,  # Debian's manager.conf already includes manager.d/
        "var/spool/asterisk/callcenter": 0o2770,
    }
    for path, mode in expected.items():
        assert path in snap, path
        assert snap[path][0] & 0o7777 == mode, (path, oct(snap[path][0]))
    # The shipped config unchanged; this host's part (database, recordings, a fresh AMI secret) beside it.
    assert (tmp_path / "etc/callcenter/callcenter.yaml").read_bytes() == (SOURCE / "config/callcenter.yaml").read_bytes()
    local = (tmp_path / "etc/callcenter/conf.d/00-install.yaml").read_text()
    assert "/var/lib/callcenter/callcenter.sqlite3" in local and "change-me" not in local
    secret = re.search(r"secret: (\S+)", local).group(1)
    assert f"secret={secret}" in (tmp_path / "etc/asterisk/manager.d/callcenter.conf").read_text()
    # manager.conf is not touched; the others get exactly one block, appended after the site's text.
    assert (tmp_path / "etc/asterisk/manager.conf").read_text() == DEBIAN["manager.conf"]
    for name in ("pjsip.conf", "extensions.conf", "features.conf", "musiconhold.conf"):
        text = (tmp_path / "etc/asterisk" / name).read_text()
        assert text.startswith(DEBIAN[name]) and text.count(site.BEGIN) == 1
        assert f'#include "callcenter/{name}"' in text
        assert (tmp_path / f"etc/asterisk/{name}.callcenter-orig").read_text() == DEBIAN[name]
    assert (tmp_path / "etc/asterisk/rtp.conf").read_text() == DEBIAN["rtp.conf"]
    assert "DESTDIR: the system user `callcenter` is not created" in capsys.readouterr().out


def test_a_second_install_changes_nothing(tmp_path: Path, capsys) -> None:
    """Run twice into the same root: the second reports no change and the tree is byte-identical."""
    _site(tmp_path)
    _install(tmp_path)
    before = _snapshot(tmp_path)
    capsys.readouterr()
    _install(tmp_path)
    assert "install: nothing to change" in capsys.readouterr().out
    assert _snapshot(tmp_path) == before


def test_uninstall_removes_exactly_what_install_made(tmp_path: Path) -> None:
    """Uninstall keeps the configuration; --purge leaves the tree exactly as before the install."""
    _site(tmp_path)
    before = _snapshot(tmp_path)
    _install(tmp_path)
    main_uninstall(["--destdir", str(tmp_path)])
    left = set(_snapshot(tmp_path)) - set(before)
    assert left == {"etc/callcenter", "etc/callcenter/conf.d", "etc/callcenter/callcenter.yaml",
                    "etc/callcenter/conf.d/README", "etc/callcenter/conf.d/00-install.yaml",
                    "etc/callcenter/install-manifest.json"}
    # Installing again adopts the kept configuration (same AMI secret), then --purge removes all.
    kept = (tmp_path / "etc/callcenter/conf.d/00-install.yaml").read_bytes()
    _install(tmp_path)
    assert (tmp_path / "etc/callcenter/conf.d/00-install.yaml").read_bytes() == kept
    main_uninstall(["--destdir", str(tmp_path), "--purge"])
    assert _snapshot(tmp_path) == before


def test_an_edited_config_is_kept_and_the_new_one_lands_beside_it(tmp_path: Path, capsys) -> None:
    """A config the admin edited is never overwritten; an unedited one follows the shipped version."""
    src = tmp_path / "src"
    shutil.copytree(SOURCE, src, ignore=shutil.ignore_patterns(".venv", ".git", "tests", "*.sqlite3*", "__pycache__"))
    root = tmp_path / "root"
    main_install(["--destdir", str(root), "--source", str(src), "--no-venv"])
    cfg = src / "config/callcenter.yaml"
    cfg.write_text(cfg.read_text() + "\n# shipped change 1\n")
    main_install(["--destdir", str(root), "--source", str(src), "--no-venv"])
    installed = root / "etc/callcenter/callcenter.yaml"
    assert installed.read_text().endswith("# shipped change 1\n")  # unedited: updated
    installed.write_text(installed.read_text() + "# local edit\n")
    cfg.write_text(cfg.read_text() + "# shipped change 2\n")
    capsys.readouterr()
    main_install(["--destdir", str(root), "--source", str(src), "--no-venv"])
    assert installed.read_text().endswith("# local edit\n")
    assert (root / "etc/callcenter/callcenter.yaml.dist").read_text().endswith("# shipped change 2\n")
    assert "was edited here and is kept" in capsys.readouterr().out


def test_print_includes_leaves_the_site_files_alone(tmp_path: Path, capsys) -> None:
    """With --print-includes the site's files are untouched and the lines to add are printed."""
    _site(tmp_path)
    _install(tmp_path, "--print-includes")
    for name, text in DEBIAN.items():
        assert (tmp_path / "etc/asterisk" / name).read_text() == text
    out = capsys.readouterr().out
    assert 'add to /etc/asterisk/pjsip.conf:' in out and '#include "callcenter/pjsip.conf"' in out


def test_fragments_do_not_redefine_what_the_site_owns(tmp_path: Path) -> None:
    """The site's own pjsip global, [globals], manager [general] and MOH class are extended, not duplicated."""
    files = dict(DEBIAN)
    files["pjsip.conf"] = "[global]\ntype=global\nuser_agent=site\n\n[site-udp]\ntype=transport\nbind=0.0.0.0\n"
    files["manager.conf"] = "[general]\nenabled = no\nport = 5038\nbindaddr = 0.0.0.0\n[callcenter]\nsecret=x\n"
    files["extensions.conf"] = "[default]\nexten => 1,1,Hangup()\n"  # no [globals] at all
    _site(tmp_path, files)
    from callcenter import config
    from callcenter.asterisk.render import render
    cfg = config.load(SOURCE / "config/callcenter.yaml")
    etc = tmp_path / "etc/asterisk"
    plan = site.fragments(render(cfg), cfg, {n: site.read_site(etc, n) for n in site.SITE_FILES})
    pjsip = plan.files["callcenter/pjsip.conf"]
    assert "type=global" not in pjsip and "[cc-udp]" in pjsip
    ext = plan.files["callcenter/extensions.conf"]
    assert "\n[globals]\n" in ext and "(+)" not in ext and "[general]" not in ext
    mgr = plan.files["callcenter/manager.conf"]  # no manager.d/ include here: ours is included directly
    assert mgr.count("[general](+)") == 1 and "bindaddr" not in mgr and "enabled" not in mgr
    assert "[default]" not in plan.files["callcenter/musiconhold.conf"]
    notes = "\n".join(plan.notes)
    for expected in ("own type=global", "site-udp", "AMI is disabled", "bindaddr = 0.0.0.0", "already has a user [callcenter]"):
        assert expected in notes, expected
    assert plan.includes["manager.conf"] == ["callcenter/manager.conf"]


@given(st.text(alphabet=st.sampled_from("[]ab;=\n# x\"")), st.lists(st.sampled_from(["callcenter/a.conf", "b"]), min_size=1))
def test_include_block_is_added_once_and_removed_exactly(text: str, targets: list[str]) -> None:
    """Adding the block twice equals adding it once; removing it gives back a newline-terminated original."""
    once = site.add_block(text, targets)
    assert site.add_block(once, targets) == once and once.count(site.BEGIN) == 1
    restored = site.remove_block(once)
    assert restored == (text if not text or text.endswith("\n") else text + "\n")


def _analyze_root(tmp_path: Path) -> Path:
    """A DESTDIR install plus what ``systemd-analyze --root`` needs: the host's unit library and the
    commands the unit runs (the venv is not built under DESTDIR: a stub stands in for it)."""
    root = tmp_path / "root"
    _install(root)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    unit = (root / "etc/systemd/system/callcenter.service").read_text()
    for cmd in set(re.findall(r"^Exec\w+=[-@:+!]*(/\S+)", unit, re.M)):
        p = root / cmd.lstrip("/")
        if not p.exists():
            assert cmd.startswith(inst.PREFIX) or os.access(cmd, os.X_OK), f"{cmd} missing on this host"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("#!/bin/sh\n")
            p.chmod(0o755)
    return root


def test_the_installed_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify --root`` accepts the installed unit."""
    root = _analyze_root(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", f"--root={root}", "callcenter.service"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "callcenter.service" not in r.stderr, r.stderr


def test_the_installed_unit_exposure_is_at_most_2(tmp_path: Path) -> None:
    """``systemd-analyze security --offline=yes`` rates the installed unit's exposure at most 2.0."""
    root = _analyze_root(tmp_path)
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={root}", "callcenter.service"],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for callcenter\.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.0, r.stdout


@pytest.mark.parametrize("text,expected", [
    ("[globals]\nA=1\n[globals](+)\nB=2\n", [("A", "1"), ("B", "2")]),
    (";-- [globals]\nA=1 --;\n[globals]\nC=3 ; comment\n", [("C", "3")]),
])
def test_site_parse_follows_additions_and_skips_comments(text: str, expected: list) -> None:
    """``(+)`` adds to the earlier category; comments (line and block) are ignored."""
    s = site.parse(text)
    assert [c.name for c in s.categories] == ["globals"] and s.categories[0].vars == expected


def test_modules_the_dialplan_needs_are_checked() -> None:
    """A modules.conf that bars or does not load a needed module is reported; Debian's autoload is not."""
    assert site.module_notes(site.parse(DEBIAN["modules.conf"])) == []
    notes = site.module_notes(site.parse("[modules]\nautoload=yes\nnoload => app_audiosocket.so\n"))
    assert len(notes) == 1 and "app_audiosocket.so" in notes[0] and "chan_pjsip" not in notes[0]
    notes = site.module_notes(site.parse("[modules]\nautoload=no\nload => chan_pjsip.so\n"))
    assert "res_agi.so" in notes[0] and "chan_pjsip.so," not in notes[0]


def test_a_bad_configuration_leaves_asterisks_part_as_it_was(tmp_path: Path, capsys) -> None:
    """A conf.d error exits 2 with the key path; the fragments stay and the manifest still lists them."""
    _site(tmp_path)
    _install(tmp_path)
    frag = (tmp_path / "etc/asterisk/callcenter/pjsip.conf").read_bytes()
    (tmp_path / "etc/callcenter/conf.d/10-site.yaml").write_text("sip:\n  port: not-a-port\n")
    capsys.readouterr()
    assert _install(tmp_path) == 2
    assert "sip.port" in capsys.readouterr().err
    assert (tmp_path / "etc/asterisk/callcenter/pjsip.conf").read_bytes() == frag
    (tmp_path / "etc/callcenter/conf.d/10-site.yaml").unlink()
    main_uninstall(["--destdir", str(tmp_path), "--purge"])
    assert not (tmp_path / "etc/asterisk/callcenter").exists()


def test_card_channels_extend_the_sites_own_channels_section(tmp_path: Path) -> None:
    """With cards, chan_dahdi.conf is included from the site's file and extends its [channels] with (+)."""
    from callcenter.asterisk.render import render
    from tests.unit.test_cards import CFG  # the shipped config plus hardware/cards.example.yaml

    files = dict(DEBIAN)
    files["chan_dahdi.conf"] = "[trunkgroups]\n\n[channels]\ncontext=public\nusecallerid=yes\n"
    _site(tmp_path, files)
    etc = tmp_path / "etc/asterisk"
    plan = site.fragments(render(CFG), CFG, {n: site.read_site(etc, n) for n in site.SITE_FILES})
    frag = plan.files["callcenter/chan_dahdi.conf"]
    assert "[channels](+)" in frag and "\n[channels]\n" not in frag and "channel =>" in frag
    assert plan.includes["chan_dahdi.conf"] == ["callcenter/chan_dahdi.conf"]
