"""Telephony cards (DAHDI): PRI E1/T1, BRI and analog FXO/FXS spans — schema, plan (checks and
channel numbers), renderers (system.conf, chan_dahdi.conf, dialplan) and the span alarm monitor."""
