"""`audionas data prepare-dcase2018` (feature cache, shuffle-and-mix), `audionas data make-dcase-fixture`."""

from __future__ import annotations

import argparse
import json
import sys

from audionas.commands import Command, check_out_folder, nonnegative_int, positive_float, positive_int
from audionas.console import out


def _prepare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="DCASE2018-task5-dev folder, or a folder holding "
                   "DCASE2018-task5-dev (and DCASE2018-task5-eval)")
    p.add_argument("--out", required=True, help="cache folder (created; an interrupted run resumes)")
    p.add_argument("--eval-root", default=None,
                   help="evaluation set folder, when --root does not hold it (a --root that is the "
                        "development set itself finds no evaluation set, even one beside it)")
    p.add_argument("--workers", type=nonnegative_int, default=0,
                   help="threads decoding wavs (0: in the main thread)")
    p.add_argument("--limit", type=nonnegative_int, default=0,
                   help="at most N segments per class in each set, the first N in list order, 0 = all (quick "
                        "runs; a small N can leave a fold without training or test segments)")
    p.add_argument("--seconds", type=positive_float, default=10.0,
                   help="expected length of every wav in seconds (the real segments: 10; fixtures may be "
                        "shorter and are repeated to fill the feature preset's clip)")
    p.add_argument("--feature", default="dcase-logmel",
                   help="feature preset: a 16 kHz log-mel one, such as dcase-logmel (honk-mfcc is refused)")
    p.add_argument("--chunk", type=positive_int, default=8,
                   help="segments per batched feature computation (a resumed set keeps the chunking it "
                        "started with)")
    p.add_argument("--checkpoint-every", type=positive_int, default=64,
                   help="persist progress every N segments")
    p.add_argument("--augment", action="store_true",
                   help="also write shuffle-and-mix segments (Inoue et al.)")
    # Choice: the three --augment settings default to None, so one given without --augment is refused.
    p.add_argument("--augment-scale", type=positive_float, default=None,
                   help="with --augment: scale of the 14K/28K per-class targets (default 1; e.g. 0.01 for "
                        "small runs)")
    p.add_argument("--augment-scope", default=None,
                   help="with --augment: comma list of training pools to augment: dev (fold 0, the "
                        "default), fold1, fold2, fold3, fold4, search (70/30)")
    p.add_argument("--seed", type=nonnegative_int, default=None,
                   help="with --augment: seed of the mixing and of the search split (the data.split_seed of "
                        "the runs that use aug-search; default 0)")
    p.add_argument("--no-progress", "--quiet", action="store_true", help="no progress bar")


def _prepare(args: argparse.Namespace) -> int:
    import time

    from audionas.data.dcase_cache import AUG_SCOPES, check_augment_scale, prepare_augmentation, prepare_cache
    from audionas.errors import UserError

    settings = (("--augment-scale", args.augment_scale), ("--augment-scope", args.augment_scope),
                ("--seed", args.seed))
    given = [flag for flag, value in settings if value is not None]
    if given and not args.augment:
        raise UserError(f"{given[0]}: only used with --augment (shuffle-and-mix); add --augment or drop it")
    scale = 1.0 if args.augment_scale is None else args.augment_scale
    seed = 0 if args.seed is None else args.seed
    scope_list = "dev" if args.augment_scope is None else args.augment_scope
    scopes = list(dict.fromkeys(s.strip() for s in scope_list.split(",") if s.strip()))  # each once
    bad = [s for s in scopes if s not in AUG_SCOPES]
    if bad or not scopes:
        raise UserError(f"--augment-scope: expected a comma list of {', '.join(AUG_SCOPES)}, got "
                        f"'{scope_list}'")
    check_out_folder(args.out)
    if args.augment:
        check_augment_scale(scale)
    t0 = time.perf_counter()
    summary = prepare_cache(args.root, args.out, workers=args.workers, limit=args.limit,
                            seconds=args.seconds, feature=args.feature, chunk_files=args.chunk,
                            checkpoint_every=args.checkpoint_every, eval_root=args.eval_root,
                            progress=not args.no_progress)
    summary["seconds_features"] = round(time.perf_counter() - t0, 3)
    if args.augment:
        t1 = time.perf_counter()
        summary["augment"] = prepare_augmentation(args.out, scopes, scale=scale, seed=seed,
                                                  chunk=args.chunk, checkpoint_every=args.checkpoint_every,
                                                  progress=not args.no_progress)
        summary["seconds_augment"] = round(time.perf_counter() - t1, 3)
    out(json.dumps(summary, indent=2))
    return 0


def _fixture_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder receiving DCASE2018-task5-dev (and -eval)")
    p.add_argument("--sessions", type=positive_int, default=4,
                   help="sessions per class (default 4; a class's j-th session, from 0, goes to fold "
                        "j %% 4 + 1: fewer than 4 leave folds without that class)")
    p.add_argument("--segments", type=positive_int, default=2,
                   help="segments (wavs of --seconds) per session and node (default 2)")
    p.add_argument("--nodes", type=int, choices=range(1, 5), default=4,
                   help="sensor nodes recording each session (1-4, default 4)")
    p.add_argument("--seconds", type=positive_float, default=10.0,
                   help="length of each wav (default 10, the real length: the defaults write 288 "
                        "four-channel wavs, ~350 MB; --seconds 1 writes a tenth)")
    p.add_argument("--with-eval", action="store_true", help="also write the evaluation set layout")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the sounds (default 0)")
    p.add_argument("--force", action="store_true",
                   help="replace a fixture made with other settings (by default the same settings again "
                        "keep it, and other ones are refused)")


def _fixture(args: argparse.Namespace) -> int:
    from audionas.data.dcase_fixtures import DEV_DIRNAME, make_dcase2018_fixture
    from audionas.utils.text import escape_controls

    check_out_folder(args.out, f"DCASE2018 fixture ({DEV_DIRNAME})", (DEV_DIRNAME,))
    root = make_dcase2018_fixture(args.out, sessions_per_class=args.sessions,
                                  segments_per_session=args.segments, seconds=args.seconds, nodes=args.nodes,
                                  with_eval=args.with_eval, seed=args.seed, force=args.force)
    wavs = list(root.rglob("*.wav"))
    size = sum(p.stat().st_size for p in wavs) / 2**20
    print(f"{escape_controls(str(root))}: {len(wavs)} wavs ({size:.1f} MB) in the DCASE2018 Task 5 layout; "
          f"next: audionas data prepare-dcase2018 --root {escape_controls(str(root))} --out CACHE"
          + (f" --seconds {args.seconds:g}" if args.seconds != 10 else ""),
          file=sys.stderr)
    out(escape_controls(str(root)))  # alone on stdout: `ROOT=$(audionas data ...)`
    return 0


COMMANDS = [
    Command(("data", "prepare-dcase2018"), "compute the DCASE2018 task 5 log-mel feature cache (resumable), "
            "optionally with shuffle-and-mix augmentation", _prepare_args, _prepare),
    Command(("data", "make-dcase-fixture"), "write a small synthetic DCASE2018 task 5 dataset in the "
            "official layout", _fixture_args, _fixture),
]
