"""Configuration loading and validation: dotted error paths, conf.d overlays, the check-config CLI."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from callcenter import config as config_mod
from callcenter.config import ConfigError, load, parse

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "callcenter.yaml"
LAB = ROOT / "tests" / "asterisk" / "lab.yaml"
RAW = yaml.safe_load(SHIPPED.read_text())


def problems_of(mutate) -> list[str]:
    data = copy.deepcopy(RAW)
    mutate(data)
    with pytest.raises(ConfigError) as ei:
        parse(data)
    assert str(ei.value) == "\n".join(ei.value.problems)
    return ei.value.problems


# --------------------------------------------------------------------------- loading the shipped files

def test_shipped_config_loads():
    """config/callcenter.yaml validates, with the queues, agents, menus and DIDs it documents."""
    cfg = load(SHIPPED)
    assert list(cfg.queues) == ["sales", "support", "outbound"]
    assert cfg.queues["sales"].members == ("alice", "bob", "dave")
    assert cfg.queues["sales"].strategy == "skills"
    assert cfg.queues["sales"].penalties == {"dave": 2}
    assert cfg.queues["support"].fallback.queue == "sales"
    assert list(cfg.agents) == ["alice", "bob", "carol", "dave", "erin"]
    assert cfg.campaigns["demo-outbound"].queue == "outbound" and cfg.trunks["sim"].host == "127.0.0.3"
    assert set(cfg.menus) == {"main", "support"}
    assert set(cfg.trunks["pstn"].dids) == {"5551000", "5552000"}
    assert cfg.trunks["pstn"].dids["5552000"].kind == "hours"
    assert cfg.schedules["office"].timezone == "Europe/Paris"
    assert cfg.agent_by_phone("1002") == "bob" and cfg.agent_by_phone("1900") is None


def test_relative_database_resolved_next_to_config():
    """A relative daemon.database path is made absolute relative to the config file's directory."""
    cfg = load(SHIPPED)
    assert cfg.daemon.database == str(SHIPPED.parent.resolve() / "callcenter.sqlite3")


def test_lab_config_loads():
    """The lab config used by the Asterisk tests validates too."""
    cfg = load(LAB)
    assert cfg.queues["sales"].ring_timeout_s == 4 and cfg.queues["empty"].members == ("carol",)


def test_defaults_fill_optional_sections():
    """Omitted sections get their documented defaults (AGI 4573, HTTP 9180, feature codes *61-*64)."""
    data = copy.deepcopy(RAW)
    for k in ("agi", "http", "sip", "features", "daemon"):
        data.pop(k)
    cfg = parse(data)
    assert (cfg.agi.host, cfg.agi.port, cfg.http.port) == ("127.0.0.1", 4573, 9180)
    assert (cfg.features.login, cfg.features.logout, cfg.features.pause, cfg.features.unpause) == (
        "*61", "*62", "*63", "*64")
    assert cfg.daemon.database == "callcenter.sqlite3"  # parse() does not resolve paths, load() does


def test_config_is_frozen():
    """The validated config cannot be changed afterwards."""
    cfg = load(SHIPPED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.ami.port = 1  # type: ignore[misc]


def test_config_mappings_are_frozen_too():
    """The mappings inside the validated config (queues, penalties, menu options, DIDs) cannot be changed either."""
    cfg = load(SHIPPED)
    with pytest.raises(TypeError):
        cfg.queues["ghost"] = cfg.queues["sales"]  # type: ignore[index]
    with pytest.raises(TypeError):
        cfg.queues["sales"].penalties["dave"] = 0  # type: ignore[index]
    with pytest.raises(TypeError):
        cfg.menus["main"].options.pop("1")
    with pytest.raises(TypeError):
        cfg.trunks["pstn"].dids.update({"5553000": cfg.trunks["pstn"].dids["5551000"]})
    with pytest.raises(TypeError):
        cfg.menus["main"].options["3"].skills.clear()  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        parse(copy.deepcopy(RAW)).campaigns["demo-outbound"].dispositions.setdefault("9", "spam")


def test_frozen_config_still_copies_and_serialises():
    """A frozen config deep-copies, pickles and turns into plain data (asdict, JSON) like before."""
    import json
    import pickle
    cfg = load(SHIPPED)
    assert copy.deepcopy(cfg) == cfg and pickle.loads(pickle.dumps(cfg)) == cfg
    data = json.loads(json.dumps(dataclasses.asdict(cfg)))
    assert data["queues"]["sales"]["penalties"] == {"dave": 2}
    assert config_mod.freeze(dataclasses.replace(cfg, pause_reasons={"1": "lunch"})).pause_reasons == {"1": "lunch"}


# --------------------------------------------------------------------------- error paths

def test_unknown_key_has_dotted_path():
    """An unknown key inside a queue is reported as queues.sales.bogus: unknown key."""
    assert problems_of(lambda d: d["queues"]["sales"].update(bogus=1)) == ["queues.sales.bogus: unknown key"]


def test_unknown_top_level_key():
    """An unknown top-level key is named on its own."""
    assert problems_of(lambda d: d.update(bogus=1)) == ["bogus: unknown key"]


def test_unknown_strategy_value():
    """An unsupported strategy names the key path and the bad value."""
    (p,) = problems_of(lambda d: d["queues"]["sales"].update(strategy="fastest"))
    assert p.startswith("queues.sales.strategy: unknown value 'fastest'")
    assert "longest-idle" in p


def test_unknown_queue_in_menu_option():
    """A menu option pointing to a missing queue is reported with its full path."""
    assert problems_of(lambda d: d["menus"]["main"]["options"].update({"1": {"queue": "nope"}})) == [
        "menus.main.options.1.queue: unknown queue 'nope'"]


def test_unknown_menu_and_schedule_references():
    """Missing menus and schedules referenced by DIDs and hours actions are reported at their path."""
    def mut(d):
        d["trunks"]["pstn"]["dids"]["5551000"] = {"menu": "ghost"}
        d["trunks"]["pstn"]["dids"]["5552000"]["hours"]["schedule"] = "never"
    assert sorted(problems_of(mut)) == [
        "trunks.pstn.dids.5551000.menu: unknown menu 'ghost'",
        "trunks.pstn.dids.5552000.hours.schedule: unknown schedule 'never'",
    ]


def test_dial_to_unknown_phone():
    """A dial action to an extension that is not a configured phone is refused."""
    assert problems_of(lambda d: d["menus"]["main"]["options"].update({"0": {"dial": "1999"}})) == [
        "menus.main.options.0.dial: unknown phone '1999'"]


@pytest.mark.parametrize("key", ["11", "a", "", "1\n"])
def test_bad_dtmf_option_key(key):
    """Menu option keys must be exactly one DTMF digit."""
    (p,) = problems_of(lambda d: d["menus"]["main"]["options"].update({key: {"queue": "sales"}}))
    assert p.startswith("menus.main.options: option key ")
    assert "must be one DTMF digit" in p


@pytest.mark.parametrize("where, prompt", [
    ("prompt", ["../../etc/passwd"]),
    ("prompt", ["sounds/../secret"]),
    ("prompt", ["beep.wav"]),
    ("prompt", ["/abs/path"]),
    ("prompt", ["beep\n"]),
    ("invalid_prompt", "../x"),
])
def test_bad_prompt_name(where, prompt):
    """Prompt names with '..', an extension, a leading '/', or a newline are refused at their path."""
    (p,) = problems_of(lambda d: d["menus"]["main"].update({where: prompt}))
    assert p.startswith(f"menus.main.{where}: bad prompt name ")


def test_bad_prompt_in_hangup_action():
    """Prompts inside a hangup action are checked too."""
    (p,) = problems_of(lambda d: d["queues"]["sales"].update(fallback={"hangup": ["../goodbye"]}))
    assert p.startswith("queues.sales.fallback.hangup: bad prompt name '../goodbye'")


def test_agent_phone_missing():
    """An agent whose phone is not in phones is reported."""
    assert problems_of(lambda d: d["agents"]["alice"].update(phone="1999")) == [
        "agents.alice.phone: unknown phone '1999'"]


def test_duplicate_phone_among_agents():
    """Two agents on the same phone: the second is reported, naming the first."""
    assert problems_of(lambda d: d["agents"]["bob"].update(phone="1001")) == [
        "agents.bob.phone: phone '1001' already belongs to agent 'alice'"]


def test_unknown_queue_member():
    """A queue member that is not an agent is reported with its list index."""
    assert problems_of(lambda d: d["queues"]["sales"].update(members=["alice", "dave", "zed"])) == [
        "queues.sales.members.2: unknown agent 'zed'"]


def test_penalty_for_a_non_member():
    """A penalty for an agent who is not in the queue is reported with its key path."""
    assert problems_of(lambda d: d["queues"]["sales"].update(members=["alice", "bob"])) == [
        "queues.sales.penalties.dave: not a member of the queue"]


def test_queue_fallback_to_itself():
    """A queue falling back to itself would loop forever and is refused."""
    assert problems_of(lambda d: d["queues"]["support"].update(fallback={"queue": "support"})) == [
        "queues.support.fallback.queue: a queue cannot fall back to itself"]


def test_action_needs_exactly_one_kind():
    """An action with two kinds (or none) is refused at its path."""
    (p,) = problems_of(lambda d: d["menus"]["main"]["options"]["1"].update(menu="support"))
    assert p == ("menus.main.options.1: an action needs exactly one of menu, queue, hangup, dial, hours "
                 "(got menu, queue)")


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["schedules"]["office"].update(timezone="Mars/Olympus"),
     "schedules.office.timezone: unknown time zone 'Mars/Olympus'"),
    (lambda d: d["schedules"]["office"]["weekly"].update(mon=["20:00-08:00"]),
     "schedules.office.weekly: mon: bad time range '20:00-08:00' (HH:MM-HH:MM, start before end)"),
    (lambda d: d["schedules"]["office"]["holidays"].update(dates=["24/12/2026"]),
     "schedules.office.holidays.dates: date '24/12/2026' is not YYYY-MM-DD"),
    (lambda d: d["trunks"]["pstn"]["dids"].update({"abc": {"menu": "main"}}),
     "trunks.pstn.dids: DID 'abc' must be digits (optionally a leading +)"),
    (lambda d: d["trunks"]["pstn"]["dids"].update({"5553000\n": {"menu": "main"}}),
     "trunks.pstn.dids: DID '5553000\\n' must be digits (optionally a leading +)"),
    (lambda d: d["phones"].update({"1x": {"secret": "long-enough-secret"}}),
     "phones.1x: extension must be 2-15 digits"),
    (lambda d: d["phones"].update({"1005\n": {"secret": "long-enough-secret"}}),
     "phones.1005\n: extension must be 2-15 digits"),
    (lambda d: d["queues"].update({"Sales": copy.deepcopy(d["queues"]["support"])}),
     "queues.Sales: bad name (lowercase letters, digits, _ or -, max 32)"),
    (lambda d: d["features"].update(logout="*61"), "features: feature codes must differ"),
    (lambda d: d["sip"].update(rtp_start=20000, rtp_end=20000), "sip.rtp_end: must be above sip.rtp_start"),
    (lambda d: d.pop("ami"), "ami: required key missing"),
    (lambda d: d["queues"]["sales"].update(ring_timeout_s=0),
     "queues.sales.ring_timeout_s: input should be greater than 0"),
    (lambda d: d["phones"]["1001"].update(secret="short"),
     "phones.1001.secret: a secret is 8-128 printable characters without spaces, quotes, ';' or '\\'"),
    (lambda d: d["ami"].update(secret="long-enough\nwrite=system,command"),
     "ami.secret: a secret is 8-128 printable characters without spaces, quotes, ';' or '\\'"),
    (lambda d: d["phones"]["1001"].update(name="Alice;evil"),
     "phones.1001.name: a display name is up to 48 letters, digits, spaces and . , _ ' -"),
    (lambda d: d["trunks"]["pstn"].update(match=["not-an-ip"]),
     "trunks.pstn.match: 'not-an-ip' is not an IP address or network"),
    (lambda d: d["features"].update(pause="63"), "features.pause: string should match pattern '^\\*[0-9]{1,4}$'"),
])
def test_more_error_paths(mutate, expected):
    """Each kind of mistake is reported once, with its dotted key path and a readable reason."""
    assert problems_of(mutate) == [expected]


def test_several_problems_reported_together():
    """Independent mistakes are all reported in one go, not one per run."""
    def mut(d):
        d["queues"]["sales"]["bogus"] = 1
        d["queues"]["sales"]["strategy"] = "fastest"
    probs = problems_of(mut)
    assert len(probs) == 2
    assert "queues.sales.bogus: unknown key" in probs
    assert any(p.startswith("queues.sales.strategy: unknown value 'fastest'") for p in probs)


def test_top_level_must_be_mapping():
    """A YAML list at the top level is refused, naming the source."""
    with pytest.raises(ConfigError) as ei:
        parse(["a", "b"], source="x.yaml")
    assert ei.value.problems == ["x.yaml: the top level must be a mapping"]


def test_non_string_top_level_key():
    """A non-string top-level key (YAML `1: x`) is an unknown key, not a crash."""
    data = copy.deepcopy(RAW)
    data[1] = "x"
    with pytest.raises(ConfigError) as ei:
        parse(data)
    assert ei.value.problems == ["1: unknown key"]


# --------------------------------------------------------------------------- files and overlays

def _copy_shipped(tmp_path: Path) -> Path:
    path = tmp_path / "callcenter.yaml"
    path.write_text(SHIPPED.read_text())
    return path


def test_invalid_yaml_reports_file_and_line(tmp_path):
    """A YAML syntax error is reported as file:line:column: invalid YAML."""
    path = tmp_path / "bad.yaml"
    path.write_text("ami:\n  secret: x\nqueues:\n  sales: [alice, bob\n  other: 1\n")
    with pytest.raises(ConfigError) as ei:
        load(path)
    assert ei.value.problems == [f"{path}:5:8: invalid YAML (expected ',' or ']', but got ':')"]


def test_missing_file_is_config_error(tmp_path):
    """A missing file is a ConfigError naming it, not a traceback."""
    with pytest.raises(ConfigError) as ei:
        load(tmp_path / "nope.yaml")
    assert ei.value.problems[0].startswith(f"{tmp_path / 'nope.yaml'}: cannot read")


def test_conf_d_overlay_merges(tmp_path):
    """conf.d/10-x.yaml changing only queues.sales.wrapup_s changes that and nothing else."""
    path = _copy_shipped(tmp_path)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-x.yaml").write_text("queues:\n  sales:\n    wrapup_s: 42\n")
    base, merged = load(SHIPPED), load(path)
    assert merged.queues["sales"].wrapup_s == 42
    assert base.queues["sales"].wrapup_s == 5
    assert merged.queues["sales"].members == base.queues["sales"].members
    assert merged.queues["sales"].announce == base.queues["sales"].announce
    assert merged.queues["support"] == base.queues["support"]
    assert merged.menus == base.menus and merged.agents == base.agents


def test_conf_d_order_and_list_replacement(tmp_path):
    """Overlays apply in name order (later wins) and lists are replaced, not appended."""
    path = _copy_shipped(tmp_path)
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "20-b.yaml").write_text("queues: {sales: {wrapup_s: 9, members: [dave, bob]}}\n")
    (d / "10-a.yaml").write_text("queues: {sales: {wrapup_s: 7}}\n")
    (d / "30-c.yml").write_text("queues: {sales: {wrapup_s: 1000}}\n")  # not *.yaml: ignored
    (d / "README").write_text("not yaml: [")
    cfg = load(path)
    assert cfg.queues["sales"].wrapup_s == 9
    assert cfg.queues["sales"].members == ("dave", "bob")


def test_conf_d_overlay_error_has_key_path(tmp_path):
    """A bad value in an overlay is reported with the merged key path."""
    path = _copy_shipped(tmp_path)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-x.yaml").write_text("queues:\n  sales:\n    wrapup_s: -1\n    colour: red\n")
    with pytest.raises(ConfigError) as ei:
        load(path)
    assert sorted(ei.value.problems) == [
        "queues.sales.colour: unknown key",
        "queues.sales.wrapup_s: input should be greater than or equal to 0",
    ]


def test_conf_d_overlay_yaml_error_names_overlay_file(tmp_path):
    """A YAML error inside an overlay names the overlay file and line."""
    path = _copy_shipped(tmp_path)
    (tmp_path / "conf.d").mkdir()
    bad = tmp_path / "conf.d" / "10-x.yaml"
    bad.write_text("queues:\n  sales:\n    wrapup_s: [1\n")
    with pytest.raises(ConfigError) as ei:
        load(path)
    assert ei.value.problems[0].startswith(f"{bad}:")
    assert "invalid YAML" in ei.value.problems[0]


def test_merge_semantics():
    """_merge merges mappings key by key and replaces everything else."""
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    assert config_mod._merge(base, {"a": {"y": [3]}, "c": 2}) == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}
    assert config_mod._merge(base, {"a": 5}) == {"a": 5, "b": 1}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # the base is not mutated


# --------------------------------------------------------------------------- CLI

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "callcenter", *args], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_cli_check_config_ok():
    """check-config on the shipped config exits 0 and summarises it."""
    r = _cli("check-config", str(SHIPPED))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok: 3 queues, 5 agents, 2 menus, 2 DIDs"


def test_cli_check_config_error(tmp_path):
    """check-config on a bad config exits 2 and prints the dotted path on stderr."""
    data = copy.deepcopy(RAW)
    data["queues"]["sales"]["strategy"] = "fastest"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    r = _cli("check-config", str(path))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.startswith("config error: queues.sales.strategy: unknown value 'fastest'")
    assert "Traceback" not in r.stderr


def test_amd_profile_errors_name_the_key():
    """A bad AMD profile parameter is reported under amd_profiles.<name>."""
    import copy
    import yaml as _yaml
    d = _yaml.safe_load(open("tests/asterisk/lab.yaml"))
    d = copy.deepcopy(d)
    d["amd_profiles"] = {"fast": {"no_such_param": 1}}
    with pytest.raises(ConfigError) as ei:
        parse(d)
    assert ei.value.problems == ["amd_profiles.fast.no_such_param: unknown key"]
