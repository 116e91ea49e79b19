"""Supervision (listen / whisper / barge), in one place: :mod:`.model` (who may spy on whom, the exact
ChanSpy; pure), :mod:`.store` (the ``spy_audit`` table), :mod:`.service` (live agent channels, decide,
audit, bus events), :mod:`.handlers` (FastAGI ``spy``) and :mod:`.schema` (its config)."""
