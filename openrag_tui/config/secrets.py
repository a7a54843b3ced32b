"""The one masking rule: what of a value may be shown on a screen, in JSON or in a message.

A value is masked whole when its variable names a secret (`*_KEY`, `*_TOKEN`, `*_PASS`, ...) or
when it interpolates one (`Bearer ${EMBEDDER_API_KEY}`); anywhere else, the credentials inside a
URL (`http://user:pw@host`) are masked, so a message that echoes a value leaks nothing.
"""

from __future__ import annotations

import re

__all__ = ["MASK", "is_secret", "mask_value", "redact"]

MASK = "••••••"
# Parts of a variable's name that mark its value as a secret (DB_PASS, ADMIN_PASSWD, ...).
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PWD", "CREDENTIAL")
_REFERENCE = re.compile(r"\$\{(?P<name>[^}:]+)(?::-[^}]*)?\}")
# scheme://userinfo@ : the userinfo is everything up to the last @ before the host part
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s@]+)@")


def is_secret(key: str) -> bool:
    """Whether a variable's value must not be shown on screen."""
    upper = key.upper()
    return any(word in upper for word in _SECRET_WORDS)


def interpolates_secret(value: str) -> bool:
    """Whether a raw value pulls a secret in through `${NAME}` (python-dotenv's interpolation)."""
    return any(is_secret(found["name"]) for found in _REFERENCE.finditer(value))


def mask_value(key: str, value: str | None) -> str | None:
    """The value as it may be displayed: secrets become a fixed mask that leaks no length."""
    if not value:
        return value
    if is_secret(key) or interpolates_secret(value):
        return MASK
    return redact(value)


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it masked: `http://user:••••••@host`."""

    def hide(found: re.Match[str]) -> str:
        user, colon, _password = found["userinfo"].partition(":")
        shown = f"{user}:{MASK}" if colon else MASK  # a lone userinfo is often a token
        return f"{found['scheme']}{shown}@"

    return _URL_CREDENTIALS.sub(hide, text)
