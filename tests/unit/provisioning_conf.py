"""A config with one desk phone per vendor (shared by the provisioning tests and the bench test)."""

from __future__ import annotations

from typing import Any

from callcenter import config as config_mod
from callcenter.features.provisioning.digest import ha1

REALM = "callcenter-provisioning"
# MAC -> provisioning password (the config holds only the HA1)
PASSWORDS = {"805ec0000001": "yealink-pw-1", "0004f2000002": "polycom-pw-2", "000b82000003": "gs-pw-3",
             "000413000004": "snom-pw-4"}


def data(**provisioning: Any) -> dict[str, Any]:
    phones = {
        "2001": {"secret": "s3cret-2001&<x>", "mac": "80:5E:C0:00:00:01", "model": "yealink-t46u"},
        "2002": {"secret": "s3cret-2002", "mac": "00-04-f2-00-00-02", "model": "polycom-vvx411", "name": "Bob B"},
        "2003": {"secret": "s3cret-2003", "mac": "000b82000003", "model": "grandstream-gxp2170"},
        "2004": {"secret": "s3cret-2004", "mac": "000413000004", "model": "snom-d785"},
        "2005": {"secret": "s3cret-2005"},  # no desk-phone provisioning
    }
    for ph in phones.values():
        if "mac" in ph:
            mac = ph["mac"].replace(":", "").replace("-", "").lower()
            ph["provisioning_ha1"] = ha1(mac, REALM, PASSWORDS[mac])
    return {
        "ami": {"secret": "ami-secret-1"},
        "phones": phones,
        "agents": {"alice": {"phone": "2001", "name": "Alice"}, "bob": {"phone": "2002"},
                   "carol": {"phone": "2003"}, "dave": {"phone": "2004", "name": "Dave"}},
        "queues": {"sales": {"members": ["alice", "bob", "carol", "dave"], "fallback": {"hangup": ["goodbye"]}}},
        "menus": {}, "trunks": {},
        "sip": {"bind": "10.0.0.5", "port": 5060},
        "provisioning": {"enabled": True, "timezone": "Europe/Paris", "ntp_server": "pool.ntp.org",
                         **provisioning},
    }


def config(**provisioning: Any) -> config_mod.Config:
    return config_mod.parse(data(**provisioning))
