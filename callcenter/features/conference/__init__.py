"""Conference: the agent brings a third party (a colleague or an allow-listed outside number) into
the call and may drop out, leaving the caller with the third party. The core part lives in
:mod:`callcenter.features.acd.transfer`."""
