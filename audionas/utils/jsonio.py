"""Reading JSON a user may have edited (search state, metrics, genotypes): each problem a UserError naming the
file, and the checks of the values audionas writes (integers, finite numbers, fractions)."""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audionas.errors import UserError
from audionas.utils.text import escape_controls

_JSON_TYPES = {dict: "object", list: "array"}


def is_json_int(value: Any) -> bool:
    """An integer as JSON gives it (Python's bool is an int, JSON's true is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_integer(value: Any) -> bool:
    """An integer of any kind (Python's, numpy's), not a bool: what a count, a seed or an index may be."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite_number(value: Any) -> bool:
    """A real number (not a bool) a float holds: not NaN, not infinite, not an integer beyond float range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer of 309 digits or more (JSON and YAML read any length)
        return False


def finite_float(value: Any) -> float | None:
    """`value` as a float when it is a finite number (`is_finite_number`) or text holding one (PyYAML reads
    `3e-4` as a string, a CLI override gives text); None for anything else."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return float(value) if is_finite_number(value) else None


def is_fraction(value: Any) -> bool:
    """A finite number in [0, 1] (an accuracy or F1 score as audionas writes them)."""
    return is_finite_number(value) and 0 <= value <= 1


def accuracy_field(where: str, key: str, value: Any) -> float:
    """`value` of field `key` read at `where` (a file, or a record in one) as an accuracy in [0, 1]; anything
    else is a UserError naming both."""
    if not is_fraction(value):
        raise UserError(f"{where}: field '{key}': expected an accuracy in [0, 1], got {value!r}")
    return float(value)


def _json_type(value: Any) -> str:
    for t, name in _JSON_TYPES.items():
        if isinstance(value, t):
            return name
    return {str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


class JSONError(ValueError):
    """Why a user's JSON text cannot be read, in a few words, and at which line if known (`parse_json`)."""

    def __init__(self, reason: str, lineno: int | None = None):
        super().__init__(reason)
        self.lineno = lineno


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:  # json keeps the last silently: a hand edit that adds a field would be half-read
            raise JSONError(f"key '{escape_controls(key)}' given twice in one object")
        out[key] = value
    return out


def parse_json(text: str) -> Any:
    """json.loads for text a user may have edited: invalid JSON, a key given twice in one object, nesting
    too deep for Python's recursion limit or an integer too long for int() are each a JSONError."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise JSONError("invalid JSON", e.lineno) from None
    except JSONError:
        raise
    except RecursionError:
        raise JSONError("invalid JSON: nested too deeply") from None
    except ValueError:  # int() past sys.get_int_max_str_digits()
        limit = sys.get_int_max_str_digits()
        raise JSONError(f"invalid JSON: an integer of more than {limit} digits") from None


def json_object_or_none(path: str | os.PathLike) -> dict | None:
    """The JSON object in a file this package writes (a marker, a report), or None when it is missing,
    unreadable or holds something else: to such a reader that only means "not one of ours"."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def read_json(path: str | os.PathLike, what: str, kind: type | None = dict) -> Any:
    """Parse a JSON file a user may have edited; a missing, unreadable, non-UTF-8 or invalid file, or a top
    level that is not `kind` (dict: an object, list: an array, None: anything) is a UserError naming it."""
    path = Path(path)
    try:
        data = parse_json(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (expected {what})") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder (expected {what})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (expected {what})") from None
    except JSONError as e:
        at = f" at line {e.lineno}" if e.lineno else ""
        raise UserError(f"{path}: {e}{at} (expected {what})") from None
    if kind is not None and not isinstance(data, kind):
        raise UserError(f"{path}: expected {what} (a JSON {_JSON_TYPES.get(kind, kind.__name__)}), "
                        f"got a JSON {_json_type(data)}")
    return data


def read_json_lines(path: str | os.PathLike, what: str, drop_partial_last: bool = False,
                    check: Callable[[dict, str], dict] | None = None) -> list[dict]:
    """The JSON objects of a `.jsonl` file, one per non-blank line; anything else is a UserError naming the
    file and line. With `drop_partial_last`, an unparsable last line without its newline (a kill mid-write)
    is ignored. `check(record, "PATH line N")` returns a record or raises a UserError naming that line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (expected {what})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    lines = raw.split(b"\n")
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = parse_json(line.decode("utf-8"))
        except (UnicodeDecodeError, JSONError) as e:
            if drop_partial_last and n == len(lines):  # no newline after it: cut by a kill
                break
            why = "not UTF-8" if isinstance(e, UnicodeDecodeError) else str(e)
            raise UserError(f"{path} line {n}: not a JSON line ({why}; expected {what})") from None
        if not isinstance(rec, dict):
            raise UserError(f"{path} line {n}: expected a JSON object ({what}), got a JSON {_json_type(rec)}")
        out.append(check(rec, f"{path} line {n}") if check else rec)
    return out
