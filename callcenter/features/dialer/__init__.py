"""The outbound dialer.

* :mod:`.pacing` -- the pure pacing decision (how many lines, which ringing lines to give up);
* :mod:`.estimator` -- the one estimator of outcome rates, ring and handle times;
* :mod:`.live` -- the live dialler in the daemon (AMI Originate), reaching it through :mod:`.ports`;
* :mod:`.sim` -- the discrete-event simulator ``dialer simulate`` and ``bench dialer`` run;
* :mod:`.store` -- campaigns and leads in SQLite; :mod:`.campaigns` -- a campaign's settings there
  (the one store: YAML campaigns upserted, CLI campaigns as made); :mod:`.schema` -- the YAML schema.
"""
