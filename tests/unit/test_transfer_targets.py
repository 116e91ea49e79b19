"""Transfer targets: what an agent's dialled digits may mean (features/transfer), and the config's checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from callcenter import config as config_mod
from callcenter.features.transfer.service import TransferService

LAB = Path(__file__).resolve().parents[1] / "asterisk" / "lab.yaml"
CFG = config_mod.load(LAB)


def _service(cfg: config_mod.Config = CFG) -> TransferService:
    return TransferService(lambda: cfg, acd_service=None, ami=None, agent_channel=lambda a: None)  # type: ignore[arg-type]


@pytest.mark.parametrize("digits, expected", [
    ("2002", ("agent", "bob", "")),                      # an agent's extension
    ("803", ("queue", "empty", "")),                     # transfers.queues code
    ("2004", ("out", "2004", "2004")),                   # a desk phone that is no agent's
    ("5550301", ("out", "5550301", "5550301@trunk-pstn")),  # the trunk's dial_allow (_555XXXX)
    ("19005551234", ("back", "", "")),                   # not allowed on that trunk
    ("4999", ("back", "", "")),
    ("2002,x", ("back", "", "")),                        # anything but digits and *
    ("", ("back", "", "")),
    ("1" * 21, ("back", "", "")),
])
def test_dialled_digits_resolve_to_a_target_or_back(digits, expected):
    """Digits resolve to an agent, a queue code, a desk phone, an allow-listed number, or back to the queue."""
    assert _service().resolve(digits, None) == expected


def test_no_transfer_trunk_means_no_outside_numbers():
    """Without transfers.trunk an outside number is refused (back to the queue)."""
    data = yaml.safe_load(LAB.read_text())
    data["transfers"] = {"queues": {"803": "empty"}}
    cfg = config_mod.parse(data)
    assert _service(cfg).resolve("5550301", None) == ("back", "", "")


@pytest.mark.parametrize("transfers, problem", [
    ({"queues": {"803": "nope"}}, "transfers.queues.803: unknown queue 'nope'"),
    ({"queues": {"2001": "sales"}}, "transfers.queues.2001: also a phone extension"),
    ({"queues": {"8": "sales"}}, "transfers.queues.8: a transfer code is 2-8 digits"),
    ({"trunk": "nope"}, "transfers.trunk: unknown trunk 'nope'"),
])
def test_config_refuses_bad_transfer_settings(transfers, problem):
    """Bad transfer codes, queues and trunks fail at start-up naming the key."""
    data = yaml.safe_load(LAB.read_text())
    data["transfers"] = transfers
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.parse(data)
    assert problem in str(e.value)


def test_transfer_route_is_valid_openapi():
    """The transfer route documents itself as valid OpenAPI 3.1 (body, 202 answer, refusals)."""
    from openapi_spec_validator import validate

    from callcenter.features.api.openapi import document
    from callcenter.features.transfer.api import routes

    doc = document(routes(_service())(None), version="0")  # type: ignore[arg-type]
    validate(doc)
    op = doc["paths"]["/api/v1/calls/{call_id}/transfer"]["post"]
    assert set(op["responses"]) >= {"202", "400", "403", "404", "409", "502"}
