"""The dialplan contract: the shipped and rendered dialplans use only names the contract declares."""

import re
from importlib import resources

from callcenter import config as config_mod
from callcenter.asterisk import contract, render


def _rendered() -> str:
    cfg = config_mod.load("config/callcenter.yaml")
    files = render.render(cfg)
    static = resources.files("callcenter.asterisk").joinpath("dialplans/callcenter.conf").read_text()
    return static + "\n".join(files.values())


def test_every_cc_variable_in_the_dialplan_is_declared():
    """A CC_* variable the dialplan uses but the contract does not name fails here."""
    used = set(re.findall(r"\bCC_[A-Z_]+\b", _rendered()))
    assert used, "the dialplan uses CC_ variables"
    assert used <= contract.VARIABLES, sorted(used - contract.VARIABLES)


def test_every_cc_context_in_the_dialplan_is_declared():
    """A cc-* context (other than per-trunk ones) must be named in the contract."""
    text = _rendered()
    used = {c for c in re.findall(r"\bcc-[a-z][a-z-]*\b", text) if not c.startswith(contract.CTX_TRUNK_PREFIX)}
    assert used <= contract.CONTEXTS | {contract.TRANSPORT_UDP}, sorted(used - contract.CONTEXTS)


def test_every_agi_script_the_dialplan_calls_is_declared():
    """AGI(${CC_AGI}/<script>) names only scripts of the contract."""
    used = set(re.findall(r"\$\{CC_AGI\}/([a-z-]+)", _rendered()))
    assert used and used <= contract.AGI_SCRIPTS, sorted(used - contract.AGI_SCRIPTS)


def test_channel_vars_rendered_from_the_contract():
    """manager.conf/pjsip channelvars list exactly the contract's CHANNEL_VARS."""
    assert render.CHANNEL_VARS.split(",") == list(contract.CHANNEL_VARS)
