"""Plain-dataclass configs loaded from YAML presets (yaml.safe_load) with `key=value` CLI overrides.

A preset is `audionas/presets/<name>.yaml` or a path to a YAML file. Nested dataclass fields are addressed
with dots on the command line: `optim.lr=0.01 data.batch_size=64`. Values are parsed with yaml.safe_load, so
`true`, `3e-4`, `[1, 2]` mean what they look like, except that a text field keeps number-, date- and
yes/no-like text as typed (`data.root=010`, `data.words=[yes, no]`; in a preset file too). Unknown keys,
keys given twice and wrong types are UserErrors.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import decimal
import os
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from audionas.errors import UserError
from audionas.utils.jsonio import finite_float
from audionas.utils.text import shown

PRESET_DIR = Path(__file__).parent / "presets"
INT64_MAX = 2**63 - 1
T = TypeVar("T")
# An integer in scientific notation (`epochs: 1e3`): YAML 1.1 reads it as text, a float field takes it too.
_EXPONENT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def list_presets() -> list[str]:
    """Names of the built-in presets (audionas/presets/*.yaml)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """A preset's file: a built-in name, or a path to a YAML file (UserError if neither)."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return p
    if p.suffix in (".yaml", ".yml") and p.is_dir():
        raise UserError(f"preset {name}: a folder, expected a YAML file")
    cand = PRESET_DIR / f"{name}.yaml"
    if cand.is_file():
        return cand
    raise UserError(f"preset '{name}': no such preset (known: {', '.join(list_presets())}) or YAML file")


def yaml_error_message(e: yaml.YAMLError) -> str:
    """PyYAML's multi-line error as one line: `invalid YAML at line L, column C: problem (context)`."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None) or (str(e).strip().splitlines() or ["unreadable"])[0]
    context = getattr(e, "context", None)
    position = getattr(e, "position", None)  # a ReaderError (e.g. a control character): no line, a position
    where = (f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None
             else f" at character {position + 1}" if isinstance(position, int) else "")
    return f"invalid YAML{where}: {problem}" + (f" ({context})" if context else "")


class SafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader whose over-long integer is a YAMLError: Python's int() raises a ValueError past
    sys.get_int_max_str_digits() digits (4300), which would escape every `except yaml.YAMLError`; so is a
    document of more than MAX_YAML_VALUES values once its aliases are expanded."""

    def construct_yaml_int(self, node):
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            raise yaml.constructor.ConstructorError(
                problem=f"an integer of more than {sys.get_int_max_str_digits()} digits",
                problem_mark=node.start_mark) from None

    def compose_document(self):
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > MAX_YAML_VALUES:
            raise _TooLarge(problem=f"more than {MAX_YAML_VALUES:,} values once its aliases are expanded",
                            problem_mark=node.start_mark)
        return node


SafeLoader.add_constructor("tag:yaml.org,2002:int", SafeLoader.construct_yaml_int)

# Choice: a config holds far fewer values; a few lines of aliases of aliases ("billion laughs") expand to
# billions, which every later walk over the value (checks, messages) would go through.
MAX_YAML_VALUES = 100_000


class _TooLarge(yaml.composer.ComposerError):
    """A YAML document that expands to more than MAX_YAML_VALUES values (SafeLoader)."""


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values `node` holds once every alias is expanded (each distinct node counted once: linear)."""
    if id(node) not in sizes:
        children = node.value if isinstance(node, yaml.SequenceNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else [])
        sizes[id(node)] = 1 + sum(_expanded_size(child, sizes) for child in children)
    return sizes[id(node)]


class _KeyTwice(yaml.constructor.ConstructorError):
    """A key given twice in one YAML mapping (_UniqueKeyLoader)."""


class _UniqueKeyLoader(SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently, so
    `epochs: 1` ... `epochs: 2` would train 2 epochs without a word)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`, whose keys may be overridden
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue  # an unhashable key: construct_mapping says what is wrong with it
            if key in seen:
                raise _KeyTwice(problem=f"key '{key}' given twice", problem_mark=key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path, cls: type | None = None) -> dict:
    """A YAML file holding a mapping (empty file: {}); every problem is a one-line UserError naming it.
    With the config class `cls`, a text field keeps number-, date- and yes/no-like text as typed, as an
    override does (`root: 010` is the folder 010, not YAML 1.1's octal 8; `words: [yes, no]` two words)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not a text YAML file (invalid UTF-8 at byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the file ({e.strerror or e})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a yaml.SafeLoader: no Python objects
    except yaml.YAMLError as e:
        raise UserError(f"{path}: {yaml_error_message(e)}") from None
    except RecursionError:
        raise UserError(f"{path}: invalid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config fields at the top level")
    if cls is not None:  # the same text again, with text scalars (keys `1` and `'1'` collide only here)
        with contextlib.suppress(yaml.YAMLError):
            data = _texts_kept(data, yaml.load(text, Loader=_TextScalarLoader), cls, [])
    return data


# Fields a preset may fill with a file (a search space YAML, a genotype JSON): a relative path is looked up
# beside the preset first, as `base:` is, then from the working folder.
_FILE_FIELDS = (("space",), ("model_args", "genotype"))


def _files_beside(path: Path, data: dict) -> None:
    """Point the _FILE_FIELDS of preset `path`'s `data` that name a file beside it at that file."""
    for *parents, leaf in _FILE_FIELDS:
        node = data
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        value = node.get(leaf) if isinstance(node, dict) else None
        if isinstance(value, str) and value.endswith((".yaml", ".yml", ".json")) \
                and not Path(value).expanduser().is_absolute() and (path.parent / value).is_file():
            node[leaf] = str((path.parent / value).absolute())


def load_preset_dict(name: str, _chain: tuple[Path, ...] = (), cls: type | None = None) -> dict:
    """A preset's fields; `base: other-preset` (a preset name or YAML file) inherits from it first. `cls`:
    the config class, whose text fields keep what the file types (read_yaml)."""
    path = preset_path(name)
    key = path.resolve()
    if key in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain[_chain.index(key):], key))
        raise UserError(f"{path}: base: presets inherit from each other in a cycle ({cycle})")
    from audionas.utils.rundir import holds_work, read_run_config

    # A run's own config (resume) is read as it ran.
    is_run = path.name == "config.yaml" and holds_work(path.parent)
    data = read_run_config(path) if is_run else read_yaml(path, cls)
    if not data:  # an empty file given as --preset would silently train the defaults
        raise UserError(f"{path}: empty preset (no config fields); expected fields or base: PRESET")
    _files_beside(path, data)
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base.strip():
        raise UserError(f"{path}: base: expected a preset name or a YAML file path, got {shown(base)}")
    base = _base_name(path, base)
    try:
        preset_path(base)
    except UserError as e:
        raise UserError(f"{path}: base: {e}") from None
    merged = load_preset_dict(base, (*_chain, key), cls)
    _deep_update(merged, data)
    return merged


def preset_lineage(name: str) -> list[Path]:
    """The files of preset `name` and of its `base:` presets, nearest first (resolved paths)."""
    chain: list[Path] = []
    while name is not None:
        path = preset_path(name)
        if path.resolve() in chain:  # a cycle (load_preset_dict names it)
            break
        chain.append(path.resolve())
        base = read_yaml(path).get("base") if path.name != "config.yaml" else None
        if not isinstance(base, str) or not base.strip():
            break
        name = _base_name(path, base)
    return chain


def _base_name(path: Path, base: str) -> str:
    """The preset that `base:` in preset `path` names. Choice: a relative base file is looked up beside its
    preset, then from the working folder."""
    beside = path.parent / base
    return str(beside) if beside.suffix in (".yaml", ".yml") and beside.is_file() else base


def _deep_update(dst: dict, src: dict, strict: bool = False, prefix: str = "") -> None:
    """Merge `src` into `dst`, mappings key by key. `strict` (named flags merged over a preset): a mapping
    given for a field the preset set to something else is a UserError, not a silent replacement that would
    hide the preset's mistake (`data: 5` under --data)."""
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v, strict, f"{prefix}{k}.")
        elif strict and isinstance(v, dict) and k in dst:
            got = "null" if dst[k] is None else repr(dst[k])
            raise UserError(f"config field '{prefix}{k}': expected a mapping, got {got}")
        else:
            dst[k] = v


def override_key(item: str) -> str:
    """The dotted key of a key=value override (`' data.fold =2'` -> `'data.fold'`)."""
    return item.partition("=")[0].strip()


def apply_overrides(data: dict, items: list[str],
                    expand: dict[str, Callable[[str], dict]] | None = None, cls: type | None = None) -> dict:
    """Apply ['a.b=1', 'c=x'] to `data` in order (mappings merge, like a preset's `base`); returns `data`.
    With the config class `cls`, a text field keeps number- and date-like text as typed (_override_value).

    `expand[field]` turns a top-level field given by name (e.g. `space: asc` or a YAML path) into its mapping
    when a later key reaches inside it (`space.num_classes=3`), so the named thing is edited, not replaced.
    """
    expand = expand or {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override '{item}': expected key=value")
        parts = override_key(item).split(".")
        value = _override_value(item.split("=", 1)[1], cls, parts)
        node = data
        if not all(parts):  # `=3`, `.epochs=3`, `data..batch_size=3`: an unknown field '' would be reported
            raise UserError(f"override '{item}': expected key=value with a dotted key such as optim.lr=0.01")
        for depth, p in enumerate(parts[:-1]):
            child = node.setdefault(p, {})
            if depth == 0 and isinstance(child, str) and p in expand:
                child = node[p] = copy.deepcopy(expand[p](child))
            if not isinstance(child, dict):
                raise UserError(f"override '{item}': '{'.'.join(parts[:depth + 1])}' is {shown(child)}, "
                                f"not a mapping")
            node = child
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            _deep_update(node[parts[-1]], value)
        else:
            node[parts[-1]] = value
    return data


def refuse_flag_overrides(set_by_flags: dict[str, tuple[str, Any]], items: list[str],
                          cls: type | None = None) -> None:
    """UserError for a key=value override of a field a named flag sets (`--data X data.root=Y`, `--genotype G
    model=res15`): the override would silently win over the flag, or mix the two. `set_by_flags` maps a
    dotted field to (flag, value); repeating the flag's own value (read as apply_overrides reads it for the
    config class `cls`) is allowed, and so is a mapping above the field that does not name it (it merges:
    `model_args={dropout: 0.1}` beside --genotype)."""
    for item in items:
        key, raw = override_key(item), item.partition("=")[2]
        given = _override_value(raw, cls, key.split("."))
        for path, (flag, value) in set_by_flags.items():
            same = key == path and raw != "" and given == value
            above = path.startswith(key + ".") and _reaches(given, path[len(key) + 1:].split("."))
            if not same and (key == path or key.startswith(path + ".") or above):
                raise UserError(f"override '{item}': {path} is set by {flag} too; give it once")


def _reaches(value, rest: list[str]) -> bool:
    """Whether an override's `value`, applied above the dotted field `rest`, changes it: anything but a
    mapping replaces it, and a mapping (merged key by key) changes it only by naming it."""
    for part in rest:
        if not isinstance(value, dict):
            return True
        if part not in value:
            return False
        value = value[part]
    return True


def _override_value(raw: str, cls: type | None, parts: list[str]):
    """An override's value as YAML reads it, with number-, date- and yes/no-like text kept as typed wherever
    it lands in a text field of config class `cls` (`data.root=010`, `data={root: 010}`, `data.words=[no]`).
    """
    if raw == "":
        return ""
    try:
        value = _yaml_or_text(raw)
    except (_KeyTwice, _TooLarge) as e:  # `optim={lr: 0.1, lr: 0.2}`: the last would win without a word
        raise UserError(f"override '{'.'.join(parts)}={raw}': {e.problem}") from None
    return value if cls is None else _texts_kept(value, _yaml_or_text(raw, _TextScalarLoader), cls, parts)


def _texts_kept(value, text, cls: type, parts: list[str]):
    """`value` with what lies in text fields taken from `text`, the same YAML read by _TextScalarLoader (both
    readings have the same mappings in the same order; only scalars differ); so is a number field's integer
    written other than in decimal (YAML 1.1 reads `010` as 8, `0x10` as 16, `1:30` as 90), which _coerce then
    refuses (a float field reads `010` as 10.0)."""
    leaf = _leaf_type(cls, parts)
    if leaf is str:
        return text
    if leaf in (int, float):
        if isinstance(value, list) and isinstance(text, list) and len(value) == len(text):
            return [t if _not_decimal(v, t) else v for v, t in zip(value, text)]
        return text if _not_decimal(value, text) else value
    if isinstance(value, dict) and isinstance(text, dict) and len(value) == len(text):
        pairs = zip(value.items(), text.values())
        return {k: _texts_kept(v, t, cls, [*parts, str(k)]) for (k, v), t in pairs}
    return value


def _yaml_or_text(raw: str, loader: type = _UniqueKeyLoader):
    """An override's value: its YAML reading, or the text itself when it is no valid YAML (a key given twice
    in a mapping is a _KeyTwice)."""
    try:
        return yaml.load(raw, Loader=loader)  # loader: a yaml.SafeLoader: no Python objects
    except (_KeyTwice, _TooLarge):
        raise
    except (yaml.YAMLError, RecursionError):
        return raw


class _TextScalarLoader(_UniqueKeyLoader):
    """yaml.SafeLoader that reads number-, date- and yes/no-like scalars as text, for an override of a text
    field: YAML 1.1 reads `data.root=010` as the octal 8, `12:30` as 750, `2024-01-01` as a date and the
    Speech Commands words yes / no / on / off as booleans."""


_TYPED_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp",
               "tag:yaml.org,2002:bool")
_TextScalarLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _TYPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _leaf_type(cls: type, parts: list[str]):
    """The type the dotted field `parts` of config class `cls` holds (of its items, for a list or tuple);
    None for no such field."""
    tp: Any = cls
    for part in parts:
        if not dataclasses.is_dataclass(tp):
            return None
        hint = typing.get_type_hints(tp).get(part)
        if hint is None:
            return None
        tp = _unwrap_optional(hint)[0]
    if typing.get_origin(tp) in (list, tuple):
        tp = _unwrap_optional((typing.get_args(tp) or (Any,))[0])[0]
    return tp


_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9_]*)")
_OTHER_BASE = re.compile(r"[-+]?(0[0-7_]+|0x[0-9a-fA-F_]+|0b[01_]+|[1-9][0-9_]*(:[0-5]?[0-9])+)")


def _not_decimal(value, text) -> bool:
    """Whether YAML read the integer `value` from `text` written in another base (octal, hex, binary, 60)."""
    return (isinstance(value, int) and not isinstance(value, bool) and isinstance(text, str)
            and not _DECIMAL.fullmatch(text.strip()))


def _unwrap_optional(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _coerce(value: Any, tp, field: str):
    tp, optional = _unwrap_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise UserError(f"config field '{field}': null is not allowed")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise UserError(f"config field '{field}': expected a mapping")
        return from_dict(tp, value, prefix=f"{field}.")
    origin = typing.get_origin(tp) or tp
    if tp is Any:
        return value
    if origin is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"config field '{field}': expected true or false, got {shown(value)}")
    if origin is int:
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):  # PyYAML reads `1e3` as text
            exact = decimal.Decimal(value.strip())  # not float(): `9007199254740993e0` stays itself (QA)
            if exact.adjusted() > 18:  # beyond 64 bits: said so without building a huge integer
                raise UserError(f"config field '{field}': expected a 64-bit integer, got {shown(value)}")
            number = int(exact) if exact == exact.to_integral_value() else None
        if number is None:
            base = (" (YAML 1.1 reads it as an octal, hexadecimal, binary or base-60 number: write it in "
                    "decimal)") if isinstance(value, str) and _OTHER_BASE.fullmatch(value.strip()) else ""
            raise UserError(f"config field '{field}': expected an integer, got {shown(value)}{base}")
        if abs(number) > INT64_MAX:  # numpy, torch and islice take 64-bit integers: a traceback otherwise
            raise UserError(f"config field '{field}': expected a 64-bit integer, got {number}")
        return number
    if origin is float:
        number = finite_float(value)  # text too: PyYAML (YAML 1.1) reads `3e-4` as a string
        if number is None:  # nan / inf would train silently into nan
            raise UserError(f"config field '{field}': expected a finite number, got {shown(value)}")
        return number
    if origin is str:
        if isinstance(value, os.PathLike):  # data.root=Path(...) from Python, as the run folder may be
            return os.fspath(value)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        hint = (" (YAML reads an unquoted yes, no, on or off as true/false: quote it, e.g. "
                "words: [\"yes\", \"no\"])") if isinstance(value, bool) else ""
        raise UserError(f"config field '{field}': expected a string, got {shown(value)}{hint}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            hint = " (write a list as [a, b])" if isinstance(value, str) and "," in value else ""
            raise UserError(f"config field '{field}': expected a list, got {shown(value)}{hint}")
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{field}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"config field '{field}': expected a mapping, got {shown(value)}")
        return dict(value)
    return value


def _did_you_mean(cls, key, prefix: str, data: dict) -> str:
    """A hint for an unknown field: the same name one level down (`lr` -> `optim.lr`), a close spelling, or
    `model_args.KEY` for an argument of the config's model."""
    import difflib

    hints = typing.get_type_hints(cls)
    below = [f"{prefix}{f.name}.{key}" for f in dataclasses.fields(cls)
             if dataclasses.is_dataclass(_unwrap_optional(hints[f.name])[0])
             and key in {g.name for g in dataclasses.fields(_unwrap_optional(hints[f.name])[0])}]
    close = difflib.get_close_matches(str(key), [f.name for f in dataclasses.fields(cls)], n=1, cutoff=0.8)
    if below or close:
        return f"; did you mean {below[0] if below else prefix + close[0]}?"
    model = data.get("model", getattr(cls, "model", None))
    if "model_args" in hints and isinstance(model, str):
        from audionas.models.registry import model_arguments

        if key in model_arguments(model):
            return f"; an argument of model '{model}' goes under model_args ({prefix}model_args.{key}=...)"
    return ""


def _over_default(f: dataclasses.Field, value):
    """A mapping given for a nested config merged over that field's own default (a search's data defaults to
    the paper's 40/40/20 split: `data: {kind: folder}` keeps it), not over the nested class's defaults."""
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if not (isinstance(value, dict) and dataclasses.is_dataclass(default)):
        return value
    merged = to_dict(default)
    _deep_update(merged, value)
    return merged


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass `cls` from a nested dict, checking every key and type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise UserError(f"config field '{prefix}{key}': unknown{_did_you_mean(cls, key, prefix, data)} "
                            f"(expected one of: {', '.join(fields)})")
        kwargs[key] = _coerce(_over_default(fields[key], value), hints[key], f"{prefix}{key}")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def check_config(cfg, cls: type[T]) -> T:
    """`cfg` as a preset would give it, or a UserError unless it is a valid `cls`: a config built or changed
    in Python (dataclasses.replace) is checked as a preset is (types, bounds), before a run starts on it.
    The run uses what this returns: numpy numbers made Python ones, tuples lists (model_args' too) and a
    Genotype or SearchSpace its mapping, as config.yaml holds them (a numpy float cannot be written to
    config.yaml, and a run whose model_args held a Genotype object could not resume)."""
    if type(cfg) is not cls:
        raise UserError(f"expected a {cls.__name__}, got a {type(cfg).__name__} (load one with "
                        f"audionas.config.load_config({cls.__name__}, preset, overrides))")
    checked = from_dict(cls, to_dict(cfg))
    _check_plain(to_dict(checked), "")
    return checked


def _check_plain(value, field: str) -> None:
    """UserError naming the first value under a free-form field (model_args) that YAML cannot save."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{field}[{i}]")
    elif not (value is None or type(value) in (str, int, float, bool)):
        raise UserError(f"config field '{field}': expected a number, string, list or mapping, got "
                        f"{value!r} (a {type(value).__name__}: make it a plain Python value)")


def to_dict(obj) -> dict:
    """A config as plain data, as its config.yaml holds it (what runs compare on resume): nested configs as
    mappings, tuples as lists, and a Genotype or SearchSpace given from Python as its own to_dict()."""
    return _plain_data(obj)


def _plain_data(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if callable(getattr(value, "to_dict", None)):
            return _plain_data(value.to_dict())
        return {f.name: _plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {key: _plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_data(item) for item in value]
    if type(value).__module__ == "numpy" and callable(getattr(value, "item", None)) and not value.shape:
        return value.item()  # a numpy number (`for seed in np.arange(5)`): the Python one
    return copy.deepcopy(value)


def load_config(cls: type[T], preset: str | None = None, overrides: list[str] | None = None,
                extra: dict | None = None, expand: dict[str, Callable[[str], dict]] | None = None,
                replace: tuple[str, ...] = ()) -> T:
    """Defaults <- preset YAML <- `extra` (named CLI flags) <- key=value overrides (see apply_overrides).
    The preset's top-level fields named in `replace` are dropped first: `extra` sets them whole."""
    data: dict = load_preset_dict(preset, cls=cls) if preset else {}
    own = copy.deepcopy(data) if preset and Path(preset).suffix in (".yaml", ".yml") else None
    for key in replace:
        data.pop(key, None)
    if extra:
        _deep_update(data, extra, strict=True)
    apply_overrides(data, overrides or [], expand, cls)
    try:
        cfg = from_dict(cls, data)
    except UserError as e:
        if own is not None and _same_failure(cls, own, str(e)):  # a preset file of one's own: name it
            raise UserError(f"{preset}: {e}") from None
        raise
    from audionas.data import DataConfig, warn_unread

    if isinstance(getattr(cfg, "data", None), DataConfig):
        warn_unread(cfg.data, _overridden("data", overrides or []))
    return cfg


def _overridden(section: str, overrides: list[str]) -> list[str]:
    """The fields of `section` that key=value overrides set (`data.fold=2`, `data={fold: 2}`)."""
    fields = []
    for item in overrides:
        parts, raw = override_key(item).split("."), item.split("=", 1)[1]
        if parts[0] != section:
            continue
        if len(parts) > 1:
            fields.append(parts[1])
        elif isinstance(value := _yaml_or_text(raw), dict):
            fields.extend(map(str, value))
    return fields


def _same_failure(cls: type, data: dict, message: str) -> bool:
    """Whether `data` alone (a preset file's fields) fails with the same `message`: the mistake is in it."""
    try:
        from_dict(cls, data)
    except UserError as e:
        return str(e) == message
    return False


def dump_yaml(obj) -> str:
    """A config dataclass (or dict) as YAML, fields in their declared order."""
    return yaml.safe_dump(to_dict(obj), sort_keys=False)
