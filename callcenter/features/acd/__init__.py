"""Queues and agents (the ACD), in one place: :mod:`.model` (the pure core, ``step(state, event, now)``),
:mod:`.agents` (the agent state table), :mod:`.routing` (the vectorised routing step), :mod:`.service`
(drives the core, AMI Originate/Hangup/Redirect, AMI events, resync per node), :mod:`.handlers`
(FastAGI: the wait loop's hook, feature codes, the agent leg's claim, dialled people joining a queue),
:mod:`.store` (agents' login/pause state and pause intervals) and :mod:`.schema` (queues, agents)."""
