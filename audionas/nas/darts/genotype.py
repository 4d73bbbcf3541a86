"""Genotype: the discrete cell found by DARTS, its derivation from alphas, and JSON save/load (no eval)."""

from __future__ import annotations

import ast
import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from audionas.errors import UserError, first_line
from audionas.nas.darts.operations import OPS
from audionas.plugins import IMPORT_HINT
from audionas.utils.atomic import write_json_atomic
from audionas.utils.jsonio import is_integer, read_json
from audionas.utils.text import shown

Gene = list[tuple[str, int]]  # a cell: (op name, input state) pairs, two per intermediate node
# Choice: a bound far above the papers' 4 nodes that keeps a typo (a search's `steps`) or an edited genotype
# from building a cell of millions of edges: 16 nodes make 152 mixed edges per searched cell.
MAX_STEPS = 16
_KEYS = ("normal", "normal_concat", "reduce", "reduce_concat")  # a genotype's fields, as a file holds them
_TEXT = re.compile(r"\s*Genotype\s*\(")
_MAX_RANGE = 64  # a concat lists a cell's nodes: a range longer than this is a typo, not a cell


def is_genotype_text(spec: str) -> bool:
    """Whether `spec` is a Genotype's text as DARTS prints it (`Genotype(normal=[...], ...)`)."""
    return bool(_TEXT.match(spec))


@dataclass(frozen=True)
class Genotype:
    """(op name, input state) pairs, two per intermediate node, and the states concatenated as output."""

    normal: Gene
    normal_concat: list[int] = field(default_factory=lambda: [2, 3, 4, 5])
    reduce: Gene = field(default_factory=list)
    reduce_concat: list[int] = field(default_factory=lambda: [2, 3, 4, 5])

    def normal_skips(self) -> int:
        """skip_connect edges of the normal cell (DARTS's known collapse is toward these)."""
        return sum(op == "skip_connect" for op, _ in self.normal)

    def to_dict(self) -> dict:
        return {
            "normal": [[op, int(i)] for op, i in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [[op, int(i)] for op, i in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_dict(cls, d: dict, where: str = "genotype") -> Genotype:
        """The genotype a genotype.json (or a run config's inline one) holds, every key, op and input index
        checked: a UserError naming `where` and the entry otherwise."""
        if not isinstance(d, dict):
            raise UserError(
                f"{where}: expected a JSON object with normal, normal_concat, reduce, reduce_concat"
            )
        missing = [k for k in _KEYS if k not in d]
        # a run's config stores its genotype with `source` and `ops` (provenance, see models/darts.py)
        unknown = sorted(map(str, set(d) - {*_KEYS, "source", "ops"}))
        if missing:
            # a one-shot search's pareto.json (or a front member of it) is the usual mix-up; else a key
            # missing beside an unknown one is most often misspelt: both are named
            front = "front" in d or "chromosome" in d
            hint = ("; a one-shot search's front: train --chromosome FILE#k" if front
                    else f" (and unknown key(s) {', '.join(unknown)}: misspelt?)" if unknown else "")
            raise UserError(f"{where}: missing key(s) {', '.join(missing)}{hint}")
        if unknown:
            raise UserError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; expected normal, "
                            f"normal_concat, reduce, reduce_concat")
        genes = {}
        for kind in ("normal", "reduce"):
            gene = d[kind]
            if not isinstance(gene, list) or not gene or len(gene) % 2:
                raise UserError(
                    f"{where}: '{kind}' must be a non-empty list of [op, input] pairs, two per node"
                )
            if len(gene) > 2 * MAX_STEPS:
                raise UserError(f"{where}: '{kind}' has {len(gene) // 2:,} nodes, expected at most "
                                f"{MAX_STEPS} (two [op, input] pairs per node)")
            out = []
            for n, item in enumerate(gene):
                if (
                    not isinstance(item, (list, tuple))
                    or len(item) != 2
                    or not isinstance(item[0], str)
                    or not isinstance(item[1], int)
                    or isinstance(item[1], bool)
                ):
                    raise UserError(f"{where}: '{kind}'[{n}] must be [op name, input index]")
                op, idx = item
                if op not in OPS:
                    raise UserError(
                        f"{where}: '{kind}'[{n}]: unknown op '{op}' (known: {', '.join(sorted(OPS))}; "
                        f"{IMPORT_HINT})"
                    )
                if not 0 <= idx < 2 + n // 2:
                    raise UserError(f"{where}: '{kind}'[{n}]: input {idx} must be in 0..{1 + n // 2}")
                out.append((op, idx))
            genes[kind] = out
        concats = {}
        for kind in ("normal", "reduce"):
            c = d[f"{kind}_concat"]
            n_states = 2 + len(genes[kind]) // 2
            # Intermediate nodes only (2..): the inputs 0 and 1 have another resolution in a reduce cell.
            if (
                not isinstance(c, list)
                or not c
                or not all(isinstance(i, int) and not isinstance(i, bool) and 2 <= i < n_states for i in c)
                or len(set(c)) != len(c)
            ):
                raise UserError(
                    f"{where}: '{kind}_concat' must be a non-empty list of distinct node indices in "
                    f"2..{n_states - 1}, got {shown(c)}"
                )
            concats[kind] = list(c)
        return cls(genes["normal"], concats["normal"], genes["reduce"], concats["reduce"])

    def save(self, path: str | Path) -> None:
        write_json_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        """A genotype.json, or a file holding a Genotype's text as DARTS prints it (a search log's line)."""
        path = Path(path)
        if path.is_dir() and (path / "genotype.json").is_file():  # a DARTS search run
            raise UserError(f"{path}: is a folder (expected a JSON genotype file such as "
                            f"{path / 'genotype.json'})")
        with contextlib.suppress(OSError, UnicodeDecodeError):  # read_json names what is wrong
            with open(path, encoding="utf-8") as f:
                head = f.read(64)
            if is_genotype_text(head):
                return cls.from_dict(_printed_fields(path.read_text(encoding="utf-8"), str(path)),
                                     where=str(path))
        return cls.from_dict(read_json(path, "a JSON genotype file", kind=None), where=str(path))


# DARTS paper genotypes (quark0/darts cnn/genotypes.py): first order (V1) and second order (V2).
DARTS_V1 = Genotype(
    normal=[
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("skip_connect", 2),
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("avg_pool_3x3", 0),
    ],
    reduce_concat=[2, 3, 4, 5],
)
DARTS_V2 = Genotype(
    normal=[
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ],
    normal_concat=[2, 3, 4, 5],
    reduce=[
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ],
    reduce_concat=[2, 3, 4, 5],
)
# The cell skeleton with every op removed (parameter-free zeros): preprocessing, stem and classifier only.
EMPTY = Genotype(normal=[("none", 0), ("none", 1)] * 4, reduce=[("none", 0), ("none", 1)] * 4)

GENOTYPES: dict[str, Genotype] = {
    "DARTS_V1": DARTS_V1,
    "DARTS_V2": DARTS_V2,
    "DARTS": DARTS_V2,
    "EMPTY": EMPTY,
}


def reaches_output(genotype: Genotype, reductions: list[bool]) -> bool:
    """Whether some path of non-`none` ops leads from the stem through cells of these kinds (True =
    reduction) to the last cell's output. If none does (a hand-written cell of `none` ops), the classifier
    reads zeros: the network's output is a constant and it cannot learn."""
    s0 = s1 = True
    for reduction in reductions:
        gene, concat = ((genotype.reduce, genotype.reduce_concat) if reduction
                        else (genotype.normal, genotype.normal_concat))
        states = [s0, s1]
        for node in range(0, len(gene), 2):
            states.append(any(op != "none" and states[idx] for op, idx in gene[node:node + 2]))
        s0, s1 = s1, any(states[i] for i in concat)
    return s1


def get_genotype(spec: str | Path | dict | Genotype) -> Genotype:
    """A built-in name (DARTS_V2, ...), a JSON file path, a dict, a Genotype, or a Genotype's text as DARTS
    prints it (`Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=range(2, 6), ...)`), each checked
    as a genotype file is."""
    if isinstance(spec, Genotype):
        return Genotype.from_dict({k: _lists(getattr(spec, k)) for k in _KEYS}, where="the Genotype given")
    if isinstance(spec, dict):
        return Genotype.from_dict({k: _lists(v) if k in _KEYS else v for k, v in spec.items()})
    name = str(spec)
    if name in GENOTYPES:
        return GENOTYPES[name]
    if is_genotype_text(name):
        return Genotype.from_dict(_printed_fields(name), where="the genotype text given")
    path = Path(name).expanduser()
    with contextlib.suppress(OSError):  # a name too long for a file name is none
        if path.suffix.lower() == ".json" or path.exists():
            return Genotype.load(path)
    raise UserError(f"genotype '{name[:80]}{'...' if len(name) > 80 else ''}': neither a built-in "
                    f"({', '.join(GENOTYPES)}), a JSON file, nor a Genotype(...) text as DARTS prints it")


def _printed_fields(text: str, where: str = "the genotype text given") -> dict:
    """The fields of `Genotype(normal=[...], normal_concat=range(2, 6), ...)`, read as literals (never run:
    ast.literal_eval); `range(a, b)`, as DARTS prints a concat, is the list it names."""
    text = text.strip()
    try:
        call = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError) as e:  # ValueError: a NUL byte, a too long integer
        at = (f" at line {e.lineno}, column {e.offset}" if isinstance(e, SyntaxError) and e.lineno
              and e.offset else "")
        why = e.msg if isinstance(e, SyntaxError) else first_line(e)
        why = why if len(why) <= 120 else why[:117] + "..."
        raise UserError(f"{where}: not Genotype(...) text ({why}{at})") from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"
            and len(call.args) <= len(_KEYS) and all(k.arg for k in call.keywords)):
        raise UserError(f"{where}: expected Genotype(normal=[...], normal_concat=[...], reduce=[...], "
                        f"reduce_concat=[...])")
    named = [k.arg for k in call.keywords]
    given = [*_KEYS[:len(call.args)], *named]
    if unknown := [k for k in named if k not in _KEYS]:
        raise UserError(f"{where}: unknown field(s) {', '.join(unknown)} (expected {', '.join(_KEYS)})")
    if twice := sorted({k for k in given if given.count(k) > 1}):
        raise UserError(f"{where}: field(s) {', '.join(twice)} given twice")
    fields = {**dict(zip(_KEYS, call.args)), **{k.arg: k.value for k in call.keywords}}
    out = {}
    for key, node in fields.items():
        try:
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
                    and not node.keywords):
                nodes = range(*(ast.literal_eval(a) for a in node.args))
                if len(nodes) > _MAX_RANGE:
                    raise UserError(f"{where}: field '{key}': {ast.get_source_segment(text, node)} names "
                                    f"{len(nodes)} nodes; a cell has a few (at most {_MAX_RANGE})")
                out[key] = list(nodes)
            else:
                out[key] = _lists(ast.literal_eval(node))
        except (ValueError, TypeError, SyntaxError, OverflowError, MemoryError, RecursionError):
            segment = ast.get_source_segment(text, node) or ""
            raise UserError(f"{where}: field '{key}': expected a literal list, got "
                            f"{shown(segment)}") from None
    return out


def _lists(value):
    """Tuples and ranges made lists and numpy integers Python ones, as a genotype file holds them."""
    if isinstance(value, (list, tuple, range)):
        return [_lists(v) for v in value]
    if is_integer(value):
        return int(value)
    return value


def derive_gene(weights: torch.Tensor, primitives: list[str], steps: int = 4) -> list[tuple[str, int]]:
    """DARTS `_parse`: per node, the two inputs with the largest non-`none` weight, each with its best op.

    Ties resolve as in quark0/darts: a stable sort keeps the lower input index; the first best op wins.
    """
    W = weights.detach().cpu().double().tolist()
    none = primitives.index("none") if "none" in primitives else -1
    gene: list[tuple[str, int]] = []
    start, n = 0, 2
    for _ in range(steps):
        rows = W[start : start + n]
        edges = sorted(range(n), key=lambda j: -max(w for k, w in enumerate(rows[j]) if k != none))[:2]
        for j in edges:
            k_best = None
            for k, w in enumerate(rows[j]):
                if k != none and (k_best is None or w > rows[j][k_best]):
                    k_best = k
            gene.append((primitives[k_best], j))
        start += n
        n += 1
    return gene


def derive_genotype(
    w_normal: torch.Tensor, w_reduce: torch.Tensor, primitives: list[str], steps: int = 4, multiplier: int = 4
) -> Genotype:
    """Genotype from the (softmaxed) alphas of the normal and reduction cells."""
    concat = list(range(2 + steps - multiplier, steps + 2))
    return Genotype(
        derive_gene(w_normal, primitives, steps), concat, derive_gene(w_reduce, primitives, steps), concat
    )
