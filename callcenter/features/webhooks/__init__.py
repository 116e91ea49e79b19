"""Webhooks: durable, signed (Standard Webhooks), ordered per call.

- :mod:`.schema` — the ``webhooks`` config section (endpoints) and the event type names;
- :mod:`.payloads` — domain events -> webhook type, ordering key and ``data`` (pure);
- :mod:`.model` — retries (back-off with full jitter, dead letters) and per-key ordering (pure);
- :mod:`.store` — the outbox and the API-made endpoints, in the daemon's database;
- :mod:`.service` — the outbox hook of the journal and the delivery worker;
- :mod:`.routes` — ``/api/v1/webhooks`` (admin scope); :mod:`.cli` — ``callcenter webhooks``.
"""
