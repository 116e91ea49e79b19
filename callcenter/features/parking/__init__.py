"""Call parking: an agent parks a queue call in a slot (Asterisk's res_parking), any desk phone picks
it up by dialling the slot, and a call parked too long comes back to the agent who parked it (or
their queue, keeping its place). The core part lives in :mod:`callcenter.features.acd.transfer`."""
