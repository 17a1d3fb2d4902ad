"""Encryption at rest for secrets Mission Control must be able to read back (per-service signing keys).

Tokens are stored as digests because Mission Control only ever compares them; a signing secret has
to be used as an HMAC key by every worker, so it is stored encrypted instead. Fernet (AES-128-CBC
with HMAC-SHA256, from ``cryptography``) does the work; this module only decides the keys:

* ``MC_ENCRYPTION_KEY``: one or more comma-separated passphrases, newest first. The first encrypts,
  every one decrypts (``MultiFernet``), so rotating the key is: put the new one first, keep the old
  one after it until every secret has been rotated, then drop it.
* Without it, a key derived from ``MC_SIGNING_SECRET``, so a deployment works with the secrets it
  already has. Receivers without their own secret hold MC_SIGNING_SECRET, so with the database too
  they could read the stored secrets; setting ``MC_ENCRYPTION_KEY`` removes that. The derived key
  always stays a decryption key, so setting one later keeps existing secrets readable.

Each passphrase is stretched into a Fernet key with HKDF-SHA256 under a label naming this use, so a
key shared with another purpose never yields the same Fernet key.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

_LABEL = b"mission-control secretbox v1"


class SecretUnreadable(Exception):
    """A stored secret that none of the configured keys decrypts (a key was dropped too soon)."""


def _fernet(passphrase: str) -> Fernet:
    # cryptography is imported on first use: it costs a process ~8 MB, and only services with their
    # own secret need it.
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(passphrase.encode())
    return Fernet(base64.urlsafe_b64encode(raw))


class SecretBox:
    """Encrypts with the first key, decrypts with any."""

    def __init__(self, encryption_keys: Sequence[str], signing_secret: str | None) -> None:
        self._passphrases = [*encryption_keys, *([signing_secret] if signing_secret else [])]
        if not self._passphrases:
            raise ValueError("a SecretBox needs MC_ENCRYPTION_KEY or MC_SIGNING_SECRET")
        self._multi: MultiFernet | None = None

    @property
    def _fernet(self) -> MultiFernet:
        # Keys derived on first use: most processes that hold a box never open one.
        if self._multi is None:
            from cryptography.fernet import MultiFernet

            self._multi = MultiFernet([_fernet(p) for p in self._passphrases])
        return self._multi

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, ciphertext: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "a stored secret cannot be decrypted with MC_ENCRYPTION_KEY (or MC_SIGNING_SECRET); "
                "keep the key it was sealed with in MC_ENCRYPTION_KEY, after the new one"
            ) from None
