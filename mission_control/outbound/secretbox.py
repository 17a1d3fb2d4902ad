"""Encryption at rest for secrets Mission Control must be able to read back: per-service signing keys,
credential-bearing job target headers and notification channel URLs.

Tokens are stored as digests because Mission Control only ever compares them; a signing secret has
to be used as an HMAC key by every worker, so it is stored encrypted instead. Fernet (AES-128-CBC
with HMAC-SHA256, from ``cryptography``) does the work; this module only decides the keys:

* ``MC_SECRET_KEY`` (``MC_ENCRYPTION_KEY`` is its older name, still read): one or more
  comma-separated passphrases, newest first. The first encrypts, every one decrypts (``MultiFernet``),
  so rotating the key is: put the new one first, deploy, run ``mission-control db reencrypt-secrets``
  (every stored secret re-sealed with the new key), then drop the old one.
* Without it, a key derived from ``MC_SIGNING_SECRET``, so a deployment works with the secrets it
  already has. Receivers without their own secret hold MC_SIGNING_SECRET, so with the database too
  they could read the stored secrets; setting ``MC_SECRET_KEY`` removes that. The derived key
  always stays a decryption key, so setting one later keeps existing secrets readable.

Values kept inside JSON documents (a job's headers, a channel's URL) are *envelopes*:
``mc-sealed:v1:`` and the Fernet token, so a reader tells a sealed value from a plaintext one stored
before encryption existed (:func:`is_sealed`). Opening an envelope is cached per box, so a worker
pays for the decryption of a job's header once, not on every attempt.

Each passphrase is stretched into a Fernet key with HKDF-SHA256 under a label naming this use, so a
key shared with another purpose never yields the same Fernet key.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet, MultiFernet

    from mission_control.base.config import Settings

_LABEL = b"mission-control secretbox v1"
SEALED_PREFIX = "mc-sealed:v1:"
_OPENED_CACHE_SIZE = 4096


def is_sealed(value: object) -> bool:
    """Whether ``value`` is an envelope made by :meth:`SecretBox.seal_value`."""
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


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
            raise ValueError("a SecretBox needs MC_SECRET_KEY or MC_SIGNING_SECRET")
        self._multi: MultiFernet | None = None
        # envelope -> plaintext; a worker opens the same few headers on every attempt.
        self._opened: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        """The box of a process's settings: MC_SECRET_KEY's keys, then the MC_SIGNING_SECRET one."""
        return cls(settings.encryption_keys, settings.signing_secret)

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
        return self._unless_unreadable(self._fernet.decrypt, ciphertext)

    def rotate(self, ciphertext: str) -> str:
        """``ciphertext`` sealed again with the newest key (raises :class:`SecretUnreadable`)."""
        return self._unless_unreadable(self._fernet.rotate, ciphertext)

    @staticmethod
    def _unless_unreadable(operation: Callable[[bytes], bytes], ciphertext: str) -> str:
        """``operation`` (decrypt or rotate) on ``ciphertext``; :class:`SecretUnreadable` if no key fits."""
        from cryptography.fernet import InvalidToken

        try:
            return operation(ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "a stored secret cannot be decrypted with MC_SECRET_KEY (or MC_SIGNING_SECRET); "
                "keep the key it was sealed with in MC_SECRET_KEY, after the new one"
            ) from None

    # -- envelopes: sealed values inside JSON documents ------------------------------------------------

    def seal_value(self, plaintext: str) -> str:
        """An envelope (``mc-sealed:v1:<token>``) holding ``plaintext``."""
        return SEALED_PREFIX + self.seal(plaintext)

    def open_value(self, value: str) -> str:
        """The plaintext of an envelope; a value that is not one (stored before sealing) as it is."""
        if not is_sealed(value):
            return value
        opened = self._opened.get(value)
        if opened is None:
            opened = self.open(value[len(SEALED_PREFIX) :])
            if len(self._opened) >= _OPENED_CACHE_SIZE:
                self._opened.clear()
            self._opened[value] = opened
        return opened

    def reseal_value(self, value: str) -> str:
        """An envelope sealed with the newest key: a plaintext value sealed, an envelope rotated."""
        if not is_sealed(value):
            return self.seal_value(value)
        return SEALED_PREFIX + self.rotate(value[len(SEALED_PREFIX) :])
