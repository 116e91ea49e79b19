"""Everything that speaks to Asterisk: :mod:`.ami_client` (one AMI session: reconnect, back-off,
no replay), :mod:`.agi_server` (FastAGI), :mod:`.ami_events` (small readers of AMI events),
:mod:`.contract` (every ``CC_*`` variable, ``cc-*`` context and AGI script, named once),
:mod:`.render` / :mod:`.render_features` (Asterisk's configuration from ours; the static dialplan
ships in ``dialplans/``) and :mod:`.prompts` (playing prompts over FastAGI)."""
