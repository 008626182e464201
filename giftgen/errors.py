"""Typed errors raised by library code; the CLI turns them into one-line messages (see ``cli.main``).

``InputError`` and ``ConfigError`` are the user's to fix (exit code 2); ``GiftgenError`` is anything else
giftgen understands (exit code 1). Each message should say what was wrong and, where one exists, the next step.
"""

from __future__ import annotations


class GiftgenError(Exception):
    """An error with a message fit for users. ``hint`` is the next step, shown on its own after the message."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message} ({self.hint})" if self.hint else message


class InputError(GiftgenError):
    """Bad input data: a malformed line, a missing column, a wrong type, a missing file."""

    exit_code = 2


class ConfigError(GiftgenError):
    """Bad settings: an unknown recipe key, an invalid value."""

    exit_code = 2
