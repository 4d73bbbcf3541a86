"""Names as the user sees them: printable on one line in any locale, compared in one Unicode form."""

from __future__ import annotations

import unicodedata


def escape_controls(name: str) -> str:
    """`name` with its control characters (newline, tab, ...) and the bytes of a name that is not UTF-8
    (surrogate-escaped by Python) written as Python writes them (\\n, \\t, \\udce9, ...): one line, one
    field, printable in any locale, whatever a file was named."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c) in ("Cc", "Cs") else c for c in name)


def nfc(name: str) -> str:
    """`name` in Unicode NFC (macOS writes file names in NFD; lists and configs are mostly NFC)."""
    return unicodedata.normalize("NFC", name)
