"""`audionas predict RUN FILE|DIR ...`: the classes a trained run gives audio files (top-k probabilities)."""

from __future__ import annotations

import argparse
import json

from audionas.commands import Command, channel_choice, positive_int
from audionas.console import out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="a training run directory or checkpoint file")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR",
                   help="audio files, or folders (every .wav, .flac, .ogg or .mp3 below them, sorted)")
    p.add_argument("--top", type=positive_int, default=3, help="classes listed per file (default 3)")
    p.add_argument("--channel", type=channel_choice("mean", "mix"), default=None,
                   help="0-based channel of multi-channel files (mono files are read as they are); "
                        "'mean': every channel classified and their probabilities averaged (DCASE2018's "
                        "official rule for a 4-channel segment); 'mix': the channels' samples averaged, as "
                        "a run trained with data.mixdown=true reads its clips (default: files must be mono)")
    p.add_argument("--data", help="a DCASE run's feature cache, for its band statistics when its checkpoint "
                                  "does not record them (older runs; default: data.root)")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="files per forward pass (default 64; with --channel mean each file adds one clip per "
                        "channel)")
    p.add_argument("--json", action="store_true", help="one JSON object per file: file, class, top")


def run(args: argparse.Namespace) -> int:
    from audionas.features.io import check_channel_choice
    from audionas.inference import (
        audio_files,
        load_inference_model,
        predict_files,
        repeats_short_clips,
        top_classes,
    )
    from audionas.utils.text import escape_controls

    files = audio_files(args.inputs)
    # Up front (load_clip checks again later): a missing or wrong --channel is reported before the model
    # loads and before any file's line is printed.
    for f in files:
        check_channel_choice(f, args.channel, mean_ok=True)
    model, lm = load_inference_model(args.run, waveform=True, data=args.data)
    repeat = repeats_short_clips(lm.config.data.kind)
    # Every file is classified before the first line is printed: a file that fails to decode stops the
    # command with its error and no partial listing.
    results = list(predict_files(model, lm.config.data.feature, files, args.channel, args.batch_size, repeat))
    for path, probs in results:
        top = top_classes(probs, lm.classes, args.top)
        if args.json:
            out(json.dumps({"file": str(path), "class": top[0][0], "top": top}))
        else:
            # A tab or newline in a name would break the line into fields or lines: escaped, as Python does.
            scores = "\t".join(f"{escape_controls(c)} {v:.3f}" for c, v in top)
            out(f"{escape_controls(str(path))}\t{scores}")
    return 0


COMMANDS = [Command(("predict",), "classify audio files with a trained run (top-k class probabilities)",
                    add_arguments, run)]
