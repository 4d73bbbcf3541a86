"""The ASC paper's networks: MBNet (stem + inverted bottlenecks + GRU head), its baseline, BaselineVGG.

Li et al., "Neural Architecture Search on Acoustic Scene Classification": a feature extractor (stem conv,
20 MobileNetV2 bottlenecks with unidirectional 1xk / kx1 depthwise kernels, a global frequency conv), a
2-layer GRU over time and two FC layers. Figure 1 is missing; the baseline is REFERENCE.md section 3's
reconstruction (ASC_BASELINE_BLOCKS). Tensors inside are (N, C, freq, time).

Cost convention (same as audionas/profile.py): params = trainable parameters (BN affine included);
MACs = multiply-adds (never 2 x MACs) of conv, linear and GRU weights only; a GRU layer costs
T * 3H(in + H). `mbnet_cost` / `vgg_cost` give the exact figures of the built models without building them.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from audionas.errors import UserError
from audionas.models.args import arg_where, positive_int
from audionas.models.blocks import (
    BlockSpec,
    InvertedResidual,
    as_spec,
    block_cost,
    conv_bn_act,
    conv_cost,
    format_block,
    out_hw,
    parse_block,
)
from audionas.models.registry import register_model

__all__ = [
    "ASC_BASELINE_BLOCKS", "BlockSpec", "InvertedResidual", "parse_block", "format_block", "block_cost",
    "GRUHead", "MBNet", "BaselineVGG", "mbnet_cost", "vgg_cost", "head_cost", "block_inputs",
    "VGG16_CONFIG", "VGG_HEAD_CHANNELS",
]


def _baseline_blocks() -> list[str]:
    # (out_channels, stride of the first block, number of blocks) per stage; REFERENCE.md section 3 table.
    stages = [(24, (1, 1), 2), (32, (2, 2), 3), (48, (2, 1), 4), (64, (1, 2), 4), (128, (1, 1), 3),
              (160, (2, 4), 3), (256, (1, 1), 1)]
    blocks = []
    for c, s, n in stages:
        for i in range(n):
            idx = len(blocks) + 1  # 1-based block number: odd blocks 1xk (time), even blocks kx1 (freq)
            k = 5 if idx == 17 else 3  # block 17, the large (2, 4) downsampling, uses k = 5
            stride = s if i == 0 else (1, 1)
            blocks.append(format_block(BlockSpec(6, k, "t" if idx % 2 else "f", stride, c)))
    return blocks


# The paper's baseline (Figure 1 reconstructed, REFERENCE.md section 3): 40x501 -> 20x251 -> 10x251 ->
# 10x126 -> 5x32, expansion 6 everywhere.
ASC_BASELINE_BLOCKS: list[str] = _baseline_blocks()


def _check_shape(input_shape, time_axis: str) -> tuple[int, int, int]:
    if time_axis not in ("w", "h"):
        raise UserError(f"time_axis '{time_axis}': expected 'w' (input C x freq x time) or 'h' "
                        f"(C x time x freq)")
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UserError(f"input_shape {input_shape!r}: expected three positive integers (C, H, W)")
    return shape


def _freq_time(input_shape: tuple[int, int, int], time_axis: str) -> tuple[int, int]:
    _, h, w = input_shape
    return (h, w) if time_axis == "w" else (w, h)


class GRUHead(nn.Module):
    """Global frequency conv (F x 1, + BN + ReLU6) -> GRU over time -> last step -> FC + ReLU -> FC.

    Input (N, in_channels, freq_size, T); output logits (N, num_classes). `pool="mean"` averages the GRU
    outputs over time instead of taking the last step (same cost; used by the KWS search spaces).
    """

    def __init__(self, in_channels: int, freq_size: int, num_classes: int, head_channels: int = 256,
                 gru_hidden: int = 256, gru_layers: int = 2, fc_hidden: int = 256, pool: str = "last"):
        super().__init__()
        if pool not in POOLS:
            raise UserError(f"pool '{pool}': expected 'last' (the GRU's last step) or 'mean' (over time)")
        self.freq_size = freq_size
        self.pool = pool
        # Choice: the global frequency conv is conv + BN + ReLU6 like every other conv of the network.
        self.freq_conv = conv_bn_act(in_channels, head_channels, (freq_size, 1))
        self.gru = nn.GRU(head_channels, gru_hidden, gru_layers, batch_first=True)
        self.fc1 = nn.Linear(gru_hidden, fc_hidden)
        self.act = nn.ReLU(inplace=True)  # Choice: ReLU between the two FC layers (the paper is silent).
        self.fc2 = nn.Linear(fc_hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] != self.freq_size:
            raise UserError(f"GRUHead: input has {x.shape[2]} frequency rows, the head was built for "
                            f"{self.freq_size} (check the model's input_shape)")
        x = self.freq_conv(x).flatten(2).transpose(1, 2)  # (N, T, head_channels)
        out, _ = self.gru(x)
        # Choice: the GRU output at the last time step feeds the FC layers (REFERENCE.md section 3).
        out = out[:, -1] if self.pool == "last" else out.mean(1)
        return self.fc2(self.act(self.fc1(out)))


def head_cost(in_channels: int, freq_size: int, time_size: int, num_classes: int, head_channels: int = 256,
              gru_hidden: int = 256, gru_layers: int = 2, fc_hidden: int = 256) -> tuple[int, int]:
    """Exact (params, MACs) of GRUHead on an (in_channels, freq_size, time_size) map."""
    params, macs = conv_cost(in_channels, head_channels, (freq_size, 1), (1, time_size))
    for layer in range(gru_layers):
        inp = head_channels if layer == 0 else gru_hidden
        params += 3 * gru_hidden * (inp + gru_hidden) + 6 * gru_hidden  # weights + b_ih + b_hh
        macs += time_size * 3 * gru_hidden * (inp + gru_hidden)
    params += gru_hidden * fc_hidden + fc_hidden + fc_hidden * num_classes + num_classes
    macs += gru_hidden * fc_hidden + fc_hidden * num_classes
    return params, macs


def init_weights(model: nn.Module) -> None:
    """The MBNet initialisation, shared by the supernet's blocks."""
    # Choice: torchvision MobileNetV2 initialisation of convs and BNs; GRU and the two FC layers keep
    # PyTorch's defaults (torchvision's N(0, 0.01) for both FCs stalled training: 45% vs 21% test accuracy
    # after 3 epochs on the synthetic keyword set, same net and seed).
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def block_inputs(blocks: list[str | BlockSpec], input_shape=(1, 40, 501), stem_channels: int = 32,
                 time_axis: str = "w") -> tuple[list[tuple[int, tuple[int, int]]], tuple[int, int, int]]:
    """([(in_channels, (freq, time)) of each block], (channels, freq, time) after the last block)."""
    _, f, t = (input_shape[0], *_freq_time(_check_shape(input_shape, time_axis), time_axis))
    c, hw, layout = stem_channels, (f, t), []
    for b in blocks:
        spec = as_spec(b)
        layout.append((c, hw))
        c, hw = spec.out_channels, out_hw(hw, spec.stride)
    return layout, (c, *hw)


def freq_time_input(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x as (N, C, freq, time) for `net` (time_axis "h" inputs are transposed), frequency size checked; the
    error shows the input as given, beside the expected (C, H, W)."""
    given = tuple(x.shape)
    if net.time_axis == "h" and x.dim() == 4:
        x = x.transpose(2, 3)
    if x.dim() != 4 or x.shape[2] != net.freq_bins:
        raise UserError(f"{type(net).__name__}: input {given} does not match input_shape "
                        f"{net.input_shape} (time_axis '{net.time_axis}')")
    return x


class MBNet(nn.Module):
    """Stem 3x3 conv + inverted bottlenecks (block strings) + GRUHead; input (N, C, H, W) -> logits.

    `time_axis='w'`: input is (N, C, freq, time) (DCASE log-mel 1x40x501); `'h'`: (N, C, time, freq)
    (KWS MFCC 1x101x40), transposed to (freq, time) first.
    """

    def __init__(self, blocks: list[str | BlockSpec], num_classes: int, input_shape=(1, 40, 501),
                 stem_channels: int = 32, head_channels: int = 256, gru_hidden: int = 256,
                 gru_layers: int = 2, fc_hidden: int = 256, time_axis: str = "w", pool: str = "last"):
        super().__init__()
        if isinstance(blocks, str) or not blocks:
            raise UserError(f"arch {blocks!r}: expected a non-empty list of block strings "
                            f"like ir_e6_k3t_s1x1_c24")
        specs = [as_spec(b) for b in blocks]
        num_classes = positive_int(num_classes, "num_classes")
        self.input_shape = _check_shape(input_shape, time_axis)
        self.time_axis = time_axis
        self.arch = [format_block(s) for s in specs]
        self.freq_bins, _ = _freq_time(self.input_shape, time_axis)
        # Choice: stem is 3x3 stride 1 + BN + ReLU6 (the table keeps 40x501 after the stem).
        self.stem = conv_bn_act(self.input_shape[0], stem_channels, 3, 1, 1)
        layout, (c, f, _) = block_inputs(specs, self.input_shape, stem_channels, time_axis)
        self.blocks = nn.ModuleList(InvertedResidual(cin, s) for (cin, _), s in zip(layout, specs))
        self.feature_shape = (c, f)
        self.head = GRUHead(c, f, num_classes, head_channels, gru_hidden, gru_layers, fc_hidden, pool)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = freq_time_input(self, x)
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        return self.head(x)


def mbnet_cost(blocks: list[str | BlockSpec], num_classes: int, input_shape=(1, 40, 501),
               stem_channels: int = 32, head_channels: int = 256, gru_hidden: int = 256, gru_layers: int = 2,
               fc_hidden: int = 256, time_axis: str = "w", pool: str = "last") -> tuple[int, int]:
    """Exact (params, MACs per sample) of MBNet(...) with the same arguments, without building it."""
    shape = _check_shape(input_shape, time_axis)
    f, t = _freq_time(shape, time_axis)
    params, macs = conv_cost(shape[0], stem_channels, (3, 3), (f, t))
    c, hw = stem_channels, (f, t)
    for b in blocks:
        spec = as_spec(b)
        p, m, hw = block_cost(c, spec, hw)
        params, macs, c = params + p, macs + m, spec.out_channels
    p, m = head_cost(c, hw[0], hw[1], num_classes, head_channels, gru_hidden, gru_layers, fc_hidden)
    return params + p, macs + m


# VGG16's 13 convolutions; "M" = 2x2 max pool (floor). Choice: VGG16's fifth pool is dropped so the GRU
# keeps 31 time steps: 1x40x501 -> 512 x 2 x 31 -> frequency conv 2x1. With the baseline's 256-channel head
# the totals are 15.84M / 6.00 G; no placement of pools reaches the paper's 17.24M (best 16.88M).
VGG16_CONFIG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                                 512, 512, 512]
# Choice: the frequency conv of BaselineVGG's head widens 512 -> 1024 channels (GRU input 1024, hidden 256 as
# in the baseline): the one head width that fits both of the paper's totals, 17.22M params (-0.1%) and
# 6.04 G MACs (+0.9%), with VGG16's 13 convs (14.72M, 5.967 G) unchanged. tests/models/test_asc.py pins it.
VGG_HEAD_CHANNELS = 1024


class BaselineVGG(nn.Module):
    """The paper's BaselineVGG: VGG16's 13 3x3 convs (+ BN + ReLU) as feature extractor + GRUHead."""

    def __init__(self, num_classes: int, input_shape=(1, 40, 501), config: list[int | str] | None = None,
                 head_channels: int = VGG_HEAD_CHANNELS, gru_hidden: int = 256, gru_layers: int = 2,
                 fc_hidden: int = 256, time_axis: str = "w"):
        super().__init__()
        num_classes = positive_int(num_classes, "num_classes")
        self.input_shape = _check_shape(input_shape, time_axis)
        self.time_axis = time_axis
        self.freq_bins, t = _freq_time(self.input_shape, time_axis)
        config = list(VGG16_CONFIG if config is None else config)
        layers: list[nn.Module] = []
        c, f = self.input_shape[0], self.freq_bins
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                f, t = f // 2, t // 2
            else:
                # Choice: conv without bias + BN + ReLU (VGG16-BN style, like the baseline's conv + BN).
                layers.extend([nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v),
                               nn.ReLU(inplace=True)])
                c = v
        if f < 1 or t < 1:
            raise UserError(f"input_shape {self.input_shape}: too small for {config.count('M')} 2x2 pools")
        self.features = nn.Sequential(*layers)
        self.head = GRUHead(c, f, num_classes, head_channels, gru_hidden, gru_layers, fc_hidden)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(freq_time_input(self, x)))


def vgg_cost(num_classes: int, input_shape=(1, 40, 501), config: list[int | str] | None = None,
             head_channels: int = VGG_HEAD_CHANNELS, gru_hidden: int = 256, gru_layers: int = 2,
             fc_hidden: int = 256, time_axis: str = "w") -> tuple[int, int]:
    """Exact (params, MACs per sample) of BaselineVGG(...) with the same arguments."""
    shape = _check_shape(input_shape, time_axis)
    f, t = _freq_time(shape, time_axis)
    c, params, macs = shape[0], 0, 0
    for v in VGG16_CONFIG if config is None else config:
        if v == "M":
            f, t = f // 2, t // 2
        else:
            p, m = conv_cost(c, v, (3, 3), (f, t))
            params, macs, c = params + p, macs + m, v
    p, m = head_cost(c, f, t, num_classes, head_channels, gru_hidden, gru_layers, fc_hidden)
    return params + p, macs + m


# Keyword arguments of MBNet besides blocks / num_classes / input_shape, and the positive-integer ones.
MBNET_ARGS = ("stem_channels", "head_channels", "gru_hidden", "gru_layers", "fc_hidden", "time_axis", "pool")
VGG_ARGS = ("config", "head_channels", "gru_hidden", "gru_layers", "fc_hidden", "time_axis")
POOLS = ("last", "mean")
_INT_ARGS = ("stem_channels", "head_channels", "gru_hidden", "gru_layers", "fc_hidden")


def check_net_args(args: dict, where, known=MBNET_ARGS) -> dict:
    """Unknown names and wrong-typed values of MBNet / BaselineVGG keyword arguments are UserErrors.

    `where(arg)` names an argument in the message, e.g. `model 'mbnet': argument 'gru_hidden'`.
    """
    for k, v in args.items():
        if k not in known:
            raise UserError(f"{where(k)}: unknown (expected one of: {', '.join(known)})")
        if k in _INT_ARGS:
            positive_int(v, where(k))
        elif k in ("time_axis", "pool") and not isinstance(v, str):
            raise UserError(f"{where(k)}: expected a string, got {v!r}")
        elif k == "pool" and v not in POOLS:  # said with the field's name, before the network is built
            raise UserError(f"{where(k)}: expected 'last' (the GRU's last step) or 'mean' (over time), got "
                            f"{v!r}")
        elif k == "config" and v is not None and (
                not isinstance(v, (list, tuple)) or not v
                or any(x != "M" and (isinstance(x, bool) or not isinstance(x, int) or x < 1) for x in v)):
            raise UserError(f"{where(k)}: expected a non-empty list of positive integers (conv widths) and "
                            f"'M' (2x2 max pools), got {v!r}")
    return args


def _net_check(name: str, known=MBNET_ARGS):
    """The registry `check` of a factory whose **kwargs go to MBNet / BaselineVGG (its own args left out)."""
    return lambda args: check_net_args({k: v for k, v in args.items() if k in known},
                                       lambda k: arg_where(name, k), known)


def _mbnet_arch(arch) -> list[BlockSpec] | str:
    """mbnet's `arch`, checked and parsed: a list of block strings (MBNet refuses a string with its own
    message)."""
    if arch is None:
        raise UserError("model 'mbnet': needs arch=[block strings like ir_e6_k3t_s1x1_c24]")
    if not isinstance(arch, (list, tuple, str)):
        raise UserError(f"{arg_where('mbnet', 'arch')}: expected a list of block strings like "
                        f"ir_e6_k3t_s1x1_c24, got {arch!r}")
    return arch if isinstance(arch, str) else [as_spec(block) for block in arch]


@register_model("asc-baseline", takes=MBNET_ARGS, check=_net_check("asc-baseline"))
def asc_baseline(num_classes: int = 9, input_shape=(1, 40, 501), **kwargs) -> MBNet:
    """The ASC paper's baseline (REFERENCE.md reconstruction of Figure 1)."""
    check_net_args(kwargs, lambda k: arg_where("asc-baseline", k))
    return MBNet(ASC_BASELINE_BLOCKS, num_classes, input_shape, **kwargs)


def _mbnet_check(args: dict) -> None:
    _mbnet_arch(args.get("arch"))
    _net_check("mbnet")(args)


@register_model("mbnet", takes=MBNET_ARGS, check=_mbnet_check)
def mbnet(num_classes: int = 9, input_shape=(1, 40, 501), arch: list[str] | None = None, **kwargs) -> MBNet:
    """Any MBNet: `arch` = list of block strings (e.g. a searched architecture), plus MBNet kwargs."""
    arch = _mbnet_arch(arch)
    check_net_args(kwargs, lambda k: arg_where("mbnet", k))
    return MBNet(arch, num_classes, input_shape, **kwargs)


@register_model("asc-vgg", takes=VGG_ARGS, check=_net_check("asc-vgg", VGG_ARGS))
def asc_vgg(num_classes: int = 9, input_shape=(1, 40, 501), **kwargs) -> BaselineVGG:
    """The paper's BaselineVGG (VGG16 13-conv feature extractor + the baseline's GRU head)."""
    check_net_args(kwargs, lambda k: arg_where("asc-vgg", k), known=VGG_ARGS)
    return BaselineVGG(num_classes, input_shape, **kwargs)
