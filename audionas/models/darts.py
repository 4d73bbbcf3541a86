"""`darts`: the DARTS evaluation network from a genotype (built-in name, JSON file, or dict)."""

from __future__ import annotations

from audionas.errors import UserError
from audionas.models.registry import register_model


@register_model("darts")
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
    from audionas.nas.darts.genotype import get_genotype
    from audionas.nas.darts.model import DartsNetwork

    if int(channels) < 1 or int(cells) < 1:
        raise UserError(f"model 'darts': cells and channels must be positive, got {cells} and {channels}")
    return DartsNetwork(
        get_genotype(genotype),
        C=int(channels),
        num_classes=num_classes,
        cells=int(cells),
        in_channels=input_shape[0],
        auxiliary=bool(auxiliary),
        drop_path_prob=float(drop_path_prob),
        layout=layout,
    )
