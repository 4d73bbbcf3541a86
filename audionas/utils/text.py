"""Names and values as the user sees them: printable on one line in any locale, compared in one Unicode form,
cut short in a message."""

from __future__ import annotations

import reprlib
import unicodedata

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 2, 120, 120
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = 12
MAX_SHOWN = 200


def shown(value) -> str:
    """`value` as a message shows it: its repr, cut to MAX_SHOWN characters (`[1, 2, ...]`)."""
    text = _SHOWN.repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def escape_controls(name: str) -> str:
    """`name` with its control characters (newline, tab, ...) and the bytes of a name that is not UTF-8
    (surrogate-escaped by Python) written as Python writes them (\\n, \\t, \\udce9, ...): one line, one
    field, printable in any locale, whatever a file was named."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cs") else c for c in name)


def nfc(name: str) -> str:
    """`name` in Unicode NFC (macOS writes file names in NFD; lists and configs are mostly NFC)."""
    return unicodedata.normalize("NFC", name)
