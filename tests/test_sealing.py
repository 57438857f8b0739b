"""Sealed secrets open only with a key that sealed them, for the row they were sealed for;
signed tokens verify only unaltered; LinkedIn's text format is escaped character for
character; access tokens never show in a repr."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.core.sealing import Keyring, Unreadable
from handlers.linkedin.api import RESERVED, AccessToken, escape

OLD = "the-old-secret-key-0123456789"
NEW = "the-new-secret-key-9876543210"


def test_a_sealed_value_opens_only_for_its_row_and_unaltered() -> None:
    ring = Keyring([NEW])
    sealed = ring.seal("AQVtoken", purpose="linkedin-token", bound_to="member:1")
    assert "AQVtoken" not in sealed
    assert ring.open(sealed, purpose="linkedin-token", bound_to="member:1").value == "AQVtoken"
    with pytest.raises(Unreadable):
        ring.open(sealed, purpose="linkedin-token", bound_to="member:2")
    with pytest.raises(Unreadable):
        ring.open(sealed, purpose="other", bound_to="member:1")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(Unreadable):
        ring.open(tampered, purpose="linkedin-token", bound_to="member:1")
    with pytest.raises(Unreadable):
        ring.open("plain text", purpose="linkedin-token", bound_to="member:1")


def test_a_previous_key_still_opens_and_says_the_value_is_stale() -> None:
    sealed = Keyring([OLD]).seal("tok", purpose="p", bound_to="b")
    opened = Keyring([NEW, OLD]).open(sealed, purpose="p", bound_to="b")
    assert (opened.value, opened.stale) == ("tok", True)
    with pytest.raises(Unreadable):
        Keyring([NEW]).open(sealed, purpose="p", bound_to="b")


def test_signed_tokens_verify_only_unaltered_and_under_their_purpose() -> None:
    ring = Keyring([NEW])
    token = ring.sign({"m": 1, "w": 2}, purpose="state")
    assert ring.verify(token, purpose="state") == {"m": 1, "w": 2}
    assert Keyring([NEW, OLD]).verify(token, purpose="state") == {"m": 1, "w": 2}
    body, _, mac = token.partition(".")
    for bad in (f"{body}x.{mac}", f"{body}.{mac[:-1]}", "", ".", "x" * 3000):
        with pytest.raises(Unreadable):
            ring.verify(bad, purpose="state")
    with pytest.raises(Unreadable):
        ring.verify(token, purpose="connect")
    with pytest.raises(Unreadable):
        Keyring([OLD]).verify(token, purpose="state")


def test_access_tokens_never_show() -> None:
    token = AccessToken("AQVsecret")
    assert "AQVsecret" not in repr(token) and "AQVsecret" not in str(token)
    assert "AQVsecret" not in repr(Keyring([NEW]))


@given(st.text())
def test_escaped_commentary_reads_back_exactly_as_typed(typed: str) -> None:
    escaped = escape(typed)
    # Every reserved character is preceded by a backslash; reading the escapes back gives
    # the typed text.
    out, i = [], 0
    while i < len(escaped):
        if escaped[i] == "\\":
            assert escaped[i + 1] in RESERVED
            out.append(escaped[i + 1])
            i += 2
        else:
            assert escaped[i] not in RESERVED
            out.append(escaped[i])
            i += 1
    assert "".join(out) == typed
