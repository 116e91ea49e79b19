"""The dialplan contract: every channel variable, context and FastAGI script the dialplan and the
daemon share, named once. The renderer and the Python side import these names; a unit test checks
that the shipped dialplan uses no ``CC_*`` variable or ``cc-*`` context that is not named here.
"""

from __future__ import annotations

from typing import Final

# --- channel variables the daemon sets or reads (and that ride on AMI events: CHANNEL_VARS)
ROLE: Final = "CC_ROLE"            # caller | agent
CALL_ID: Final = "CC_CALL_ID"      # the daemon's call id (16 hex)
AGENT: Final = "CC_AGENT"
QUEUE: Final = "CC_QUEUE"
ENTERED: Final = "CC_ENTERED"      # Unix time the caller entered its current queue
SKILLS: Final = "CC_SKILLS"        # skill:level,...
PRIORITY: Final = "CC_PRIORITY"
REC_ID: Final = "CC_REC_ID"        # recording id on the agent channel
NODE: Final = "CC_NODE"            # the Asterisk node a channel lives on (one today)
CALLER: Final = "CC_CALLER"        # the caller's channel, on the agent leg
OFFER: Final = "CC_OFFER"          # on the caller, redirected to cc-offer: <dial>|<ring s>|<num>|<name>
NEXT: Final = "CC_NEXT"            # what the IVR decided: queue | dial | hangup
TARGET: Final = "CC_TARGET"        # extension to dial (IVR dial action)
MOH: Final = "CC_MOH"
HOOK: Final = "CC_HOOK"            # seconds between queue hooks
CLAIM: Final = "CC_CLAIM"          # ok | no | callback
DIAL: Final = "CC_DIAL"            # callback dial string
RING_S: Final = "CC_RING_S"
DID: Final = "CC_DID"
TRIES: Final = "CC_TRIES"
AMD: Final = "CC_AMD"
AMD_MS: Final = "CC_AMD_MS"
AMD_BEEP_MS: Final = "CC_AMD_BEEP_MS"
AMD_TRACE: Final = "CC_AMD_TRACE"  # the detector's decision trace ("rule=... score=..."), for the call record
AMD_OFF: Final = "CC_AMD_OFF"
AMD_PROFILE: Final = "CC_AMD_PROFILE"
AMD_UUID: Final = "CC_AMD_UUID"
DIAL_ID: Final = "CC_DIAL_ID"      # the dialler's line id
CAMPAIGN: Final = "CC_CAMPAIGN"
VM_MESSAGE: Final = "CC_VM_MESSAGE"
COMPLIANCE: Final = "CC_COMPLIANCE"
SPY: Final = "CC_SPY"
SPY_EXT: Final = "CC_SPY_EXT"
SPY_MODE: Final = "CC_SPY_MODE"
SPY_OPTIONS: Final = "CC_SPY_OPTIONS"
SPY_TARGET: Final = "CC_SPY_TARGET"
SURVEY: Final = "CC_SURVEY"        # 1 on a caller whose queue asks the after-call survey
MSG_FILE: Final = "CC_MSG_FILE"    # a message's file as Asterisk sees it, no extension (daemon-generated)
MSG_MAX: Final = "CC_MSG_MAX"      # the longest message (s)
MSG_SILENCE: Final = "CC_MSG_SILENCE"  # silence that ends the message (s)
CONSULT: Final = "CC_CONSULT"      # on an agent's consult call: the call id it is about (set by the daemon)
CONSULT_AGENT: Final = "CC_CONSULT_AGENT"  # ... and the agent whose phone it rings
CONF: Final = "CC_CONF"            # on a conference's third-party leg: the call id (the conference's name)
SLOT: Final = "CC_SLOT"            # the parking slot a desk phone dialled (a rendered literal)
DEST: Final = "CC_DEST"            # the agent extension a desk phone dialled (a rendered literal)
# globals rendered into extensions.conf
AGI_URL: Final = "CC_AGI"
AUDIOSOCKET: Final = "CC_AUDIOSOCKET"

CHANNEL_VARS: Final = (ROLE, CALL_ID, AGENT, QUEUE, ENTERED, SKILLS, PRIORITY, REC_ID)

VARIABLES: Final = frozenset(v for k, v in dict(globals()).items()
                             if k.isupper() and isinstance(v, str) and v.startswith("CC_"))

# --- contexts
CTX_PHONES: Final = "cc-phones"
CTX_IVR: Final = "cc-ivr"
CTX_NEXT: Final = "cc-next"
CTX_WAIT: Final = "cc-wait"
CTX_AGENT: Final = "cc-agent"
CTX_OFFER: Final = "cc-offer"
CTX_CLAIM: Final = "cc-claim"
CTX_RING: Final = "cc-ring"
CTX_FALLBACK: Final = "cc-fallback"
CTX_OUTBOUND: Final = "cc-outbound"
CTX_ABANDON: Final = "cc-abandon"
CTX_AMD: Final = "cc-amd"
CTX_SPY: Final = "cc-spy"
CTX_SPY_API: Final = "cc-spy-api"  # the browser's Listen/Whisper/Barge: the supervisor's phone, originated
CTX_SURVEY: Final = "cc-survey"
CTX_MESSAGE: Final = "cc-message"
CTX_XFER: Final = "cc-xfer"          # TRANSFER_CONTEXT of agent legs: a blind transfer's target, checked by the daemon
CTX_CONSULT: Final = "cc-consult"    # a desk phone dialled an agent's extension (a consult when on a call)
CTX_CONSULT_LEG: Final = "cc-consult-leg"    # Dial() b() on the consulted agent's leg: its CC_* variables
CTX_CONSULT_CLAIM: Final = "cc-consult-claim"  # Dial() U() on the consulted agent's answered leg
CTX_PARKING: Final = "cc-parking"    # the caller parks itself: Park() in the slot the daemon chose (parking)
CTX_PARK: Final = "cc-park"          # the parking lot's name and context (res_parking.conf); included nowhere
CTX_PARK_RETURN: Final = "cc-park-return"  # a parked call back from its slot: the daemon decides where
CTX_PICKUP: Final = "cc-pickup"      # a desk phone dialled a slot: ParkedCall()
CTX_CONF: Final = "cc-conf"          # caller and agent, redirected into the call's ConfBridge (conference)
CTX_CONF_THIRD: Final = "cc-conf-third"  # the third party's originated leg joins it
CTX_CONF_KEY: Final = "cc-conf-key"  # features.conf applicationmap name of the agent's conference code
CTX_REC_START: Final = "cc-rec-start"
CTX_REC_PAUSE: Final = "cc-rec-pause"
CTX_REC_RESUME: Final = "cc-rec-resume"
CTX_TRUNK_PREFIX: Final = "cc-trunk-"   # + trunk name
CTX_LINE_PREFIX: Final = "cc-line-"     # + trunk name + "-" + DID: an FXO line of a card (features.cards)
CTX_DIDS_PREFIX: Final = "cc-dids-"     # + trunk name: its DIDs when read from the To header
TRANSPORT_UDP: Final = "cc-udp"
TRUNK_ENDPOINT_PREFIX: Final = "trunk-"  # + trunk name: the PJSIP endpoint of a trunk

CONTEXTS: Final = frozenset(v for k, v in dict(globals()).items()
                            if k.startswith("CTX_") and not k.endswith("_PREFIX"))

# --- FastAGI scripts (the path of agi://host:port/<script>)
AGI_SCRIPTS: Final = frozenset({
    "ivr", "queue-hook", "queue-digit", "fallback", "agent", "agent-claim", "amd-start", "amd-result",
    "outbound-answered", "record", "spy", "survey", "message-done", "transfer", "consult",
    "park-return", "park-pickup", "conference",
})

# --- AMI events the daemon (and the lab's witness) acts on; Asterisk sends its AMI user no other
# (manager.conf eventfilter by name: a hash lookup in Asterisk, no regex). Under load the rest —
# RTCP reports, TestEvent, MusicOnHold*, Newstate, BridgeLeave, DTMF... — was two thirds of the
# events and bytes the daemon parsed only to drop.
AMI_EVENTS: Final = (
    "FullyBooted", "Newchannel", "Hangup", "OriginateResponse", "DialBegin", "DialEnd", "BridgeEnter",
    "DeviceStateChange", "ChanSpyStart", "ChanSpyStop", "UserEvent",
    "BlindTransfer", "AttendedTransfer",  # agents' transfers (callcenter.features.transfer)
    "ParkedCall", "UnParkedCall", "ParkedCallTimeOut", "ParkedCallGiveUp",  # parking (features.parking)
    "ConfbridgeJoin", "ConfbridgeLeave",  # who is in a call's conference (features.conference)
    "Alarm", "AlarmClear", "SpanAlarm", "SpanAlarmClear",  # chan_dahdi: telephony card spans (features.cards)
    "Registry",  # a trunk's outbound registration (callcenter.features.trunks)
)

ROLE_CALLER: Final = "caller"
ROLE_AGENT: Final = "agent"
