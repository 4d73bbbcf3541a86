"""`audionas predict RUN FILE|DIR ...`: the classes a trained run gives audio files (top-k probabilities)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from audionas.commands import Command
from audionas.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="a training run directory or checkpoint file")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR",
                   help="audio files, or folders (every .wav below them, sorted)")
    p.add_argument("--top", type=int, default=3, help="classes listed per file (default 3)")
    p.add_argument("--channel", type=int, default=None,
                   help="0-based channel of multi-channel files (default: files must be mono)")
    p.add_argument("--data", help="a DCASE run's feature cache, for its band statistics (default: data.root)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", action="store_true", help="one JSON object per file: file, class, top")


def audio_files(inputs: list[str]) -> list[Path]:
    """The files named, plus every .wav below the folders named (sorted); a missing path is a UserError."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".wav", ".wave"))
            if not found:
                raise UserError(f"{path}: no .wav files in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such audio file or folder")
    return files


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from audionas.features import fit_length, get_spec
    from audionas.features.io import load_clip
    from audionas.inference import load_inference_model

    if args.top < 1 or args.batch_size < 1:
        raise UserError("--top/--batch-size: expected positive integers")
    files = audio_files(args.inputs)
    model, lm = load_inference_model(args.run, waveform=True, data=args.data)
    spec = get_spec(lm.config.data.feature)
    k = min(args.top, len(lm.classes))
    batches = [files[i:i + args.batch_size] for i in range(0, len(files), args.batch_size)]
    with torch.inference_mode():
        for batch in tqdm(batches, desc="predict", unit="batch", leave=False, disable=len(batches) < 2):
            waves = [fit_length(load_clip(f, spec, args.channel), spec.clip_samples) for f in batch]
            probs = model(torch.from_numpy(np.stack(waves)))
            values, indices = probs.topk(k, dim=1)
            for f, vs, ix in zip(batch, values.tolist(), indices.tolist()):
                top = [(lm.classes[i], v) for i, v in zip(ix, vs)]
                if args.json:
                    print(json.dumps({"file": str(f), "class": top[0][0], "top": top}))
                else:
                    print(f"{f}\t" + "\t".join(f"{c} {v:.3f}" for c, v in top))
    return 0


COMMANDS = [Command(("predict",), "classify audio files with a trained run (top-k class probabilities)",
                    add_arguments, run)]
