"""Transfers of queue calls (blind, consult and attended) from the desk phone and the API.

The pure part is in :mod:`callcenter.features.acd.transfer` (a part of the ACD core's step); here:
the config (:mod:`.schema`), the AGI handlers of cc-xfer and cc-consult (:mod:`.handlers`), the AMI
events and the API action (:mod:`.service`), and the legs of transferred calls (:mod:`.store`).
"""
