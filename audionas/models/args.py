"""Checks of a model factory's argument values (each a UserError naming the model and argument): the
bounds and types `res15`, TC-ResNet, the ASC networks and `darts` accept."""

from __future__ import annotations

import math

from audionas.errors import UserError
from audionas.utils.jsonio import finite_float, is_finite_number, is_integer

# Choice: one sample of at most 2^22 values (a 1x40x100000 log-mel: 33 min at a 20 ms hop); 1x100000000x40 was
# killed for lack of memory with no message.
MAX_INPUT_VALUES = 1 << 22


def input_shape_arg(shape, where: str) -> tuple[int, int, int]:
    """`shape` as (C, H, W) if it is three positive integers of at most MAX_INPUT_VALUES values in all (a
    list or tuple, not bools), else a UserError naming `where` (a hand-edited checkpoint or space file)."""
    if not isinstance(shape, (list, tuple)) or len(shape) != 3 or not all(
            is_integer(v) and v > 0 for v in shape):
        raise UserError(f"{where}: expected three positive integers [C, H, W], got {str(shape)[:60]}")
    if math.prod(shape) > MAX_INPUT_VALUES:
        raise UserError(f"{where}: expected a sample of at most {MAX_INPUT_VALUES:,} values (C x H x W), got "
                        f"{list(shape)} ({math.prod(shape):,})")
    return tuple(int(v) for v in shape)


def arg_where(model: str, arg: str) -> str:
    """How an argument is named in errors: `model 'res15': argument 'n_maps'`."""
    return f"model '{model}': argument '{arg}'"


def positive_int(value, where: str, most: int | None = None) -> int:
    """`value` if it is an integer >= 1 (and <= `most`; not a bool), else a UserError naming `where`."""
    if not is_integer(value) or value < 1:
        raise UserError(f"{where}: expected a positive integer, got {value!r}")
    if most is not None and value > most:
        raise UserError(f"{where}: expected at most {most}, got {value}")
    return int(value)


def real_in(value, where: str, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
            hi_open: bool = False) -> float:
    """`value` as a float if it is a finite number within the bounds (None = unbounded), else a UserError.
    A number's text counts: PyYAML (YAML 1.1) reads `1e-3` as a string, which typed config fields convert
    too (`model_args.bn_eps=1e-3`)."""
    given, value = value, number_or_text(value)
    ok = is_finite_number(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        if lo is not None and hi is not None:
            want = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        elif lo is not None:
            want = f"a number {'>' if lo_open else '>='} {lo:g}"
        elif hi is not None:
            want = f"a number {'<' if hi_open else '<='} {hi:g}"
        else:
            want = "a number"
        raise UserError(f"{where}: expected {want}, got {given!r}")
    return float(value)


def boolean(value, where: str) -> bool:
    """`value` if it is true/false (YAML booleans), else a UserError."""
    if not isinstance(value, bool):
        raise UserError(f"{where}: expected true or false, got {value!r}")
    return value


def number_or_text(value):
    """A string holding a finite number as that float; anything else as it is (refused where it is used)."""
    number = finite_float(value) if isinstance(value, str) else None
    return value if number is None else number
