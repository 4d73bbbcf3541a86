"""`audionas export RUN`: the trained run as one torch.export program (.pt2), checked after a reload."""

from __future__ import annotations

import argparse

from audionas.commands import Command
from audionas.console import out
from audionas.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="a training run directory or checkpoint file")
    p.add_argument("--out", metavar="FILE.pt2",
                   help="output .pt2 file (default: RUN/model[-waveform][-CHECKPOINT].pt2: model.pt2, "
                        "model-waveform.pt2; for another checkpoint than final.pt, e.g. best.pt: "
                        "model-best.pt2, model-waveform-best.pt2)")
    p.add_argument("--waveform", action="store_true",
                   help="take mono waveforms (batch, clip samples); the feature frontend is in the program "
                        "(default: the program takes the features `audionas features` writes)")
    p.add_argument("--data", help="with --waveform for a DCASE run: the feature cache whose training split "
                                  "gives the band statistics when its checkpoint does not record them "
                                  "(older runs; default: the run's data.root)")


def run(args: argparse.Namespace) -> int:
    from audionas.export import export_run
    from audionas.utils.text import escape_controls

    if args.data and not args.waveform:  # the feature program takes features: no band statistics to read
        raise UserError(f"--data {args.data}: used with --waveform only; add --waveform or drop --data")
    info = export_run(args.run, args.out, waveform=args.waveform, data=args.data)
    path = info["path"]
    shape = " x ".join(str(v) for v in info["input"]["shape"])
    out(f"wrote {escape_controls(path)} ({info['bytes'] / 1e6:.2f} MB): {info['input']['kind']} "
        f"({shape}) -> "
        f"probabilities over {len(info['classes'])} classes; reloaded file vs model at batch 1 and 3: "
        f"max abs diff {info['max_abs_diff']:.1e}")
    return 0


COMMANDS = [Command(("export",), "export a trained run as a torch.export program (.pt2) for deployment",
                    add_arguments, run)]
