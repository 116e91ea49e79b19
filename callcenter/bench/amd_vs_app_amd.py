"""``callcenter bench amd-vs-app-amd``: a labelled corpus through our detector and through Asterisk's
own ``AMD()`` in the lab Asterisk, in one run, with the same metrics, per group and as curves.

The corpus is ``--corpus DIR`` — any directory with a ``labels.csv`` (``file,label,first_utterance_end_s``;
optional ``beep_s``; any other column is a *group*, e.g. ``voice,language,kind,impairment``), audio
in any format libsndfile reads — or, by default, the held-out TEST split of ``tests/amd_broad.py``
(voices and languages never used for tuning). Ours runs the same streaming code as the live
path, fed 20 ms at a time. For app_amd every recording is copied into Asterisk's sounds, played
by one half of a Local channel while the other half runs ``AMD()`` (several at a time); the
verdict and the time from answer to verdict come back as a UserEvent over AMI.

Reported: the summary (accuracy; people called MACHINE — abandoned calls; machines that would
reach an agent; the HUMAN verdict's delay after the person stops speaking), the same per group
value, and the *curve*: people called MACHINE vs machines reaching agents, for ours at each
operating point (``max_live_hangups``) and for app_amd at each ``AMD()`` setting of ``--app-amd-settings``.

The lab is taken down at the end (also on Ctrl-C, SIGTERM or SIGHUP) unless it was already up;
``$CALLCENTER_LAB_PORT_OFFSET`` moves every port, for a second lab.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

from callcenter.asterisk.ami_client import AmiClient
from callcenter.features.amd import detector as amd
from callcenter.features.amd.detector import AmdParams, Result, classify
from callcenter.lab.asterisk import Lab, LabError, port_offset, shift_ports
from callcenter.lab.signals import interrupt_on_stop_signals
from callcenter.protocol.ami import Message
from callcenter.bench.amd_corpus import evaluate

SECRET = "bench-ami-secret"
CONFIG = {
    "ami": {"host": "127.0.0.1", "port": 5038, "username": "callcenter", "secret": SECRET},
    "daemon": {"log_format": "json"},
    "phones": {}, "agents": {}, "queues": {}, "menus": {},
    "trunks": {"pstn": {"match": ["127.0.0.2"], "dids": {}}},
}
# silence after the recording: a real line stays open, AMD must be able to hear the pause
DIALPLAN = {"extensions.conf": """
[cc-amd-bench]
exten => play,1,Answer()
 same => n,Playback(cc-corpus/${FILE}&silence/10)
 same => n,Hangup()
exten => appamd,1,Answer()
 same => n,Set(T0=${STRFTIME(,,%s.%3q)})
 same => n,AMD(${A1},${A2},${A3},${A4},${A5},${A6},${A7})
 same => n,UserEvent(CCAmdBench,File: ${FILE},Status: ${AMDSTATUS},Cause: ${AMDCAUSE},T0: ${T0},T1: ${STRFTIME(,,%s.%3q)})
 same => n,Hangup()
"""}
# AMD() settings for app_amd's curve: its defaults, then longer greetings and more words allowed
# (initialSilence,greeting,afterGreetingSilence,totalAnalysisTime,minimumWordLength,
#  betweenWordsSilence,maximumNumberOfWords).
APP_AMD_SETTINGS = ("", "2500,3000,800,6000,100,50,4", "2500,5000,1000,7000,100,50,8")
LABEL_COLUMNS = ("file", "label", "first_utterance_end_s")
MAX_FILES = 20_000


class CorpusError(ValueError):
    """A labels.csv that cannot be used; the message names the row and column."""


@dataclass(frozen=True)
class LabelledFile:
    """One row of labels.csv (``name`` is a safe sound name, never the file's)."""

    name: str
    path: str
    label: str
    first_utterance_end_ms: int
    beep_ms: int | None
    groups: tuple[tuple[str, str], ...] = ()

    def group(self, key: str) -> str:
        return dict(self.groups).get(key, "")


def read_labels(directory: Path) -> list[LabelledFile]:
    """The rows of ``DIR/labels.csv``; file names must stay inside DIR."""
    root = directory.resolve()
    path = root / "labels.csv"
    try:
        f = path.open(newline="")
    except OSError as e:
        raise CorpusError(f"{path}: cannot read ({e.strerror})") from e
    out: list[LabelledFile] = []
    with f:
        rd = csv.DictReader(f)
        missing = [c for c in LABEL_COLUMNS if c not in (rd.fieldnames or [])]
        if missing:
            raise CorpusError(f"{path}: missing column(s) {', '.join(missing)}")
        extra = [c for c in rd.fieldnames or [] if c not in LABEL_COLUMNS and c != "beep_s"]
        for n, row in enumerate(rd, start=2):
            if len(out) >= MAX_FILES:
                raise CorpusError(f"{path}: more than {MAX_FILES} rows")
            label = (row.get("label") or "").strip().lower()
            if label not in ("human", "machine"):
                raise CorpusError(f"{path}:{n}: label: must be human or machine")
            file = (row.get("file") or "").strip()
            target = (root / file).resolve()
            if not file or not target.is_relative_to(root) or not target.is_file():
                raise CorpusError(f"{path}:{n}: file: {file[:80]!r} is not a file inside {root}")
            try:
                end = float(row["first_utterance_end_s"] or "nan")
                beep = (row.get("beep_s") or "").strip()
                beep_ms = round(float(beep) * 1000) if beep else None
            except ValueError:
                raise CorpusError(f"{path}:{n}: first_utterance_end_s/beep_s: must be seconds") from None
            if label == "human" and not np.isfinite(end):
                raise CorpusError(f"{path}:{n}: first_utterance_end_s: needed for a human")
            out.append(LabelledFile(f"f{len(out):05d}", str(target), label,
                                    round(end * 1000) if np.isfinite(end) else 0, beep_ms,
                                    tuple((c, (row.get(c) or "").strip()[:64]) for c in extra)))
    if not out:
        raise CorpusError(f"{path}: no rows")
    return out


def load_corpus(directory: Path) -> tuple[list[LabelledFile], list[np.ndarray]]:
    from callcenter.cli.amd import load
    items = read_labels(directory)
    return items, [load(it.path) for it in items]


def generated(count: int, seed: int, split: str = "test") -> tuple[list[LabelledFile], list[np.ndarray]]:
    """The broad generator's split as LabelledFiles (groups voice, language, kind, impairment)."""
    from callcenter.bench.amd_train import _broad
    data = _broad().generate_parallel(seed, count, split, 2)
    items = [LabelledFile(f"f{i:05d}", it.name, it.label, it.first_utterance_end_ms, it.beep_ms,
                          tuple((g, str(getattr(it, g))) for g in ("voice", "language", "kind", "impairment")))
             for i, (it, _) in enumerate(data)]
    return items, [x for _, x in data]


def metrics(items: list[Any], results: list[Result]) -> dict[str, Any]:
    """:func:`evaluate` plus the share of machines that would reach an agent (not MACHINE)."""
    m = evaluate(items, results)
    machines = [r for it, r in zip(items, results) if it.label == "machine"]
    m["machines_to_agents_rate"] = (sum(r.verdict != "MACHINE" for r in machines) / len(machines)
                                    if machines else None)
    return m


SUMMARY = ("files", "accuracy", "humans_classified_machine_rate", "machines_to_agents_rate",
           "human_delay_after_utterance_ms_median", "human_delay_after_utterance_ms_p90")


def by_group(items: list[LabelledFile], results: list[Result], key: str) -> dict[str, dict[str, Any]]:
    """Metrics per value of a group column (``impairment`` values are split on ``+``)."""
    buckets: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        v = it.group(key)
        for part in (v.split("+") if key == "impairment" else [v]):
            buckets.setdefault(part, []).append(i)
    out = {}
    for v, idx in sorted(buckets.items()):
        m = metrics([items[i] for i in idx], [results[i] for i in idx])
        out[v] = {k: m[k] for k in SUMMARY}
    return out


def curve_ours(items: list[LabelledFile], audio: list[np.ndarray], params: AmdParams) -> list[dict[str, Any]]:
    """People called MACHINE vs machines reaching agents at each shipped operating point."""
    out = []
    for rate in sorted({0.0} | {r for r, _ in amd.MODEL["curve"]}):
        m = metrics(items, classify(audio, replace(params, max_live_hangups=rate)))
        out.append({"max_live_hangups": rate, "humans_classified_machine_rate": m["humans_classified_machine_rate"],
                    "machines_to_agents_rate": m["machines_to_agents_rate"], "accuracy": m["accuracy"]})
    return out


async def _app_amd(ami_port: int, names: list[str], parallel: int, timeout_s: float,
                   amd_args: str = "") -> dict[str, Result]:
    events: dict[str, Message] = {}
    got = asyncio.Event()

    def on_event(m: Message) -> None:
        if m.event == "UserEvent" and m.get("UserEvent") == "CCAmdBench":
            events[m.get("File")] = m
            got.set()

    up = asyncio.Event()

    async def on_up() -> None:
        up.set()

    # One variable per AMD() argument (an empty one keeps app_amd's default).
    vals = amd_args.split(",") if amd_args else []
    args = [("Variable", f"A{i + 1}={v}") for i, v in enumerate(vals)]
    ami = AmiClient("127.0.0.1", ami_port, "callcenter", SECRET, on_event=on_event, on_up=on_up, on_down=lambda: None)
    task = asyncio.create_task(ami.run())
    try:
        await asyncio.wait_for(up.wait(), 20)
        pending = list(names)
        in_flight: dict[str, float] = {}
        while pending or in_flight:
            while pending and len(in_flight) < parallel:
                name = pending.pop(0)
                await ami.action("Originate", [("Channel", "Local/play@cc-amd-bench/n"), ("Context", "cc-amd-bench"),
                                               ("Exten", "appamd"), ("Priority", "1"), ("Async", "true"),
                                               ("Variable", f"_FILE={name}"), *args])
                in_flight[name] = time.monotonic()
            got.clear()
            for name in [n for n in in_flight if n in events]:
                del in_flight[name]
            late = [n for n, t in in_flight.items() if time.monotonic() - t > timeout_s]
            for name in late:  # never answered by AMD in time: NOTSURE
                del in_flight[name]
            if in_flight and not any(n in events for n in in_flight):
                try:
                    await asyncio.wait_for(got.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
    finally:
        ami.stop()
        await task
    out = {}
    for name in names:
        m = events.get(name)
        if m is None:
            out[name] = Result("NOTSURE", int(timeout_s * 1000))
            continue
        status = m.get("Status")
        verdict = status if status in ("HUMAN", "MACHINE") else "NOTSURE"
        try:
            ms = int(round((float(m.get("T1")) - float(m.get("T0"))) * 1000))
        except ValueError:
            ms = 0
        out[name] = Result(verdict, ms)
    return out


def run(items: list[LabelledFile], audio: list[np.ndarray], parallel: int, groups: list[str],
        app_settings: tuple[str, ...], with_app_amd: bool = True) -> dict[str, Any]:
    params = AmdParams()
    t0 = time.perf_counter()
    ours_res = classify(audio, params)
    ours = metrics(items, ours_res)
    ours["run_s"] = round(time.perf_counter() - t0, 2)
    out: dict[str, Any] = {"files": len(items), "ours": ours,
                           "ours_by_group": {g: by_group(items, ours_res, g) for g in groups},
                           "curve": {"ours": curve_ours(items, audio, params)}}
    if not with_app_amd:
        out["summary"] = {k: {"ours": ours[k]} for k in SUMMARY}
        return out
    tmp = Path(tempfile.mkdtemp(prefix="cc-amd-bench-"))
    cfg = shift_ports(dict(CONFIG, daemon={"database": str(tmp / "x.sqlite3"), "log_format": "json"}),
                      port_offset())
    (tmp / "bench.yaml").write_text(yaml.safe_dump(cfg))
    lab = Lab.default()
    app_runs: dict[str, dict[str, Result]] = {}
    try:
        with lab.session(tmp / "bench.yaml", extra=DIALPLAN) as info:
            sounds = lab.root / "usr/share/asterisk/sounds/cc-corpus"
            sounds.mkdir(parents=True, exist_ok=True)
            try:
                for it, x in zip(items, audio):
                    sf.write(sounds / f"{it.name}.wav", x.astype(np.int16), 8000, subtype="PCM_16")
                for setting in app_settings:
                    t0 = time.monotonic()
                    app_runs[setting] = asyncio.run(_app_amd(cfg["ami"]["port"], [it.name for it in items],
                                                             parallel, 25.0, setting))
                    out.setdefault("app_amd_run_s", {})[setting or "default"] = round(time.monotonic() - t0, 1)
            finally:
                shutil.rmtree(sounds, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["asterisk"] = info["asterisk"]
    default = [app_runs[app_settings[0]][it.name] for it in items]
    app = metrics(items, default)
    out["app_amd"] = app
    out["app_amd_by_group"] = {g: by_group(items, default, g) for g in groups}
    out["curve"]["app_amd"] = []
    for setting in app_settings:
        m = metrics(items, [app_runs[setting][it.name] for it in items])
        out["curve"]["app_amd"].append({"amd_args": setting or "defaults",
                                        "humans_classified_machine_rate": m["humans_classified_machine_rate"],
                                        "machines_to_agents_rate": m["machines_to_agents_rate"],
                                        "accuracy": m["accuracy"]})
    out["summary"] = {k: {"ours": ours[k], "app_amd": app[k]} for k in SUMMARY}
    return out


def _pct(v: Any) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def _s(v: Any) -> str:
    return "–" if v is None else f"{v / 1000:.2f}"


def markdown(res: dict[str, Any]) -> str:
    """The result as Markdown tables (summary, curve, one table per group)."""
    cols = ["ours"] + (["app_amd"] if "app_amd" in res else [])
    lines = ["| | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    rows = [("files", "files", str), ("accuracy", "accuracy", _pct),
            ("people called MACHINE", "humans_classified_machine_rate", _pct),
            ("machines reaching agents", "machines_to_agents_rate", _pct),
            ("HUMAN verdict after the person stops, median (s)", "human_delay_after_utterance_ms_median", _s),
            ("… p90 (s)", "human_delay_after_utterance_ms_p90", _s)]
    for title, key, fmt in rows:
        lines.append(f"| {title} | " + " | ".join(fmt(res[c][key]) for c in cols) + " |")
    lines += ["", "| curve point | people called MACHINE | machines reaching agents | accuracy |", "|---|---|---|---|"]
    for c in res["curve"]["ours"]:
        lines.append(f"| ours, max_live_hangups {c['max_live_hangups']:g} | {_pct(c['humans_classified_machine_rate'])}"
                     f" | {_pct(c['machines_to_agents_rate'])} | {_pct(c['accuracy'])} |")
    for c in res["curve"].get("app_amd", []):
        lines.append(f"| app_amd AMD({c['amd_args']}) | {_pct(c['humans_classified_machine_rate'])}"
                     f" | {_pct(c['machines_to_agents_rate'])} | {_pct(c['accuracy'])} |")
    for g, table in res["ours_by_group"].items():
        app = res.get("app_amd_by_group", {}).get(g, {})
        lines += ["", f"| {g} | files | accuracy ours / app_amd | people called MACHINE ours / app_amd |"
                      " HUMAN delay median / p90 (s), ours |", "|---|---|---|---|---|"]
        for v, m in table.items():
            a = app.get(v, {})
            lines.append(f"| {v or '–'} | {m['files']} | {_pct(m['accuracy'])} / {_pct(a.get('accuracy'))} | "
                         f"{_pct(m['humans_classified_machine_rate'])} / {_pct(a.get('humans_classified_machine_rate'))} | "
                         f"{_s(m['human_delay_after_utterance_ms_median'])} / {_s(m['human_delay_after_utterance_ms_p90'])} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench amd-vs-app-amd", description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=None, help="a directory with labels.csv (default: generate)")
    ap.add_argument("--count", type=int, default=200, help="generated recordings (without --corpus)")
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--parallel", type=int, default=10)
    ap.add_argument("--groups", default="language,kind,impairment,voice",
                    help="group columns to report (labels.csv columns)")
    ap.add_argument("--app-amd-settings", default=";".join(APP_AMD_SETTINGS),
                    help="';'-separated AMD() argument lists for app_amd's curve (first: the column)")
    ap.add_argument("--ours-only", action="store_true", help="no lab: our detector only")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--markdown", action="store_true", help="Markdown tables (summary, curve, groups)")
    a = ap.parse_args(argv)
    settings = tuple(a.app_amd_settings.split(";"))
    if any(not all(c.isdigit() or c == "," for c in st) for st in settings):
        print("bench amd-vs-app-amd: --app-amd-settings: digits and commas only", file=sys.stderr)
        return 2
    try:
        items, audio = load_corpus(a.corpus) if a.corpus else generated(a.count, a.seed)
    except CorpusError as e:
        print(f"bench amd-vs-app-amd: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 - unreadable audio in the corpus
        print(f"bench amd-vs-app-amd: {e}", file=sys.stderr)
        return 2
    groups = [g for g in a.groups.split(",") if g and any(g == k for k, _ in items[0].groups)]
    try:
        with interrupt_on_stop_signals():
            res = run(items, audio, a.parallel, groups, settings, not a.ours_only)
    except (LabError, OSError) as e:
        print(f"bench amd-vs-app-amd: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP: cleaned up on the way here
        print(f"bench amd-vs-app-amd: stopped ({e or 'SIGINT'})", file=sys.stderr)
        return 130
    res["corpus"] = str(a.corpus) if a.corpus else f"generated test split, seed {a.seed}, {a.count} files"
    for k in ("ours", "app_amd"):
        if k in res:
            res[k].pop("errors", None)
    if a.markdown:
        print(markdown(res))
    else:
        print(json.dumps(res, indent=1) if a.json else json.dumps({"summary": res["summary"], "curve": res["curve"]}, indent=1))
    return 0
