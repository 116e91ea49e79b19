"""The outbound dialer: a simulator driving the pure pacing core, and campaign/lead storage.

Pacing itself is pure and lives in :mod:`callcenter.features.dialer.pacing`; live dialling through
Asterisk comes later.
"""
