"""Call recording, in one place: :mod:`.policy` (which calls; pure), :mod:`.files` (ids, paths, WAV legs,
stereo join, finalize/repair/recover/purge; blocking), :mod:`.store` (the ``recordings`` table),
:mod:`.service` (the async service: MixMonitor over AGI, pause/resume over AMI, finalize, recovery,
daily purge), :mod:`.handlers` (FastAGI ``record``), the API (``POST /api/v1/calls/<call>/recording/pause|resume``, :mod:`callcenter.features.api`)
and :mod:`.schema` (its config)."""
