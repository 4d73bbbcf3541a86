"""`audionas export RUN`: the trained run as one torch.export program (.pt2), checked after a reload."""

from __future__ import annotations

import argparse
from pathlib import Path

from audionas.commands import Command
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
    from audionas.train.trained_run import checkpoint_path, run_dir_of
    from audionas.utils.text import escape_controls

    if args.data and not args.waveform:  # the feature program takes features: no band statistics to read
        raise UserError(f"--data {args.data}: used with --waveform only; add --waveform or drop --data")
    ckpt = checkpoint_path(args.run)
    base = Path(args.run) if Path(args.run).is_dir() else run_dir_of(ckpt)
    # A checkpoint other than final.pt (best.pt, checkpoints/last.pt) is named, so that exports of two
    # checkpoints of one run do not overwrite each other.
    stem = "model-waveform" if args.waveform else "model"
    out = Path(args.out) if args.out else base / (stem + (f"-{ckpt.stem}" if ckpt.name != "final.pt" else "")
                                                  + ".pt2")
    if out.suffix != ".pt2":
        raise UserError(f"--out {out}: expected a .pt2 file name (a torch.export program for "
                        f"torch.export.load, not {out.suffix or 'a name without extension'})")
    if not args.out:
        check_not_another_export(out, ckpt, "waveform" if args.waveform else "features")
    info = export_run(args.run, out, waveform=args.waveform, data=args.data)
    shape = " x ".join(str(v) for v in info["input"]["shape"])
    print(f"wrote {escape_controls(str(out))} ({info['bytes'] / 1e6:.2f} MB): {info['input']['kind']} "
          f"({shape}) -> "
          f"probabilities over {len(info['classes'])} classes; reloaded file vs model at batch 1 and 3: "
          f"max abs diff {info['max_abs_diff']:.1e}")
    return 0


def check_not_another_export(out: Path, ckpt: Path, kind: str) -> None:
    """UserError when the default file `out` holds the export of another checkpoint or input kind (a
    checkpoint named waveform.pt exports to the name of final.pt's waveform program)."""
    from audionas.export import export_meta

    old = export_meta(out) if out.is_file() else None
    if old is None:
        return
    old_kind = old.get("input", {}).get("kind") if isinstance(old.get("input"), dict) else None
    if old_kind != kind or Path(str(old.get("run", ""))).name != ckpt.name:
        raise UserError(f"{out}: holds the export of {old.get('run')} ({old_kind} input), which this one "
                        f"would overwrite; pass --out FILE to keep both (or delete it)")


COMMANDS = [Command(("export",), "export a trained run as a torch.export program (.pt2) for deployment",
                    add_arguments, run)]
