"""Password and PIN hashes: Argon2id through argon2-cffi's :class:`~argon2.PasswordHasher`
(library default parameters). Hashing and verifying cost ~50-100 ms of CPU each: the daemon calls
them off the event loop (``asyncio.to_thread``)."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["DUMMY_HASH", "dummy_hash", "hash_secret", "verify"]

_HASHER = PasswordHasher()


def hash_secret(secret: str) -> str:
    """An Argon2id hash (``$argon2id$...``) of ``secret``, with a fresh salt."""
    return _HASHER.hash(secret)


def verify(hashed: str, secret: str) -> bool:
    """Does ``secret`` match ``hashed``? False for a wrong secret or a malformed hash."""
    try:
        return _HASHER.verify(hashed, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A hash no one's secret matches, verified instead for an unknown login so that it costs the
    same time as a known one (no user enumeration by timing). Computed once, on first use."""
    return hash_secret("no such user: " + __name__)


def __getattr__(name: str) -> str:
    if name == "DUMMY_HASH":  # lazily: hashing costs ~0.1 s, not to be paid on import
        return dummy_hash()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
