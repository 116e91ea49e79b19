"""A trunk's PJSIP objects and dialplan context, from its config (no I/O).

pjsip.conf, per trunk NAME (every object is named ``trunk-NAME``):

* ``type=endpoint`` -- context ``cc-trunk-NAME``, the trunk's codecs, always our own transport; with
  ``auth``: ``outbound_auth`` (INVITEs the carrier challenges are answered); ``from_user``/``from_domain``
  and ``send_pai`` (the caller ID rides in P-Asserted-Identity when the From user is the account);
* ``type=auth`` -- the carrier's credentials (only with ``auth``);
* ``type=aor`` -- ``contact=`` the carrier's host (outbound calls);
* ``type=identify`` -- the carrier's source addresses (only with ``match``);
* ``type=registration`` -- only with ``register``: digest auth, expiry, retries, and ``line=yes`` +
  ``endpoint=`` so a call to the registered contact is the trunk's whatever address it comes from.

The dialplan: ``cc-trunk-NAME`` has one extension per DID (the Request-URI's user); with
``did_from: to`` it takes every number instead and jumps to ``cc-dids-NAME`` at the To header's
user, filtered to digits and ``+`` (the header is the carrier's, or a forger's, text)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from callcenter.asterisk import contract

__all__ = ["pjsip_lines", "dialplan_lines", "registration_uris", "endpoint_name"]


def endpoint_name(name: str) -> str:
    return f"{contract.TRUNK_ENDPOINT_PREFIX}{name}"


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host  # an IPv6 address in a URI


def registration_uris(t: Any) -> tuple[str, str]:
    """(server_uri, client_uri) of a registering trunk, as Asterisk reports them in ``Registry`` events."""
    reg = t.register
    host = _uri_host(reg.server or t.host)
    port = reg.port or t.port
    user = reg.user or t.auth.username
    return f"sip:{host}:{port}", f"sip:{user}@{host}:{port}"


def _send_pai(t: Any) -> bool:
    return bool(t.from_user) if t.send_pai is None else bool(t.send_pai)


def pjsip_lines(trunks: Mapping[str, Any], transport: str = contract.TRANSPORT_UDP) -> list[str]:
    p: list[str] = []
    for name, t in trunks.items():
        if not t.match and not t.host and t.register is None:
            continue  # no SIP side: a trunk on telephony cards only (callcenter.features.cards)
        ep = endpoint_name(name)
        p += [f"[{ep}]", "type=endpoint", f"context={contract.CTX_TRUNK_PREFIX}{name}", "disallow=all",
              f"allow={','.join(t.codecs)}", "direct_media=no", "rtp_symmetric=yes", "dtmf_mode=rfc4733",
              f"aors={ep}", f"transport={transport}"]  # always from our own address, whatever other transports exist
        if t.auth is not None:
            p.append(f"outbound_auth={ep}")
        if t.from_user:
            p.append(f"from_user={t.from_user}")
        if t.from_domain:
            p.append(f"from_domain={t.from_domain}")
        if _send_pai(t):
            p += ["send_pai=yes", "trust_id_outbound=yes"]
        p.append("")
        if t.auth is not None:
            p += [f"[{ep}]", "type=auth", "auth_type=userpass", f"username={t.auth.username}",
                  f"password={t.auth.secret}"] + ([f"realm={t.auth.realm}"] if t.auth.realm else []) + [""]
        p += [f"[{ep}]", "type=aor"] + ([f"contact=sip:{_uri_host(t.host)}:{t.port}"] if t.host else []) + [""]
        if t.match:
            p += [f"[{ep}]", "type=identify", f"endpoint={ep}"] + \
                 [f"match={ipaddress.ip_network(m, strict=False)}" for m in t.match] + [""]
        if t.register is not None:
            reg = t.register
            server, client = registration_uris(t)
            p += [f"[{ep}]", "type=registration", f"transport={transport}", f"outbound_auth={ep}",
                  f"server_uri={server}", f"client_uri={client}",
                  f"contact_user={reg.contact_user or reg.user or t.auth.username}",
                  f"expiration={reg.expiry_s}", f"retry_interval={reg.retry_s}",
                  f"forbidden_retry_interval={reg.forbidden_retry_s}", f"max_retries={reg.max_retries}",
                  f"max_random_initial_delay={reg.random_delay_s}",
                  "auth_rejection_permanent=yes", "line=yes", f"endpoint={ep}", ""]
    return p


def _did_lines(dids: Mapping[str, object]) -> list[str]:
    out: list[str] = []
    for did in dids:
        out += [f"exten => {did},1,Set({contract.DID}={did})", f" same => n,Goto({contract.CTX_IVR},s,1)"]
    return out


def dialplan_lines(trunks: Mapping[str, Any]) -> list[str]:
    d: list[str] = []
    for name, t in trunks.items():
        d.append(f"[{contract.CTX_TRUNK_PREFIX}{name}]")
        if t.did_from == "to":
            to = f"{contract.CTX_DIDS_PREFIX}{name}"
            user = "${FILTER(+0123456789,${PJSIP_PARSE_URI(${PJSIP_HEADER(read,To)},user)})}"
            d += ["; the dialled number is the To header's user (trunks.%s.did_from: to)" % name,
                  f"exten => _[0-9A-Za-z+*#].,1,Goto({to},{user},1)",
                  f"exten => _[0-9A-Za-z+*#],1,Goto({to},{user},1)",
                  "exten => h,1,NoOp()", "", f"[{to}]"]
        d += _did_lines(t.dids)
        d.append("")
    return d
