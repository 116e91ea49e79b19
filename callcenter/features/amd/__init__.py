"""Answering-machine detection: :mod:`.detector` (the vectorised detector, all channels in one numpy
pass per frame), :mod:`.server` (the AudioSocket server that streams calls into it) and
:mod:`.handlers` (FastAGI ``amd-start``/``amd-result``: profile in, verdict out, orphans expire)."""
