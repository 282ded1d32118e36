"""Errors a user can fix: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


class UserError(Exception):
    """Bad input: the message names the problem and the fix, on one line."""

    exit_code = 2


def did_you_mean(word: str, valid: Iterable[str], quote: str = "'") -> str:
    """`; did you mean 'x'?` for the closest valid word (difflib), or "" when none is close."""
    close = difflib.get_close_matches(word, list(valid), n=1, cutoff=0.6)
    return f"; did you mean {quote}{close[0]}{quote}?" if close else ""


def read_user_text(path: Path, what: str) -> str:
    """A file the user wrote, as text; unreadable or not UTF-8 is a UserError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text (byte {err.start}): save it as UTF-8"
                        ) from None
    except OSError as err:
        raise UserError(f"cannot read {what} {path}: {err.strerror}") from None
