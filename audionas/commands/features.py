"""`audionas features`: the feature matrix of one audio file, saved as .npy."""

from __future__ import annotations

import argparse
from pathlib import Path

from audionas.commands import Command, channel_choice
from audionas.console import out
from audionas.errors import UserError

_HELP = "compute the features of one audio file (torch path) and save them as .npy"
_EPILOG = """output shapes (float32):
  honk-mfcc     (101, 40)  time x coefficient: 40 MFCCs every 10 ms of a 1 s clip (16 kHz, 16000 samples)
  dcase-logmel  (40, 501)  band x time: 40 log-mel bands every 20 ms of a 10 s clip (16 kHz, 160000 samples)
The clip is zero-padded at the end (--fill repeat: repeated, as a DCASE2018 cache fills short clips, which is
what the export of a DCASE run expects) or cropped to the preset's length; other rates are resampled."""


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _EPILOG
    p.add_argument("input", metavar="IN", help="audio file (wav, flac, ...)")
    p.add_argument("--preset", "--feature", dest="preset", required=True,
                   help="feature preset: honk-mfcc or dcase-logmel, or NAME@Xs for X-second inputs (a run's "
                        "data.feature)")
    p.add_argument("--out", required=True, metavar="OUT.npy", help="output .npy file (written atomically)")
    p.add_argument("--fill", choices=["zero", "repeat"], default="zero",
                   help="a clip shorter than the preset's: zero-padded (speech and folder datasets; "
                        "default) or repeated (DCASE2018 caches)")
    p.add_argument("--channel", type=channel_choice("mix"), default=None,
                   help="0-based channel of a multi-channel file, or 'mix': the channels' samples averaged "
                        "(a mono file is read as it is; default: the file must be mono)")


def _run(args: argparse.Namespace) -> int:
    from audionas.data.audio import warn_longer
    from audionas.features import compute_features, get_spec
    from audionas.features.io import load_clip, save_npy_atomic
    from audionas.utils.text import escape_controls

    if Path(args.out).suffix != ".npy":  # ".npy" alone would be a hidden file without a name
        raise UserError(f"--out {args.out}: expected a .npy file name (numpy.load reads it)")
    spec = get_spec(args.preset)
    wave = load_clip(args.input, spec, channel=args.channel)
    seconds = spec.clip_samples / spec.sample_rate
    warn_longer([args.input] if len(wave) > spec.clip_samples else [], 1, seconds)
    feats = compute_features(wave, spec.name, repeat=args.fill == "repeat")
    save_npy_atomic(args.out, feats)
    out(f"{escape_controls(args.out)}: {spec.name} features {feats.shape[0]}x{feats.shape[1]}")
    return 0


COMMANDS = [Command(("features",), _HELP, _add_arguments, _run)]
