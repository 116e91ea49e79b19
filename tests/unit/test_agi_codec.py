"""FastAGI codec: environment and response parsing, command encoding, script names (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.protocol.agi import (
    MAX_ENV,
    MAX_LINE,
    AgiParser,
    AgiProtocolError,
    Env,
    Hangup,
    Response,
    UnsafeArgument,
    encode_command,
    quote,
    script_name,
)

ENV = (b"agi_network: yes\n"
       b"agi_network_script: ivr?x=1\n"
       b"agi_request: agi://127.0.0.1:4573/ivr?x=1\n"
       b"agi_channel: PJSIP/trunk-pstn-00000001\n"
       b"agi_uniqueid: 1700000000.1\n"
       b"agi_callerid: 0612345678\n"
       b"agi_arg_1: 5551000\n"
       b"agi_arg_2: \n"
       b"agi_arg_3: last\n"
       b"\n")


# --------------------------------------------------------------------------- parser

def test_env_block_becomes_one_env_event():
    """The agi_* lines up to the blank line become a single Env with every value."""
    (env,) = AgiParser().feed(ENV)
    assert isinstance(env, Env)
    assert env.request == "agi://127.0.0.1:4573/ivr?x=1"
    assert env.values["agi_channel"] == "PJSIP/trunk-pstn-00000001"
    assert env.values["agi_arg_2"] == ""
    assert env.args == ("5551000", "", "last")


def test_env_args_stop_at_first_gap():
    """Env.args collects agi_arg_1.. consecutively and stops at the first missing index."""
    (env,) = AgiParser().feed(b"agi_request: agi://h/x\nagi_arg_1: a\nagi_arg_3: c\n\n")
    assert env.args == ("a",)


def test_env_then_responses():
    """After the environment, each line is a response; CRLF endings are accepted too."""
    out = AgiParser().feed(ENV + b"200 result=0\r\n200 result=1 (hello world) endpos=1234\n")
    assert out[0].request.endswith("/ivr?x=1")
    assert out[1:] == [Response(200, "0"), Response(200, "1", "hello world", "endpos=1234")]


def test_env_not_returned_until_blank_line():
    """The Env event appears only when the terminating blank line arrives."""
    p = AgiParser()
    assert p.feed(ENV[:-1]) == []
    (env,) = p.feed(b"\n")
    assert env.args == ("5551000", "", "last")


def test_responses_split_across_chunks():
    """A response split at any byte boundary is returned once, complete."""
    p = AgiParser()
    p.feed(ENV)
    data = b"200 result=49 (timeout)\n200 result=-1\n"
    out = []
    for i in range(len(data)):
        out += p.feed(data[i:i + 1])
    assert out == [Response(200, "49", "timeout"), Response(200, "-1")]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_split_of_session_gives_same_events(data):
    """Cutting a whole session into arbitrary chunks never changes the parsed events."""
    raw = ENV + (b"200 result=1\n520-Invalid command syntax.  Proper usage follows:\nUsage: x\n"
                 b"520 End of proper usage.\nHANGUP\n200 result=-1\n")
    whole = AgiParser().feed(raw)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=10)))
    p = AgiParser()
    out = []
    for a, b in zip([0, *cuts], [*cuts, len(raw)]):
        out += p.feed(raw[a:b])
    assert out == whole
    assert len(whole) == 5


def test_timeout_result_with_data():
    """'200 result=49 (timeout)' parses to code 200, result '49', data 'timeout', value 49."""
    p = AgiParser()
    p.feed(ENV)
    (r,) = p.feed(b"200 result=49 (timeout)\n")
    assert (r.code, r.result, r.data, r.rest) == (200, "49", "timeout", "")
    assert r.value == 49 and chr(r.value) == "1"
    assert r.ok


def test_minus_one_result_is_not_ok():
    """result=-1 is a failure: ok is False and value is -1."""
    p = AgiParser()
    p.feed(ENV)
    (r,) = p.feed(b"200 result=-1\n")
    assert not r.ok and r.value == -1


def test_empty_result_has_value_zero():
    """'200 result=' (GET VARIABLE on unset) has result '' and value 0."""
    p = AgiParser()
    p.feed(ENV)
    (r,) = p.feed(b"200 result=\n")
    assert r.result == "" and r.value == 0 and r.ok


def test_multiline_520_usage_block_is_one_response():
    """A '520-' usage block yields exactly one Response(520) when its '520 ' end line arrives."""
    p = AgiParser()
    p.feed(ENV)
    assert p.feed(b"520-Invalid command syntax.  Proper usage follows:\n") == []
    assert p.feed(b"Usage: STREAM FILE <filename> <escape_digits> [sample offset]\n") == []
    assert p.feed(b"  Send the given file.\n") == []
    r, nxt = p.feed(b"520 End of proper usage.\n200 result=0\n")
    assert r == Response(520, rest="End of proper usage.")
    assert nxt == Response(200, "0")
    assert not r.ok


def test_hangup_line():
    """A bare HANGUP line is a Hangup event, and the command's response still follows it."""
    p = AgiParser()
    p.feed(ENV)
    assert p.feed(b"HANGUP\n200 result=-1\n") == [Hangup(), Response(200, "-1")]


def test_other_status_codes():
    """510/511 lines without result= keep their text in rest."""
    p = AgiParser()
    p.feed(ENV)
    out = p.feed(b"510 Invalid or unknown command\n511 Command Not Permitted on a dead channel\n")
    assert out == [Response(510, rest="Invalid or unknown command"),
                   Response(511, rest="Command Not Permitted on a dead channel")]


def test_malformed_response_raises():
    """A response line that is not 'NNN ...' is a protocol error."""
    p = AgiParser()
    p.feed(ENV)
    with pytest.raises(AgiProtocolError, match="malformed AGI response"):
        p.feed(b"hello there\n")


@pytest.mark.parametrize("line", [b"garbage", b"agi_request=agi://h/x", b"foo: bar", b"agi_x:nospace"])
def test_malformed_env_line_raises(line):
    """An environment line without 'agi_' prefix and ': ' separator is a protocol error."""
    with pytest.raises(AgiProtocolError, match="malformed AGI environment line"):
        AgiParser().feed(b"agi_network: yes\n" + line + b"\n")


def test_env_without_request_raises():
    """An environment block that has no agi_request is refused."""
    with pytest.raises(AgiProtocolError, match="without agi_request"):
        AgiParser().feed(b"agi_network: yes\nagi_channel: X\n\n")


def test_oversized_env_line_raises():
    """More than MAX_ENV bytes without a newline during the environment is refused."""
    p = AgiParser()
    assert p.feed(b"agi_x: " + b"a" * (MAX_ENV - 7)) == []
    with pytest.raises(AgiProtocolError, match="too long"):
        p.feed(b"a")


def test_oversized_env_many_lines_raises():
    """Many short environment lines adding up to more than MAX_ENV are refused."""
    lines = b"".join(b"agi_v%d: %s\n" % (i, b"v" * 100) for i in range(MAX_ENV // 100 + 5))
    with pytest.raises(AgiProtocolError, match="environment too large"):
        AgiParser().feed(b"agi_request: agi://h/x\n" + lines)


def test_oversized_response_line_raises():
    """After the environment, a line longer than MAX_LINE is refused."""
    p = AgiParser()
    p.feed(ENV)
    p.feed(b"2" * MAX_LINE)
    with pytest.raises(AgiProtocolError, match="too long"):
        p.feed(b"0")


# --------------------------------------------------------------------------- encoder

def test_encode_command_exact_quoting():
    """Every argument is double-quoted with backslashes and quotes escaped; numbers are str()-ed."""
    assert encode_command("SET VARIABLE", 'say "hi"', "C:\\dir\\") == (
        b'SET VARIABLE "say \\"hi\\"" "C:\\\\dir\\\\"\n')
    assert encode_command("WAIT FOR DIGIT", 5000) == b'WAIT FOR DIGIT "5000"\n'
    assert encode_command("STREAM FILE", "beep", "") == b'STREAM FILE "beep" ""\n'
    assert encode_command("ANSWER") == b"ANSWER\n"


def test_quote_backslash_before_quote():
    """A backslash followed by a quote escapes both, so the quote cannot close the argument."""
    assert quote('\\"') == '"\\\\\\""'


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b", "x\nHANGUP", "\n"])
def test_unsafe_argument_raises(bad):
    """CR, LF or NUL in an argument raises UnsafeArgument."""
    with pytest.raises(UnsafeArgument):
        encode_command("SET VARIABLE", "X", bad)


@pytest.mark.parametrize("verb", ["answer", "A", "", "EXEC;HANGUP", "GET VARIABLE\n", "ANSWER\nHANGUP",
                                  "ANSWER\n", "SET-VAR", "A" * 42])
def test_bad_verb_raises(verb):
    """The verb must be upper-case words only (2-41 chars), no newline at all."""
    with pytest.raises(UnsafeArgument, match="bad AGI verb"):
        encode_command(verb)


@settings(max_examples=150, deadline=None)
@given(args=st.lists(st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)),
                             max_size=20), max_size=4))
def test_encoded_command_is_always_one_line(args):
    """Any safe arguments encode to exactly one newline-terminated line, each arg quoted."""
    raw = encode_command("EXEC", *args)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1 and b"\r" not in raw
    assert raw.count(b" ") >= len(args)


# --------------------------------------------------------------------------- script names

@pytest.mark.parametrize("req, name", [
    ("agi://127.0.0.1:4573/ivr", "ivr"),
    ("agi://127.0.0.1:4573/ivr?did=5551000&x=y", "ivr"),
    ("agi://localhost/queue-hook", "queue-hook"),
    ("agi://[::1]:4573/agent_2", "agent_2"),
])
def test_script_name_valid(req, name):
    """The script name is the single path segment after the host, query string dropped."""
    assert script_name(req) == name


@pytest.mark.parametrize("req", [
    "agi://127.0.0.1:4573/../etc/passwd",
    "agi://127.0.0.1:4573/ivr/../x",
    "agi://127.0.0.1:4573/a/b",
    "agi://127.0.0.1:4573/",
    "agi://127.0.0.1:4573",
    "agi:///ivr",
    "agi://h/ivr.sh",
    "agi://h/ivr%2e%2e",
    "agi://h/" + "a" * 33,
    "http://h/ivr",
    "ivr",
    "",
    "agi://h/ivr#frag",
    "agi://h/iv r",
])
def test_script_name_rejects_odd_requests(req):
    """Traversal, nested paths, dots, over-long names and other schemes give None."""
    assert script_name(req) is None


# --------------------------------------------------------------------------- caller ID with newlines

REAL_TAIL = (b"agi_callingpres: 0\nagi_callingani2: 0\nagi_callington: 0\nagi_callingtns: 0\n"
             b"agi_dnid: 5551001\nagi_rdnis: unknown\nagi_context: cc-ivr\nagi_extension: s\nagi_priority: 3\n"
             b"agi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 140\nagi_arg_1: 5551001\n\n")


def _asterisk_env(num: bytes, name: bytes) -> bytes:
    """An environment as res_agi writes it, caller ID copied in raw."""
    return (b"agi_network: yes\nagi_network_script: ivr\nagi_request: agi://127.0.0.1:4573/ivr\n"
            b"agi_channel: Local/party@cc-test-party-00000001;1\nagi_language: en\nagi_type: Local\n"
            b"agi_uniqueid: 1700000000.9\nagi_version: 22.10.1\nagi_callerid: " + num +
            b"\nagi_calleridname: " + name + b"\n" + REAL_TAIL)


def test_newlines_in_caller_id_stay_inside_the_value():
    """Asterisk copies caller ID into the environment raw: a newline (even a blank line) continues it."""
    (env,) = AgiParser().feed(_asterisk_env(b"../5550\n;$(id)", b"x;$(touch /tmp/p)\n\nEvil: 1"))
    assert env.values["agi_callerid"] == "../5550\n;$(id)"
    assert env.values["agi_calleridname"] == "x;$(touch /tmp/p)\n\nEvil: 1"
    assert env.values["agi_context"] == "cc-ivr" and env.args == ("5551001",)


@pytest.mark.parametrize("forged", [
    b"x\nagi_arg_1: 5559999",  # a later key: the real keys that follow are then out of order
    b"x\nagi_context: evil\nagi_threadid: 1",
    b"x\nagi_threadid: 1\n\n200 result=1",  # a forged end of the environment and a forged response
])
def test_forged_keys_in_caller_id_are_a_protocol_error(forged):
    """A caller ID that forges a later environment key is never accepted silently."""
    p = AgiParser()
    with pytest.raises(AgiProtocolError):
        p.feed(_asterisk_env(b"5550123", forged))


def test_keys_out_of_order_outside_caller_id_are_a_protocol_error():
    """Outside the caller-controlled values a repeated or earlier key is refused."""
    with pytest.raises(AgiProtocolError):
        AgiParser().feed(b"agi_request: agi://h/x\nagi_channel: A\nagi_channel: B\n\n")
