"""Encryption of secret variables (tokens, S3 keys) at rest.

The key is derived from SECRET_KEY with HKDF. Encryption always uses the current SECRET_KEY;
decryption tries SECRET_KEY and then every key in SECRET_KEY_FALLBACKS, so rotating
SECRET_KEY (the old one moved to SECRET_KEY_FALLBACKS) keeps stored secrets readable.
A secret encrypted under a key that is in neither raises SecretUnreadable: it must be
entered again.
"""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

MASK = "••••••"


class SecretUnreadable(ValueError):
    """A stored secret was encrypted under a key that is neither SECRET_KEY nor one of
    SECRET_KEY_FALLBACKS (or the stored text is damaged): its value is lost."""

    def __init__(self, message: str = "secret unreadable: enter it again"):
        super().__init__(message)


@functools.lru_cache(maxsize=16)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"deploycheck", info=b"variables v1"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _keys() -> tuple[str, ...]:
    """The current key first (MultiFernet encrypts with the first), then the fallbacks."""
    fallbacks = [str(key) for key in (getattr(settings, "SECRET_KEY_FALLBACKS", None) or []) if key]
    return tuple(dict.fromkeys([settings.SECRET_KEY, *fallbacks]))


@functools.lru_cache(maxsize=4)
def _multi(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet(key) for key in keys])


def encrypt(value: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    """The plain value; raises SecretUnreadable when no configured key opens it.

    An empty stored value means nothing was ever entered, and decrypts to "".
    """
    if not token:
        return ""
    try:
        return _multi(_keys()).decrypt(token.encode()).decode()
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable() from None


def rotate(token: str) -> str:
    """The same secret encrypted under the current SECRET_KEY (for re-encrypting stored values
    after a rotation, so the old key can later leave SECRET_KEY_FALLBACKS)."""
    if not token:
        return token
    try:
        return _multi(_keys()).rotate(token.encode()).decode()
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable() from None
