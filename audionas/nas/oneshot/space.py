"""One-shot search spaces: per layer a list of candidate blocks (block strings); a chromosome picks one each.

The ASC paper's space (REFERENCE.md section 3) is built in: the 20 blocks of ASC_BASELINE_BLOCKS, each
choosing expansion {3, 6} x kernel {3, 5, 7}, block 17 expansion {3, 6, 8} x kernel {5, 7}; directions,
widths and strides stay those of the baseline. Genes are 0-based (0..5) everywhere, in files and in logs;
gene g of a layer is its g-th choice, ordered expansion-major (e3k3, e3k5, e3k7, e6k3, e6k5, e6k7).

A space file (YAML, or a mapping inline in a preset under `space:`) looks like:

    name: kws-small
    task: kws                      # asc | kws | other: picks the metric
    num_classes: 12
    input_shape: [1, 101, 40]
    preset_hint: kws-oneshot-retrain-cpu  # training preset to retrain a found model from scratch
    model_args: {time_axis: h, stem_channels: 16, head_channels: 64, gru_hidden: 64, gru_layers: 1}
    expansions: [3, 6]              # defaults for compact layers
    kernels: [3, 5, 7]
    layers:
      - ir_e6_k3t_s1x1_c16                                     # compact: expansions x kernels of this block
      - {block: ir_e6_k5f_s2x2_c24, expansions: [3, 6, 8], kernels: [5, 7]}
      - {choices: [ir_e3_k3t_s1x1_c24, ir_e6_k3t_s1x1_c24]}      # explicit

All choices of one layer must share stride and output width, so every layer's input shape is fixed and the
cost of any chromosome is the sum of per-layer table entries (exact, without building the network).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from audionas.errors import UserError
from audionas.models.args import input_shape_arg
from audionas.models.asc import (
    ASC_BASELINE_BLOCKS,
    MBNet,
    block_cost,
    block_inputs,
    check_net_args,
    mbnet_cost,
)
from audionas.models.blocks import BlockSpec, format_block, parse_block
from audionas.utils.jsonio import read_json

TASKS = ("asc", "kws", "other")


def grid_choices(block: str, expansions, kernels) -> list[str]:
    """The block with each (expansion, kernel) pair, expansion-major."""
    spec = parse_block(block)
    return [format_block(BlockSpec(int(e), int(k), spec.direction, spec.stride, spec.out_channels))
            for e in expansions for k in kernels]


@dataclass
class SearchSpace:
    """Layers of candidate blocks plus the fixed stem/head settings of the MBNet they live in."""

    name: str
    layers: list[list[str]]
    task: str = "asc"
    num_classes: int = 9
    input_shape: tuple[int, int, int] = (1, 40, 501)
    model_args: dict[str, Any] = field(default_factory=dict)
    preset_hint: str = "asc-baseline"

    def __post_init__(self):
        self.input_shape = tuple(int(v) for v in self.input_shape)
        check_net_args(self.model_args, lambda k: f"space '{self.name}': model_args.{k}")
        if self.task not in TASKS:
            raise UserError(f"space '{self.name}': task: expected one of {', '.join(TASKS)}, "
                            f"got '{self.task}'")
        if not self.layers:
            raise UserError(f"space '{self.name}': layers: expected at least one layer")
        layers = []
        for i, choices in enumerate(self.layers):
            if not choices:
                raise UserError(f"space '{self.name}': layers[{i}]: expected at least one choice")
            specs = [parse_block(c) for c in choices]
            if len({(s.stride, s.out_channels) for s in specs}) != 1:
                raise UserError(f"space '{self.name}': layers[{i}]: all choices of a layer need the same "
                                f"stride and output channels")
            # Duplicates are looked for in canonical spelling: `ir_e03_...` is `ir_e3_...`.
            canonical = [format_block(s) for s in specs]
            if len(set(canonical)) != len(canonical):
                raise UserError(f"space '{self.name}': layers[{i}]: duplicate choices")
            layers.append(canonical)
        self.layers = layers

    # ---------------------------------------------------------------------------------------- encoding
    @property
    def n_choices(self) -> list[int]:
        return [len(c) for c in self.layers]

    @property
    def size(self) -> int:
        return int(np.prod([float(n) for n in self.n_choices]))

    def check(self, chromosome) -> list[int]:
        """A validated chromosome as a list of ints; anything else is a UserError."""
        # ints only (numpy's too): a hand-edited 1.7, "2" or true is refused, not truncated or converted
        try:
            if not all(isinstance(g, (int, np.integer)) and not isinstance(g, bool) for g in chromosome):
                raise TypeError
            genes = [int(g) for g in chromosome]
        except TypeError:
            raise UserError(f"chromosome {chromosome!r}: expected a list of integers") from None
        if len(genes) != len(self.layers):
            raise UserError(f"chromosome {genes}: expected {len(self.layers)} genes for space '{self.name}'")
        for i, (g, n) in enumerate(zip(genes, self.n_choices)):
            if not 0 <= g < n:
                raise UserError(f"chromosome {genes}: gene {i} = {g} outside 0..{n - 1}")
        return genes

    def decode(self, chromosome) -> list[str]:
        """Chromosome -> block strings (an `arch` for the mbnet model)."""
        return [self.layers[i][g] for i, g in enumerate(self.check(chromosome))]

    def encode(self, arch: list[str]) -> list[int]:
        """Block strings -> chromosome; a block that is not a choice of its layer is a UserError."""
        if len(arch) != len(self.layers):
            raise UserError(f"arch: expected {len(self.layers)} blocks for space '{self.name}', "
                            f"got {len(arch)}")
        out = []
        for i, b in enumerate(arch):
            s = format_block(parse_block(b))
            if s not in self.layers[i]:
                raise UserError(f"arch[{i}] '{b}': not a choice of layer {i} ({', '.join(self.layers[i])})")
            out.append(self.layers[i].index(s))
        return out

    def random(self, rng: np.random.Generator) -> list[int]:
        return [int(rng.integers(0, n)) for n in self.n_choices]

    # -------------------------------------------------------------------------------------------- cost
    @cached_property
    def layer_inputs(self) -> list[tuple[int, tuple[int, int]]]:
        """(in_channels, (freq, time)) of every layer: the same for every choice."""
        margs = self.model_args
        layout, _ = block_inputs(self.layers_first, self.input_shape, margs.get("stem_channels", 32),
                                 margs.get("time_axis", "w"))
        return layout

    @property
    def layers_first(self) -> list[str]:
        return [c[0] for c in self.layers]

    @cached_property
    def cost_table(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        """(params[l][g], macs[l][g], fixed params, fixed MACs): block costs and the stem + head."""
        n = max(self.n_choices)
        params = np.zeros((len(self.layers), n), dtype=np.int64)
        macs = np.zeros((len(self.layers), n), dtype=np.int64)
        for l, ((cin, hw), choices) in enumerate(zip(self.layer_inputs, self.layers)):
            for g, b in enumerate(choices):
                params[l, g], macs[l, g], _ = block_cost(cin, b, hw)
        p0, m0 = mbnet_cost(self.layers_first, self.num_classes, self.input_shape, **self.model_args)
        idx = np.arange(len(self.layers))
        return params, macs, int(p0 - params[idx, 0].sum()), int(m0 - macs[idx, 0].sum())

    def cost(self, chromosome) -> tuple[int, int]:
        """Exact (params, MACs per sample) of the chromosome's network, from the lookup table."""
        genes = self.check(chromosome)
        params, macs, p0, m0 = self.cost_table
        idx = np.arange(len(genes))
        return int(p0 + params[idx, genes].sum()), int(m0 + macs[idx, genes].sum())

    def cost_range(self, cost: str = "macs") -> tuple[int, int]:
        """Smallest and largest `cost` ('macs' or 'params') in the space (per-layer min / max)."""
        params, macs, p0, m0 = self.cost_table
        table, fixed = (macs, m0) if cost == "macs" else (params, p0)
        lo = sum(int(table[l, :n].min()) for l, n in enumerate(self.n_choices))
        hi = sum(int(table[l, :n].max()) for l, n in enumerate(self.n_choices))
        return fixed + lo, fixed + hi

    # ---------------------------------------------------------------------------------------- building
    def model_spec(self, chromosome) -> dict:
        """What `audionas train` needs to build the chromosome's network from scratch."""
        return {"model": "mbnet", "model_args": {"arch": self.decode(chromosome), **self.model_args},
                "preset_hint": self.preset_hint, "task": self.task, "num_classes": self.num_classes,
                "input_shape": list(self.input_shape)}

    def build(self, chromosome) -> MBNet:
        return MBNet(self.decode(chromosome), self.num_classes, self.input_shape, **self.model_args)

    def to_dict(self) -> dict:
        return {"name": self.name, "task": self.task, "num_classes": self.num_classes,
                "input_shape": list(self.input_shape), "preset_hint": self.preset_hint,
                "model_args": dict(self.model_args), "layers": [{"choices": list(c)} for c in self.layers]}


# ----------------------------------------------------------------------------------------------- loading
def asc_space() -> SearchSpace:
    """The ASC paper's space: 20 layers x 6 choices over the baseline's directions, widths and strides."""
    layers = []
    for i, b in enumerate(ASC_BASELINE_BLOCKS):
        if i == 16:  # block 17, the large (2, 4) downsampling
            layers.append(grid_choices(b, [3, 6, 8], [5, 7]))
        else:
            layers.append(grid_choices(b, [3, 6], [3, 5, 7]))
    return SearchSpace("asc", layers, task="asc", num_classes=9, input_shape=(1, 40, 501),
                       preset_hint="asc-baseline")


BUILTIN_SPACES = {"asc": asc_space}


def _int_list(v, where: str, odd: bool = False) -> list[int]:
    """`v` checked as a non-empty list of positive (`odd`: odd positive) integers, else a UserError naming
    `where` (the field, not the block it would make)."""
    kind = "odd positive" if odd else "positive"
    if not isinstance(v, list) or not v or any(isinstance(x, bool) or not isinstance(x, int) or x < 1
                                               or (odd and x % 2 == 0) for x in v):
        raise UserError(f"{where}: expected a non-empty list of {kind} integers, got {v!r}")
    return v


def space_from_dict(d: dict, where: str = "space") -> SearchSpace:
    """A SearchSpace from a parsed YAML mapping; every mistake is a UserError naming the field."""
    if not isinstance(d, dict):
        raise UserError(f"{where}: expected a mapping with 'layers'")
    known = {"name", "task", "num_classes", "input_shape", "preset_hint", "model_args", "expansions",
             "kernels", "layers"}
    for k in d:
        if k not in known:
            raise UserError(f"{where}.{k}: unknown field (expected one of: {', '.join(sorted(known))})")
    exps = _int_list(d.get("expansions", [3, 6]), f"{where}.expansions")
    kers = _int_list(d.get("kernels", [3, 5, 7]), f"{where}.kernels", odd=True)
    raw = d.get("layers")
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{where}.layers: expected a non-empty list of layers")
    layers = []
    for i, item in enumerate(raw):
        w = f"{where}.layers[{i}]"
        try:
            if isinstance(item, str):
                layers.append(grid_choices(item, exps, kers))
            elif isinstance(item, dict) and "choices" in item:
                extra = set(item) - {"choices"}
                if extra:
                    raise UserError(f"unknown field '{sorted(extra)[0]}' next to choices")
                ch = item["choices"]
                if not isinstance(ch, list) or not ch or not all(isinstance(c, str) for c in ch):
                    raise UserError("choices: expected a non-empty list of block strings")
                layers.append([format_block(parse_block(c)) for c in ch])
            elif isinstance(item, dict) and "block" in item:
                extra = set(item) - {"block", "expansions", "kernels"}
                if extra:
                    raise UserError(f"unknown field '{sorted(extra)[0]}' (expected block, expansions, "
                                    f"kernels)")
                layers.append(grid_choices(str(item["block"]),
                                           _int_list(item.get("expansions", exps), "expansions"),
                                           _int_list(item.get("kernels", kers), "kernels", odd=True)))
            else:
                raise UserError("expected a block string, {choices: [...]} or {block: ..., "
                                "expansions: [...], kernels: [...]}")
        except UserError as e:
            raise UserError(f"{w}: {e}") from None
    shape = input_shape_arg(d.get("input_shape", [1, 40, 501]), f"{where}.input_shape")
    nc = d.get("num_classes", 9)
    if isinstance(nc, bool) or not isinstance(nc, int) or nc < 1:
        raise UserError(f"{where}.num_classes: expected a positive integer, got {nc!r}")
    margs = d.get("model_args", {}) or {}
    if not isinstance(margs, dict):
        raise UserError(f"{where}.model_args: expected a mapping")
    check_net_args(margs, lambda k: f"{where}.model_args.{k}")
    try:
        space = SearchSpace(str(d.get("name", "custom")), layers, task=str(d.get("task", "other")),
                            num_classes=nc, input_shape=tuple(shape), model_args=dict(margs),
                            preset_hint=str(d.get("preset_hint", "")))
        space.cost_table  # noqa: B018  (builds every block cost: catches shapes that do not fit the input)
    except UserError as e:
        raise UserError(f"{where}: {e}") from None
    except OverflowError:  # the cost table is int64: a size such as 1e20 classes or channels overflows it
        raise UserError(f"{where}: its params or MACs exceed 64-bit integers; expected smaller num_classes, "
                        f"input_shape, block channels, expansions or model_args") from None
    return space


def load_space(spec: str | dict | SearchSpace) -> SearchSpace:
    """A built-in name ('asc'), a YAML file path, an inline mapping, or a SearchSpace."""
    if isinstance(spec, SearchSpace):
        return spec
    if isinstance(spec, dict):
        return space_from_dict(spec)
    if isinstance(spec, str) and spec in BUILTIN_SPACES:
        return BUILTIN_SPACES[spec]()
    return space_from_dict(space_mapping(spec), where=spec)


def space_mapping(spec: str) -> dict:
    """The mapping behind a built-in space name or a space YAML file (to edit it: `space.num_classes=3`)."""
    if isinstance(spec, str) and spec in BUILTIN_SPACES:
        return BUILTIN_SPACES[spec]().to_dict()
    if isinstance(spec, str) and spec.endswith((".yaml", ".yml")):
        from audionas.config import read_yaml

        return read_yaml(Path(spec).expanduser())
    raise UserError(f"space {spec!r}: expected a built-in space ({', '.join(BUILTIN_SPACES)}), a YAML file "
                    f"or a mapping")


# -------------------------------------------------------------------------------------------- chromosomes
def _same_arch(space: SearchSpace, arch, chrom: list[int]) -> bool:
    """Whether block strings `arch` are the chromosome's (compared parsed, so spelling variants agree)."""
    if not isinstance(arch, list) or not all(isinstance(b, str) for b in arch):
        return False
    try:
        return space.encode(arch) == list(chrom)
    except UserError:
        return False


def resolve_chromosome(ref: str | os.PathLike, what: str = "--chromosome") -> dict:
    """'SEARCH/pareto.json#k' -> model spec of the k-th (0-based) front member, the front sorted by the
    search's cost (MACs, or params / latency_ms for `--cost params` / `--cost latency_ms`).

    `what` names the argument in errors (`--chromosome` for train, `MODEL` for profile).

    Returns `SearchSpace.model_spec` (model="mbnet", model_args={"arch": [...], **mbnet kwargs},
    preset_hint, task, num_classes, input_shape) plus chromosome=[...]. `SEARCH` alone (a folder) means
    SEARCH/pareto.json. Build the member with `create_model(spec["model"], num_classes=spec["num_classes"],
    input_shape=spec["input_shape"], **spec["model_args"])`.
    """
    if isinstance(ref, os.PathLike):  # Path("SEARCH/pareto.json#0") from Python
        ref = os.fspath(ref)
    if not isinstance(ref, str) or "#" not in ref:
        raise UserError(f"{what} {ref!r}: expected SEARCH/pareto.json#k (k = 0-based front index)")
    path_s, k_s = ref.rsplit("#", 1)
    path = Path(path_s)
    if path.is_dir():
        path = path / "pareto.json"
    if not re.fullmatch(r"-?[0-9]+", k_s):  # int() also reads '1_0' (10), ' 0' and '٣'
        raise UserError(f"{what} {ref}: '#{k_s}' is not an integer index")
    k = int(k_s)
    if not path.is_file():
        raise UserError(f"{path}: file not found (expected a search's pareto.json)")
    data = read_json(path, "a search's pareto.json")
    front = data.get("front")
    if not isinstance(front, list):
        raise UserError(f"{path}: field 'front': expected a list of front members (not a pareto.json written "
                        f"by audionas search)")
    space = space_from_dict(data.get("space"), where=f"{path}: space")
    if not front:  # a search writes at least one member: an edited file
        raise UserError(f"{path}: field 'front': empty, expected the search's front members")
    if not 0 <= k < len(front):
        raise UserError(f"{what} {ref}: index {k} outside 0..{len(front) - 1} "
                        f"(front size {len(front)})")
    if not isinstance(front[k], dict) or "chromosome" not in front[k]:
        raise UserError(f"{path}: field 'front[{k}].chromosome': expected an object with a 'chromosome' list")
    try:
        chrom = space.check(front[k]["chromosome"])
    except UserError as e:
        raise UserError(f"{path}: field 'front[{k}].chromosome': {e}") from None
    spec = space.model_spec(chrom)
    # `arch` is written beside the chromosome for people to read; a hand edit of one but not the other
    # would otherwise train a network the reader did not pick
    arch = front[k].get("arch")
    if arch is not None and not _same_arch(space, arch, chrom):
        raise UserError(f"{path}: field 'front[{k}].arch': disagrees with its chromosome {chrom} (which "
                        f"decodes to {spec['model_args']['arch']}); edit both or drop 'arch'")
    spec["chromosome"] = chrom
    return spec
