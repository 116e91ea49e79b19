"""Carrier trunks: registration to the carrier, digest auth, From user/domain, caller ID, codecs.

* :mod:`.schema` -- the ``trunks.NAME`` settings beyond the source-address ones (auth, register,
  from_user, from_domain, caller_id, codecs, did_from) and their cross-checks;
* :mod:`.render` -- the PJSIP objects and dialplan of a trunk (no I/O);
* :mod:`.registrations` -- each registering trunk's state from AMI ``Registry`` events (resynced
  with ``PJSIPShowRegistrationsOutbound`` after every AMI login), for ``/status`` and the metrics.
"""
