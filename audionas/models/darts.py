"""`darts`: the DARTS evaluation network from a genotype (built-in name, JSON file, dict, or the text of a
Genotype as DARTS prints it).

A dict may carry `source` (the file it was read from; provenance only, ignored when building)."""

from __future__ import annotations

import os

from audionas.errors import UserError, warn
from audionas.models.args import arg_where, boolean, positive_int, real_in
from audionas.models.registry import register_model


def freeze_genotype(model_args: dict) -> dict:
    """A genotype given as a JSON file is stored inline, with the file name kept as `source` and, when the
    file is in a DARTS search run, that search's op set as `ops` (a label: NAS1 / NAS2 in reports) and,
    unless model_args names one, its cell layout when not the default (found cells stack by the same rule).
    An N/R string for another cell count (a small search scaled up) is no rule: the default, with a warning.
    """
    from pathlib import Path

    from audionas.config import read_yaml
    from audionas.nas.darts.genotype import GENOTYPES, get_genotype, is_genotype_text

    genotype = model_args.get("genotype")
    if "genotype" in model_args and genotype is None:
        raise UserError("model 'darts': argument 'genotype' is required (this preset names no cell): pass "
                        "--genotype RUN/genotype.json or model_args.genotype=DARTS_V2 explicitly")
    if isinstance(genotype, str) and is_genotype_text(genotype):  # the text DARTS prints
        model_args["genotype"] = get_genotype(genotype).to_dict()
    elif isinstance(genotype, str) and genotype not in GENOTYPES:
        genotype = os.path.expanduser(genotype)  # `~` as in data.root (other paths stay as given)
        frozen = {**get_genotype(genotype).to_dict(), "source": genotype}
        search_cfg = Path(genotype).parent / "config.yaml"
        search = read_yaml(search_cfg) if search_cfg.is_file() else {}
        if isinstance(ops := search.get("ops"), (str, list)):
            frozen["ops"] = ops
        model_args["genotype"] = frozen
        layout = search.get("layout")
        if "layout" not in model_args and isinstance(layout, str) and layout != "darts":
            cells = model_args.get("cells", 6)
            if layout == "nnr" or not isinstance(cells, int) or len(layout) == cells:
                model_args["layout"] = layout
            else:
                warn(f"{search_cfg}: the search's layout '{layout}' is for {len(layout)} cells; the "
                     f"{cells} cells retrained here use the default layout (reductions at L//3 and "
                     f"2L//3); set model_args.layout=nnr or {cells} N/R letters for another")
    return model_args


MAX_CELLS, MAX_CHANNELS = 100, 1024


def _darts_args(channels, cells, auxiliary, drop_path_prob, layout, **_) -> tuple[int, int, bool, float]:
    """The darts factory's checked (channels, cells, auxiliary, drop_path_prob); `layout` checked too."""
    from audionas.nas.darts.layout import reduction_cells

    # Bounds far above the papers' (DARTS: 20 cells, C=36 on CIFAR; KWS: 12 cells, C=36): a typo, not a net.
    channels = positive_int(channels, arg_where("darts", "channels"), MAX_CHANNELS)
    cells = positive_int(cells, arg_where("darts", "cells"), MAX_CELLS)
    auxiliary = boolean(auxiliary, arg_where("darts", "auxiliary"))
    drop_path_prob = real_in(drop_path_prob, arg_where("darts", "drop_path_prob"), 0.0, 1.0, hi_open=True)
    if not isinstance(layout, str):
        raise UserError(f"{arg_where('darts', 'layout')}: expected darts, nnr or a string of N/R letters, "
                        f"got {layout!r}")
    reduction_cells(cells, layout)
    return channels, cells, auxiliary, drop_path_prob


@register_model("darts", freeze=freeze_genotype, check=lambda args: _darts_args(**args))
def darts(
    num_classes: int = 12,
    input_shape: tuple[int, int, int] = (1, 101, 40),
    genotype="DARTS_V2",
    cells: int = 6,
    channels: int = 16,
    auxiliary: bool = False,
    drop_path_prob: float = 0.2,
    layout: str = "darts",
):
    """A network of `cells` cells of a DARTS genotype (a name, a genotype.json, or a mapping), `channels`
    wide at its first cell: the KWS paper's scaling of a found cell."""
    from audionas.nas.darts.genotype import get_genotype, reaches_output
    from audionas.nas.darts.layout import reduction_cells
    from audionas.nas.darts.model import DartsNetwork

    channels, cells, auxiliary, drop_path_prob = _darts_args(channels, cells, auxiliary, drop_path_prob,
                                                             layout)
    cell = get_genotype(genotype)
    if not reaches_output(cell, reduction_cells(cells, layout)):
        name = (genotype if isinstance(genotype, str)
                else isinstance(genotype, dict) and genotype.get("source"))
        warn(f"model 'darts': {f'genotype {name}' if name else 'the genotype'}: every path to the classifier "
             f"passes a 'none' op, so the network's output is a constant: it cannot learn")
    return DartsNetwork(
        cell,
        C=channels,
        num_classes=num_classes,
        cells=cells,
        in_channels=input_shape[0],
        auxiliary=auxiliary,
        drop_path_prob=drop_path_prob,
        layout=layout,
    )
