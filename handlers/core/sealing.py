"""Sealing stored secrets and signing short-lived links, under keys derived from
FLYWHEEL_SECRET_KEY.

Secrets (LinkedIn access tokens) are sealed with AES-256-GCM, an authenticated cipher: a
sealed value that was altered, or moved to another row, does not open. Each purpose has its
own key, derived with HKDF, so a key leaked from one use says nothing about the others.
Earlier secret keys still open what they sealed; `open` says when that happened, so the
caller seals the value again under the current key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEAL_VERSION = "v1"
NONCE_BYTES = 12


class Unreadable(Exception):
    """A sealed value or a signed token that none of the keys opens: forged or altered."""


def derive(secret: str, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from one secret key."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"flywheel/{purpose}".encode()
    ).derive(secret.encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Opened:
    """A secret opened; `stale` when an earlier key sealed it (seal it again)."""

    value: str
    stale: bool


@dataclass(frozen=True)
class Keyring:
    """The current secret key and the earlier ones, for sealing and signing."""

    secrets: Sequence[str]
    _keys: dict[str, tuple[bytes, ...]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.secrets:
            raise ValueError("a keyring needs at least one secret key")
        # Kept as a tuple, so a keyring (and the Config holding it) stays hashable.
        object.__setattr__(self, "secrets", tuple(self.secrets))

    def __repr__(self) -> str:
        return f"Keyring({len(self.secrets)} keys)"

    def keys(self, purpose: str) -> tuple[bytes, ...]:
        known = self._keys.get(purpose)
        if known is None:
            known = self._keys[purpose] = tuple(derive(s, purpose) for s in self.secrets)
        return known

    # -- sealing ---------------------------------------------------------------------------

    def seal(self, value: str, *, purpose: str, bound_to: str) -> str:
        """`value` encrypted under the current key; `bound_to` (the row it belongs to) must be
        given again to open it."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.keys(purpose)[0]).encrypt(nonce, value.encode(), bound_to.encode())
        return f"{SEAL_VERSION}.{_b64(nonce + sealed)}"

    def open(self, sealed: str, *, purpose: str, bound_to: str) -> Opened:
        """The value `seal` sealed, or Unreadable."""
        version, _, body = sealed.partition(".")
        if version != SEAL_VERSION or not body:
            raise Unreadable("not a sealed value")
        try:
            raw = _unb64(body)
        except ValueError:
            raise Unreadable("not a sealed value") from None
        nonce, data = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        for index, key in enumerate(self.keys(purpose)):
            try:
                plain = AESGCM(key).decrypt(nonce, data, bound_to.encode())
            except InvalidTag:
                continue
            return Opened(plain.decode(), stale=index > 0)
        raise Unreadable("no key opens this value")

    # -- signing ---------------------------------------------------------------------------

    def sign(self, claims: dict[str, Any], *, purpose: str) -> str:
        """`claims` as a URL-safe token, signed (not encrypted) under the current key."""
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        mac = hmac.new(self.keys(purpose)[0], body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(mac)}"

    def verify(self, token: str, *, purpose: str) -> dict[str, Any]:
        """The claims of a token `sign` made for `purpose`, or Unreadable."""
        body, _, mac = token.partition(".")
        if not body or not mac or len(token) > 2000:
            raise Unreadable("not a signed token")
        try:
            given = _unb64(mac)
        except ValueError:
            raise Unreadable("not a signed token") from None
        for key in self.keys(purpose):
            expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
            if hmac.compare_digest(expected, given):
                try:
                    claims = json.loads(_unb64(body))
                except ValueError:
                    raise Unreadable("not a signed token") from None
                if not isinstance(claims, dict):
                    raise Unreadable("not a signed token")
                return claims
        raise Unreadable("the signature does not match")
