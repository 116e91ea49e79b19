"""AMI codec: the incremental parser and the action encoder (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.features.acd import model as acd
from callcenter.protocol.ami import (
    MAX_MESSAGE,
    AmiParser,
    AmiProtocolError,
    Message,
    UnsafeValue,
    encode_action,
)
from callcenter.features.acd.service import originate_headers, sanitize_caller_id

BANNER = b"Asterisk Call Manager/9.0.0\r\n"

STREAM = (
    BANNER
    + b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n"
    + b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
    + b"Event: Hangup\r\nChannel: PJSIP/2001-00000001\r\nUniqueid: 17.1\r\n"
    + b"ChanVariable: CC_ROLE=agent\r\nChanVariable: CC_CALL_ID=abc\r\n"
    + b"ChanVariable: CC_QUEUE=\r\nCause-txt: Normal Clearing\r\n\r\n"
)

EXPECTED = [
    Message((("Response", "Success"), ("ActionID", "1"), ("Message", "Authentication accepted"))),
    Message((("Event", "FullyBooted"), ("Privilege", "system,all"), ("Status", "Fully Booted"))),
    Message((("Event", "Hangup"), ("Channel", "PJSIP/2001-00000001"), ("Uniqueid", "17.1"),
             ("ChanVariable", "CC_ROLE=agent"), ("ChanVariable", "CC_CALL_ID=abc"),
             ("ChanVariable", "CC_QUEUE="), ("Cause-txt", "Normal Clearing"))),
]


# --------------------------------------------------------------------------- parser

def test_banner_is_recorded_and_not_a_message():
    """The first CRLF-terminated line is the banner; it is stored, not returned as a message."""
    p = AmiParser()
    assert p.feed(BANNER) == []
    assert p.banner == "Asterisk Call Manager/9.0.0"


def test_whole_stream_in_one_chunk():
    """A stream fed at once yields every message with headers in arrival order."""
    p = AmiParser()
    msgs = p.feed(STREAM)
    assert msgs == EXPECTED
    assert [m.headers for m in msgs] == [m.headers for m in EXPECTED]


def test_byte_by_byte_feed_gives_same_messages():
    """Feeding one byte at a time yields exactly the same messages as one big chunk."""
    p = AmiParser()
    out: list[Message] = []
    for i in range(len(STREAM)):
        out += p.feed(STREAM[i:i + 1])
    assert [m.headers for m in out] == [m.headers for m in EXPECTED]


def test_message_only_completes_on_blank_line():
    """A message is returned only once its terminating blank line has arrived."""
    p = AmiParser()
    assert p.feed(BANNER + b"Event: Ping\r\nA: 1\r\n") == []
    assert p.feed(b"\r") == []
    msgs = p.feed(b"\n")
    assert [m.headers for m in msgs] == [(("Event", "Ping"), ("A", "1"))]


_keys = st.text("ABCXYZabcxyz019_-", min_size=1, max_size=12).map(lambda k: "K" + k)
_values = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=20)
_messages = st.lists(st.lists(st.tuples(_keys, _values), min_size=1, max_size=5), min_size=1, max_size=5)


def _stream(msgs: list[list[tuple[str, str]]]) -> bytes:
    out = BANNER
    for hdrs in msgs:
        out += b"".join(f"{k}: {v}\r\n".encode() for k, v in hdrs) + b"\r\n"
    return out


@settings(max_examples=100, deadline=None)
@given(msgs=_messages, data=st.data())
def test_any_split_of_a_valid_stream_gives_same_messages(msgs, data):
    """However a valid byte stream is cut into chunks, the parser returns the same messages."""
    raw = _stream(msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    assert b"".join(chunks) == raw
    whole = AmiParser().feed(raw)
    p = AmiParser()
    pieces: list[Message] = []
    for c in chunks:
        pieces += p.feed(c)
    assert [m.headers for m in pieces] == [m.headers for m in whole]
    assert [m.headers for m in whole] == [tuple(h) for h in msgs]
    assert p.banner == "Asterisk Call Manager/9.0.0"


def test_repeated_keys_getall_and_first_wins_for_get():
    """Repeated headers are all kept; get() returns the first, getall() all of them in order."""
    m = AmiParser().feed(STREAM)[2]
    assert m.get("ChanVariable") == "CC_ROLE=agent"
    assert m.getall("chanvariable") == ["CC_ROLE=agent", "CC_CALL_ID=abc", "CC_QUEUE="]
    assert m.getall("Nope") == []


def test_variables_collects_chanvariable_pairs():
    """variables() turns ChanVariable NAME=value headers into a dict, empty values included."""
    m = AmiParser().feed(STREAM)[2]
    assert m.variables() == {"CC_ROLE": "agent", "CC_CALL_ID": "abc", "CC_QUEUE": ""}


def test_variables_accepts_variable_header_and_value_with_equals():
    """A Variable: header counts too, and only the first '=' splits name from value."""
    p = AmiParser()
    (m,) = p.feed(BANNER + b"Event: VarSet\r\nVariable: X=a=b\r\nChanVariable: noequals\r\n\r\n")
    assert m.variables() == {"X": "a=b"}


def test_lookup_is_case_insensitive_and_properties():
    """Header lookup ignores case; event/response/action_id read the standard headers."""
    p = AmiParser()
    (m,) = p.feed(BANNER + b"response: Error\r\nactionid: 42\r\nmessage: nope\r\n\r\n")
    assert m.response == "Error"
    assert m.action_id == "42"
    assert m.event == ""
    assert "MESSAGE" in m
    assert m["Message"] == "nope"
    with pytest.raises(KeyError):
        m["missing"]


def test_value_keeps_colons_and_strips_only_one_space():
    """Only the first ':' separates key from value and a single leading space is dropped."""
    p = AmiParser()
    (m,) = p.feed(BANNER + b"Event: X\r\nTime: 12:34:56\r\nPad:  two\r\nTight:x\r\n\r\n")
    assert m["Time"] == "12:34:56"
    assert m["Pad"] == " two"
    assert m["Tight"] == "x"


def test_extra_blank_lines_between_messages_are_ignored():
    """Empty blocks between messages yield nothing."""
    p = AmiParser()
    msgs = p.feed(BANNER + b"\r\n\r\nEvent: A\r\n\r\n\r\n\r\nEvent: B\r\n\r\n")
    assert [m.event for m in msgs] == ["A", "B"]


@pytest.mark.parametrize("line", [b"no separator here", b": empty key", b"Bad Key: x"])
def test_malformed_first_line_raises(line):
    """A message that starts with a line without ':', with an empty key, or a space in the key is a
    protocol error (nothing before it could own it)."""
    p = AmiParser()
    with pytest.raises(AmiProtocolError, match="malformed AMI line"):
        p.feed(BANNER + line + b"\r\nEvent: X\r\n\r\n")


@pytest.mark.parametrize("line", [b"no separator here", b": empty key", b"Bad Key: x"])
def test_a_line_a_caller_id_added_is_folded_into_that_value(line):
    """Asterisk writes a CR/LF caller ID unescaped: the extra line belongs to the value before it, the
    session goes on (before, the daemon lost its AMI session to any caller who sent %0D%0A)."""
    p = AmiParser()
    [m, after] = p.feed(BANNER + b"Event: Newchannel\r\nCallerIDNum: 555\r\n" + line
                        + b"\r\nUniqueid: u1\r\n\r\nEvent: Next\r\n\r\n")
    assert m["CallerIDNum"] == "555\n" + line.decode() and m["Uniqueid"] == "u1"
    assert m.folded == 1 and m.suspicious and after.event == "Next"


def test_a_forged_header_makes_that_key_untrusted():
    """A caller ID that forges 'Uniqueid: x' makes Uniqueid appear twice: neither value is used."""
    p = AmiParser()
    [m] = p.feed(BANNER + b"Event: Hangup\r\nChannel: PJSIP/t-1\r\nCallerIDNum: 555\r\nUniqueid: forged\r\n"
                 b"ChanVariable: CC_ROLE=agent\r\nUniqueid: real\r\nChanVariable: CC_ROLE=caller\r\n"
                 b"ChanVariable: CC_CALL_ID=abc\r\n\r\n")
    assert m.get("Uniqueid") == "" and "Uniqueid" not in m and m.ambiguous == {"uniqueid"}
    assert m.variables() == {"CC_CALL_ID": "abc"} and m["Channel"] == "PJSIP/t-1" and m.suspicious


def test_invalid_banner_raises():
    """A first line that is not an AMI banner is refused."""
    with pytest.raises(AmiProtocolError, match="not an AMI banner"):
        AmiParser().feed(b"SSH-2.0-OpenSSH_9.6\r\n")


def test_missing_banner_raises_after_256_bytes():
    """More than 256 bytes without any CRLF means there is no banner."""
    p = AmiParser()
    assert p.feed(b"x" * 256) == []
    with pytest.raises(AmiProtocolError, match="no AMI banner"):
        p.feed(b"x")


def test_oversized_message_raises():
    """An unterminated message beyond MAX_MESSAGE bytes is a protocol error."""
    p = AmiParser()
    p.feed(BANNER)
    p.feed(b"Event: Big\r\nData: " + b"a" * (MAX_MESSAGE - 100))
    with pytest.raises(AmiProtocolError, match="too large"):
        p.feed(b"a" * 200)


# --------------------------------------------------------------------------- encoder

def test_encode_action_exact_bytes():
    """A normal action becomes Action first, then headers in order, CRLF lines, blank line end."""
    assert encode_action("Login", {"Username": "callcenter", "Secret": "s3cret", "Events": "on"}) == (
        b"Action: Login\r\nUsername: callcenter\r\nSecret: s3cret\r\nEvents: on\r\n\r\n")


def test_encode_action_repeated_keys_as_pairs():
    """Pairs allow repeated keys such as Variable, kept in order; non-str values are str()-ed."""
    assert encode_action("Setvar", [("Variable", "A=1"), ("Variable", "B=2"), ("Timeout", 5)]) == (
        b"Action: Setvar\r\nVariable: A=1\r\nVariable: B=2\r\nTimeout: 5\r\n\r\n")


def test_encode_action_no_headers():
    """An action without headers is just the Action line and the blank line."""
    assert encode_action("Ping") == b"Action: Ping\r\n\r\n"


def test_encoded_action_round_trips_through_parser():
    """What the encoder writes, the parser reads back unchanged (UTF-8 included)."""
    hdrs = [("Channel", "PJSIP/2001"), ("CallerID", '"Zoë" <123>'), ("Variable", "X=y")]
    (m,) = AmiParser().feed(BANNER + encode_action("Originate", hdrs))
    assert m.headers == (("Action", "Originate"), *hdrs)


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", "x\r\nAction: Command", "\n"])
def test_unsafe_value_raises(bad):
    """CR, LF or NUL anywhere in a value raises UnsafeValue."""
    with pytest.raises(UnsafeValue, match="CR, LF or NUL"):
        encode_action("Originate", [("CallerID", bad)])


@pytest.mark.parametrize("bad", ["Ping\r\nAction: Command", "Ping\n"])
def test_unsafe_action_name_raises(bad):
    """The action name is a header value too: CR/LF in it raise UnsafeValue."""
    with pytest.raises(UnsafeValue):
        encode_action(bad)


@pytest.mark.parametrize("key", ["", "Caller ID", "Key:", "Key\r\nAction", "Key\n", "Key\r", "k\x00",
                                 "A" * 65, 7, None])
def test_bad_key_raises(key):
    """Keys must be 1-64 chars of [A-Za-z0-9_()-]; a trailing newline is not allowed either."""
    with pytest.raises(UnsafeValue, match="bad AMI header key"):
        encode_action("Ping", [(key, "v")])


# --------------------------------------------------------------------------- originate injection

EVIL_NAME = 'Eve"\r\nAction: Command\r\nCommand: core stop;$(id)<b>'
EVIL_NUM = '+33\r\n$(SHELL id);<1>"2'


def test_sanitize_caller_id_keeps_only_harmless_characters():
    """Quotes, CR/LF, ':', ';', '$', '(', ')', '<', '>' are removed; CR/LF become spaces first."""
    name, num = sanitize_caller_id(EVIL_NAME, EVIL_NUM)
    assert name == "Eve  Action Command  Command core stopidb"
    assert num == "+3312"


def test_sanitize_caller_id_bounds_length():
    """Names are cut to 48 characters (then stripped) and numbers to 32."""
    name, num = sanitize_caller_id("a" * 100, "1" * 100)
    assert name == "a" * 48
    assert num == "1" * 32


def test_originate_with_hostile_caller_id_exact_bytes():
    """Hostile caller ID text ends up as one sanitized CallerID header; no injected lines."""
    offer = acd.Offer(call_id="c0ffee", agent="alice", phone="2001",
                      caller_channel="PJSIP/trunk-pstn-00000007", caller_num=EVIL_NUM,
                      caller_name=EVIL_NAME, timeout_s=4)
    headers = originate_headers(offer, "agent-leg-1")
    raw = encode_action("Originate", headers)
    assert raw == (
        b"Action: Originate\r\n"
        b"Channel: PJSIP/2001\r\n"
        b"Context: cc-agent\r\n"
        b"Exten: s\r\n"
        b"Priority: 1\r\n"
        b"Timeout: 4000\r\n"
        b'CallerID: "Eve  Action Command  Command core stopidb" <+3312>\r\n'
        b"ChannelId: agent-leg-1\r\n"
        b"Async: true\r\n"
        b"Variable: CC_ROLE=agent\r\n"
        b"Variable: CC_AGENT=alice\r\n"
        b"Variable: CC_CALL_ID=c0ffee\r\n"
        b"Variable: CC_CALLER=PJSIP/trunk-pstn-00000007\r\n"
        b"\r\n"
    )
    lines = raw.split(b"\r\n")
    assert lines[-2:] == [b"", b""]  # exactly one blank line, at the end: a single action
    body = lines[:-2]
    assert b"" not in body
    assert [ln.split(b":", 1)[0] for ln in body] == [
        b"Action", b"Channel", b"Context", b"Exten", b"Priority", b"Timeout", b"CallerID",
        b"ChannelId", b"Async", b"Variable", b"Variable", b"Variable", b"Variable"]
    assert not any(ln.startswith((b"Action: Command", b"Command:")) for ln in lines)
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    (m,) = AmiParser().feed(BANNER + raw)
    assert m.getall("Action") == ["Originate"]
    assert m["CallerID"] == '"Eve  Action Command  Command core stopidb" <+3312>'


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=80), num=st.text(max_size=40))
def test_originate_never_raises_or_injects_for_any_caller_id(name, num):
    """For any caller name/number the Originate encodes to exactly one action with 13 header lines."""
    offer = acd.Offer("c1", "alice", "2001", "PJSIP/x-1", num, name, 15)
    raw = encode_action("Originate", originate_headers(offer, "leg"))
    (m,) = AmiParser().feed(BANNER + raw)
    assert len(m.headers) == 13
    assert m.getall("Action") == ["Originate"]
    clean_name, clean_num = sanitize_caller_id(name, num)
    assert m["CallerID"] == f'"{clean_name}" <{clean_num}>'
    assert '"' not in clean_name and "<" not in clean_num


def test_keys_asterisk_repeats_are_not_taken_for_forgeries():
    """DestChanVariable and ChanVariable(<channel>) repeat in real events: not ambiguous, not suspicious."""
    p = AmiParser()
    [m] = p.feed(BANNER + b"Event: DialEnd\r\nChanVariable: CC_ROLE=agent\r\nChanVariable: CC_CALL_ID=c1\r\n"
                 b"DestChanVariable: CC_ROLE=x\r\nDestChanVariable: CC_CALL_ID=y\r\nDialStatus: ANSWER\r\n\r\n"
                 b"Event: OriginateResponse\r\nChanVariable(PJSIP/2001-1): A=1\r\nChanVariable(PJSIP/2001-1): B=2\r\n\r\n")[:1]
    assert not m.suspicious and m.variables() == {"CC_ROLE": "agent", "CC_CALL_ID": "c1"} and m["DialStatus"] == "ANSWER"
