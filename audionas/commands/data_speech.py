"""`audionas data synth-speech-commands`: a synthetic Speech Commands v0.01 dataset spoken by espeak-ng."""

from __future__ import annotations

import argparse

from audionas.commands import Command, check_out_folder, nonnegative_int
from audionas.console import out
from audionas.data.synth import DEFAULT_SPEAKERS


def _add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create")
    p.add_argument("--speakers", type=int, default=DEFAULT_SPEAKERS,
                   help=f"number of synthetic speakers (default {DEFAULT_SPEAKERS}: ~17,000 clips, "
                        "about 2 minutes on 2 cores; each speaker's clips go to one split, so a few speakers "
                        "can leave the validation or testing list empty)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of speakers, repetitions and noises (default 0)")
    p.add_argument("--noise-seconds", type=float, default=60.0,
                   help="length of each _background_noise_ wav in seconds (default 60)")
    p.add_argument("--workers", type=nonnegative_int, default=0,
                   help="parallel espeak-ng jobs (default 0: 2 per CPU core)")
    p.add_argument("--force", action="store_true",
                   help="rebuild DIR even if it holds a complete synthetic dataset")
    p.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true", help="no progress bar")


def _run(args: argparse.Namespace) -> int:
    from audionas.data.synth import synthesize
    from audionas.utils.text import escape_controls

    check_out_folder(args.out)
    s = synthesize(args.out, speakers=args.speakers, seed=args.seed, noise_seconds=args.noise_seconds,
                   workers=args.workers or None, force=args.force, progress=not args.quiet)
    path = escape_controls(str(s["path"]))
    if s["already_complete"]:
        out(f"{path}: already holds a complete synthetic dataset ({s.get('files', '?')} clips); "
            f"nothing to do (--force rebuilds it)")
    else:
        out(f"{path}: {s['files']} clips ({s['speakers']} speakers x {s['words']} words; "
            f"{s['validation']} validation, {s['testing']} testing) in {s['seconds']} s")
    return 0


COMMANDS = [Command(("data", "synth-speech-commands"),
                    "write a synthetic Speech Commands v0.01 dataset spoken by espeak-ng", _add, _run)]
