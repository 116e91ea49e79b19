"""Numbers read from Asterisk, AGI, channel variables and the API: any text gives a number or the default, never an exception."""

from __future__ import annotations

from hypothesis import given, strategies as st

from callcenter.features.acd.service import _int as channel_int
from callcenter.features.cards.alarms import _int as alarm_int
from callcenter.features.crm.service import _digits
from callcenter.features.survey.handlers import rating
from callcenter.protocol.agi import Response

TEXT = st.text(alphabet=st.sampled_from("0123456789-+ ¹²³٣۵५໒x"), max_size=8)


@given(TEXT)
def test_readers_never_raise_on_unicode_digits(text: str) -> None:
    """Superscripts and other scripts' digits pass str.isdigit() but not int(): every reader falls back."""
    assert isinstance(channel_int(text), int)
    assert alarm_int(text) is None or isinstance(alarm_int(text), int)
    assert isinstance(Response(200, text).value, int)
    assert rating(text[:1] or None, 1, 5) in (None, 1, 2, 3, 4, 5)
    assert set(_digits(text)) <= set("0123456789+")


def test_ascii_digits_still_read() -> None:
    """The plain cases are unchanged (the test above can fail only through an exception or a non-ASCII result)."""
    assert (channel_int("7"), alarm_int(" 12 "), Response(200, "-1").value, rating("4", 1, 5)) == (7, 12, -1, 4)
    assert channel_int("¹") == 0 and rating("¹", 0, 9) is None and _digits("+1 ²555") == "+1555"
