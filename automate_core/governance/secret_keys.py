"""The Fernet keys stored secrets are encrypted with.

``AUTOMATE["SECRET_KEYS"]`` lists Fernet keys, newest first: the newest encrypts, every listed
key decrypts. With none listed, one key is derived from Django's ``SECRET_KEY`` with
HKDF-SHA256, so changing ``SECRET_KEY`` then makes every stored secret unreadable.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from automate_core.conf import automate_settings

_HKDF_INFO = b"django-automate stored secrets v1"


def _keys() -> list[bytes]:
    configured = automate_settings.SECRET_KEYS
    if configured:
        return [k.encode() if isinstance(k, str) else bytes(k) for k in configured]
    if not settings.SECRET_KEY:
        raise ImproperlyConfigured("Stored secrets need AUTOMATE['SECRET_KEYS'] or SECRET_KEY")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        settings.SECRET_KEY.encode()
    )
    return [base64.urlsafe_b64encode(derived)]


def fernet() -> MultiFernet:
    """The newest key encrypts; every configured key decrypts."""
    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "AUTOMATE['SECRET_KEYS'] must hold Fernet keys (Fernet.generate_key())"
        ) from exc


def key_ids() -> list[str]:
    """Fingerprints of the configured keys, newest first (a row's ``key_id``)."""
    return [hashlib.sha256(key).hexdigest()[:16] for key in _keys()]
