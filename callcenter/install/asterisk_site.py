"""The Asterisk side of a production install, as text in, text out (no I/O but :func:`read_site`).

The daemon's render (:func:`callcenter.asterisk.render.render`) writes *whole* files, right for the
lab. On a production host the site owns ``/etc/asterisk``: our part goes into fragments under
``/etc/asterisk/callcenter/`` that the site's files ``#include`` (Debian's ``manager.conf``
already includes ``manager.d/*.conf``, so the AMI user goes there and that file is not touched).
A fragment never redefines what the site owns:

- ``pjsip.conf``: the ``type=global`` section is ours only if the site has none (a second
  global object would clash); otherwise a note says what to add to the site's own.
- ``manager.conf``: the site's ``[general]`` (enabled, bindaddr, port) stays theirs; we only
  append ``channelvars`` to it (``[general](+)``) and add our least-privilege user.
- ``extensions.conf``: no ``[general]``; our ``CC_*`` globals are appended to the site's
  ``[globals]`` with ``(+)`` (a second ``[globals]`` would be ignored by Asterisk).
- ``features.conf``: only our ``[applicationmap]`` entries. ``musiconhold.conf``: only the
  classes the site lacks. ``rtp.conf``: the site's (its range is the firewall's business).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the uninstall runs on the host's bare python3: no pydantic needed
    from callcenter.config import Config

__all__ = ["BEGIN", "END", "Category", "SiteFile", "Plan", "parse", "read_site", "fragments",
           "add_block", "remove_block", "SITE_FILES"]

BEGIN = "; >>> callcenter: added by `callcenter install`; `callcenter uninstall` removes this block"
END = "; <<< callcenter"
FRAG_DIR = "callcenter"  # under the Asterisk etc directory
MANAGER_D = "manager.d/callcenter.conf"  # where Debian's manager.conf already looks
# The site files we extend (and read to see what they already define).
SITE_FILES = ("pjsip.conf", "manager.conf", "extensions.conf", "features.conf", "musiconhold.conf", "chan_dahdi.conf")

_HEADER = re.compile(r"^\[([^\]]+)\]\s*(\(([^)]*)\))?")
_INCLUDE = re.compile(r'^#\s*(?:try)?include\s+"?([^"]+?)"?\s*$')
_VAR = re.compile(r"^([^=]+?)\s*=>?\s*(.*)$")


@dataclass
class Category:
    name: str
    options: str  # what is in the parentheses after the header: "+", "!", template names
    vars: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        """The last value of ``key`` (Asterisk modules that loop over a section keep the last)."""
        out = None
        for k, v in self.vars:
            if k.lower() == key.lower():
                out = v
        return out


@dataclass
class SiteFile:
    """What one site file defines, its ``#include``s followed (globs too), comments stripped."""
    categories: list[Category] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)  # as written in the top file

    def find(self, name: str) -> list[Category]:
        return [c for c in self.categories if c.name == name]

    def of_type(self, kind: str) -> list[Category]:
        return [c for c in self.categories if (c.get("type") or "").lower() == kind]

    def names(self) -> set[str]:
        return {c.name for c in self.categories}


def _strip_comment(line: str) -> str:
    out = []
    prev = ""
    for ch in line:
        if ch == ";" and prev != "\\":
            break
        out.append(ch)
        prev = ch
    return "".join(out).strip()


def parse(text: str, into: SiteFile | None = None, *,
          include: Callable[[str], list[str]] | None = None) -> SiteFile:
    """Parse Asterisk config ``text``; ``include(target)`` returns an included file's text or None."""
    site = into or SiteFile()
    cur: Category | None = site.categories[-1] if site.categories else None
    in_block = False
    for raw in text.splitlines():
        line = raw.strip()
        if in_block:  # ;-- block comment --;
            if "--;" in line:
                in_block = False
            continue
        if line.startswith(";--"):
            in_block = "--;" not in line[3:]
            continue
        m = _INCLUDE.match(line)
        if m:
            if into is None:
                site.includes.append(m.group(1))
            if include is not None:
                for sub in include(m.group(1)) or []:
                    parse(sub, site, include=include)
                    cur = site.categories[-1] if site.categories else None
            continue
        line = _strip_comment(line)
        if not line:
            continue
        h = _HEADER.match(line)
        if h:
            name, opts = h.group(1).strip(), (h.group(3) or "").strip()
            if opts == "+":  # an addition to an existing category
                prior = site.find(name)
                if prior:
                    cur = prior[-1]
                    continue
            cur = Category(name, opts)
            site.categories.append(cur)
            continue
        v = _VAR.match(line)
        if v and cur is not None:
            cur.vars.append((v.group(1).strip(), v.group(2).strip()))
    return site


def read_site(etc: Path, name: str) -> SiteFile:
    """The site's ``etc/name`` with its includes (relative to ``etc``, as Asterisk resolves them)."""
    def include(target: str) -> list[str]:
        base = Path(target) if target.startswith("/") else etc / target
        texts = []
        for p in sorted(glob.glob(str(base))):
            # Our own fragments are not the site's: they must not decide what the site has.
            rp = Path(p).resolve()
            if rp.is_relative_to((etc / FRAG_DIR).resolve()) or rp == (etc / MANAGER_D).resolve():
                continue
            try:
                texts.append(Path(p).read_text(errors="replace"))
            except OSError:
                continue
        return texts
    path = etc / name
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return SiteFile()
    return parse(text, include=include)


# ------------------------------------------------------------------------------ rendered files
def _split(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Preamble lines and (category name, lines incl. header) chunks of a rendered file."""
    pre: list[str] = []
    chunks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        h = _HEADER.match(line.strip())
        if h:
            chunks.append((h.group(1).strip(), [line]))
        elif chunks:
            chunks[-1][1].append(line)
        else:
            pre.append(line)
    return pre, chunks


def _join(pre: list[str], chunks: list[tuple[str, list[str]]]) -> str:
    lines = list(pre)
    for _, body in chunks:
        lines += body
    return "\n".join(lines).rstrip("\n") + "\n"


def _extend(body: list[str], site_has: bool) -> list[str]:
    """The chunk as an addition to the site's category of that name when it has one."""
    if not site_has:
        return body
    h = _HEADER.match(body[0].strip())
    assert h
    return [f"[{h.group(1).strip()}](+)"] + body[1:]


@dataclass
class Plan:
    """Fragments (path relative to the Asterisk etc dir -> text), the includes to add to each site
    file (in order), and notes for the operator."""
    files: dict[str, str]
    includes: dict[str, list[str]]
    notes: list[str]


HEAD = "; generated by `callcenter install` from /etc/callcenter — edit that, then run it again"


def fragments(rendered: dict[str, str], cfg: Config, site: dict[str, SiteFile]) -> Plan:
    """Turn the whole-file ``rendered`` set into fragments that fit the ``site`` files."""
    files: dict[str, str] = {}
    includes: dict[str, list[str]] = {}
    notes: list[str] = []

    def frag(name: str, text: str, into: str | None = None) -> None:
        rel = f"{FRAG_DIR}/{name}"
        files[rel] = text
        includes.setdefault(into or name, []).append(rel)

    for name, text in rendered.items():
        pre, chunks = _split(text)
        pre = [HEAD]
        s = site.get(name, SiteFile())
        if name == "pjsip.conf":
            mine = {n for n, _ in chunks}
            if s.of_type("global"):
                chunks = [(n, b) for n, b in chunks if not any(ln.strip() == "type=global" for ln in b)]
                notes.append("pjsip.conf: the site has its own type=global section, so ours is left out; if phones "
                             "and a trunk share addresses, set endpoint_identifier_order=username,ip,anonymous there "
                             "(takes effect on an Asterisk restart)")
            clash = sorted(mine & {c.name for c in s.categories if c.get("type") != "global"})
            if clash:
                notes.append(f"pjsip.conf: the site already defines {', '.join(clash)}: rename them or ours")
            if s.of_type("transport"):
                notes.append(f"pjsip.conf: the site has transports ({', '.join(c.name for c in s.of_type('transport'))});"
                             f" none may bind {cfg.sip.bind}:{cfg.sip.port} (ours: cc-udp) — or change sip.bind/port")
            frag(name, _join(pre, chunks))
        elif name == "manager.conf":
            out = []
            for n, body in chunks:
                if n == "general":
                    gen = s.find("general")
                    if gen:
                        body = ["[general](+)"] + [ln for ln in body[1:] if ln.startswith("channelvars=") or not ln]
                        g = gen[-1]
                        if (g.get("enabled") or "no").lower() not in ("yes", "true", "on", "1"):
                            notes.append("manager.conf: AMI is disabled in the site's [general]: set enabled = yes")
                        want = {"bindaddr": cfg.ami.host, "port": str(cfg.ami.port)}
                        have = {"bindaddr": g.get("bindaddr") or "0.0.0.0", "port": g.get("port") or "5038"}
                        for k in want:
                            if have[k] != want[k]:
                                notes.append(f"manager.conf: the site's [general] has {k} = {have[k]} but ami."
                                             f"{'host' if k == 'bindaddr' else 'port'} is {want[k]}: make them agree")
                        if g.get("channelvars"):
                            notes.append("manager.conf: the site sets channelvars; ours replaces it (Asterisk keeps "
                                         "the last) — merge the two lists in conf.d if the site needs its own")
                elif n in s.names():
                    notes.append(f"manager.conf: the site already has a user [{n}]: remove it or change ami.username")
                out.append((n, body))
            # Debian's manager.conf includes manager.d/*.conf: drop ours there, touch nothing.
            if any(inc.rstrip("/").startswith("manager.d/") and "*" in inc for inc in s.includes):
                files[MANAGER_D] = _join(pre, out)
            else:
                frag(name, _join(pre, out))
        elif name == "extensions.conf":
            out = []
            for n, body in chunks:
                if n == "general":
                    continue
                if n == "globals":
                    body = _extend(body, bool(s.find("globals")))
                    body = [ln.replace('#include "callcenter-dialplan.conf"', f'#include "{FRAG_DIR}/callcenter-dialplan.conf"')
                            for ln in body]
                elif n in s.names():
                    notes.append(f"extensions.conf: the site already has a context [{n}]: its extensions merge with ours")
                out.append((n, body))
            frag(name, _join(pre, out))
        elif name == "callcenter-dialplan.conf":
            files[f"{FRAG_DIR}/{name}"] = text  # included by our extensions.conf fragment
        elif name == "features.conf":
            out = [(n, _extend(b, bool(s.find(n)))) for n, b in chunks if n == "applicationmap"]
            frag(name, _join(pre, out))
        elif name == "musiconhold.conf":
            frag(name, _join(pre, [(n, b) for n, b in chunks if not s.find(n)]))
        elif name == "rtp.conf":
            notes.append(f"rtp.conf: the site's RTP range is kept; the firewall must pass it "
                         f"(callcenter's sip.rtp_start/rtp_end, {cfg.sip.rtp_start}-{cfg.sip.rtp_end}, is not applied)")
        else:  # a file some other feature renders (chan_dahdi.conf): included from the site's file, and
            # a category the site already has is extended with (+) — chan_dahdi reads only the first
            # [channels], so a second one of ours would be ignored
            frag(name, _join(pre, [(n, _extend(b, bool(s.find(n)))) for n, b in chunks]))
    return Plan(files, includes, notes)


# Modules the rendered configuration relies on (Debian's modules.conf autoloads them all).
REQUIRED_MODULES = ("chan_pjsip.so", "res_pjsip.so", "res_agi.so", "app_audiosocket.so", "chan_audiosocket.so",
                    "app_chanspy.so", "app_mixmonitor.so", "res_musiconhold.so", "pbx_config.so", "chan_local.so")


def module_notes(modules: SiteFile) -> list[str]:
    """What the site's modules.conf keeps from loading that we need."""
    m = modules.find("modules")
    if not m:
        return []
    autoload = (m[-1].get("autoload") or "no").lower() in ("yes", "true", "on", "1")
    loaded = {v for k, v in m[-1].vars if k.lower() in ("load", "require", "preload")}
    barred = {v for k, v in m[-1].vars if k.lower() == "noload"}
    missing = [mod for mod in REQUIRED_MODULES
               if mod in barred or (not autoload and mod not in loaded and mod != "chan_local.so")]
    return [f"modules.conf: load {', '.join(missing)} (callcenter's dialplan and AMI use them)"] if missing else []


# ------------------------------------------------------------------------------ include block
def block(targets: list[str]) -> str:
    return "\n".join([BEGIN, *(f'#include "{t}"' for t in targets), END]) + "\n"


def remove_block(text: str) -> str:
    """``text`` without our marked block (and the blank line we put before it)."""
    start = text.find(BEGIN)
    if start < 0:
        return text
    end = text.find(END, start)
    end = len(text) if end < 0 else end + len(END)
    if text[end:end + 1] == "\n":
        end += 1
    if text[:start].endswith("\n\n"):
        start -= 1
    return text[:start] + text[end:]


def add_block(text: str, targets: list[str]) -> str:
    """``text`` with exactly one marked block, at the end, including ``targets`` (idempotent)."""
    base = remove_block(text)
    if base and not base.endswith("\n"):
        base += "\n"
    return base + ("\n" if base else "") + block(targets)
