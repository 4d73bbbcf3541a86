"""One run directory, one config: a resumed run must match the config.yaml it was started with."""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from audionas.errors import UserError

# The top-level config field that only one kind of run's config.yaml (or preset) holds (a one-shot search
# keeps its settings in search.json: only its presets hold `algorithm`).
RUN_KINDS = {"model": "training run", "ops": "DARTS search", "space": "supernet run",
             "algorithm": "one-shot search"}


def config_kind(data) -> str | None:
    """The kind of run (a RUN_KINDS value) a config mapping is for; None when no one kind's field is in it."""
    kinds = {kind for key, kind in RUN_KINDS.items() if isinstance(data, dict) and key in data}
    return kinds.pop() if len(kinds) == 1 else None


def holds_work(run: Path) -> bool:
    """True when `run` has a checkpoint (a run that failed before its first one holds no work)."""
    return (run / "checkpoints" / "last.pt").exists() or (run / "final.pt").exists()


@contextmanager
def no_work_left_behind(run: Path) -> Iterator[None]:
    """When the block fails before `run` holds work (its first epoch hits a bad clip), remove what the block
    added to `run` (config.yaml, tb/, ...; `run` itself if it made it): no half-written run folder is left.

    Only the main process (torchrun's rank 0) removes, and only a folder it holds the lock of (lock_run_dir):
    one the same command started elsewhere made meanwhile is that process's. An interrupt (Ctrl-C) keeps
    the files."""
    before = set(run.iterdir()) if run.is_dir() else None
    try:
        yield
    except Exception:
        mine = run.is_dir() and run.resolve() in _LOCKED
        if (os.environ.get("RANK") or "0") == "0" and mine and not holds_work(run):
            if before is None:
                shutil.rmtree(run, ignore_errors=True)
            else:
                for p in set(run.iterdir()) - before:
                    shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        raise


_LOCKED: dict[Path, int] = {}  # run folders this process holds (file descriptors kept open)
_scopes = 0  # open run_dir_locks blocks


def _release_in_child() -> None:
    """A forked child (a DataLoader worker) closes its copies of the lock descriptors: a flock lasts while any
    copy is open, so workers orphaned by a killed run held its folder locked for seconds after it died, and
    the same command run again at once was refused as "in use by another audionas process" (QA)."""
    for fd in _LOCKED.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _LOCKED.clear()


os.register_at_fork(after_in_child=_release_in_child)


@contextmanager
def run_dir_locks() -> Iterator[None]:
    """Release, when the outermost such block ends, the run-folder locks taken inside it. Every function that
    locks a folder is one (also as a decorator): a notebook training run after run kept each folder locked,
    and one descriptor open, until its kernel ended, so `audionas train` could not resume them meanwhile."""
    global _scopes
    before = set(_LOCKED)
    _scopes += 1
    try:
        yield
    finally:
        _scopes -= 1
        if _scopes == 0:
            for key in set(_LOCKED) - before:
                os.close(_LOCKED.pop(key))


def run_folder_job(job):
    """Decorator for `job(cfg, run_dir, ...)` (train, the DARTS search, the supernet training): the folder's
    lock is held while it runs, and a job that fails before its first checkpoint leaves no half-made run
    behind (no config.yaml or tb/), for a Python caller as for the command."""
    @functools.wraps(job)
    def run(cfg, run_dir, *args, **kwargs):
        with run_dir_locks(), no_work_left_behind(Path(run_dir).expanduser()):  # the lock outlives the check
            return job(cfg, run_dir, *args, **kwargs)
    return run


def lock_run_dir(run: Path) -> None:
    """Hold an exclusive lock on an existing run folder until the enclosing run_dir_locks block ends (else
    until this process ends); UserError when another process holds it (the same command started twice would
    otherwise train one run twice over)."""
    key = run.resolve()
    fd = os.open(key, os.O_RDONLY)
    held = _LOCKED.get(key)
    if held is not None:
        if os.fstat(held).st_ino == os.fstat(fd).st_ino:
            os.close(fd)
            return  # this process's own (a rerun in the same Python session)
        os.close(_LOCKED.pop(key))  # that folder was removed (a failed start) and made again
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UserError(f"{run}: in use by another audionas process writing there; wait for it to end "
                        f"(or stop it), or use another --out") from None
    _LOCKED[key] = fd


def locked_elsewhere(folder: Path) -> bool:
    """Whether another live process holds `folder`'s flock (a killed one holds none)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return False  # gone already
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def refuse_repeats(paths, why: str) -> None:
    """UserError `{path}: given twice; {why}` at the first path that resolves to an earlier one."""
    seen: set[Path] = set()
    for p in paths:
        if Path(p).resolve() in seen:
            raise UserError(f"{p}: given twice; {why}")
        seen.add(Path(p).resolve())


def read_run_config(path: Path) -> dict:
    """A run's saved config.yaml as a dict, upgraded to today's fields so the run keeps the data it had."""
    from audionas.config import read_yaml
    from audionas.data import upgrade_run_config

    return upgrade_run_config(read_yaml(path))


def check_outside_data(out: str | Path, kind: str | None, root: str | None) -> None:
    """UserError when the --out folder lies inside a folder dataset's root: every later run and evaluation
    on that dataset would read it as a class (or word) folder."""
    if kind == "dcase2018" or not root:  # a DCASE cache reads only its own files
        return
    root_dir, out_dir = Path(str(root)).expanduser().resolve(), Path(out).expanduser().resolve()
    if out_dir == root_dir:  # its files would sit among the class folders (a run's folder would be read)
        raise UserError(f"--out {out}: is the dataset folder; use an --out outside it")
    if root_dir in out_dir.parents:
        raise UserError(f"--out {out}: inside the dataset folder {root_dir}, where it would be read as a "
                        f"class folder; use an --out outside it")


# What a folder holds from its start: a run (training, supernet or DARTS search) its config.yaml, a one-shot
# search its state.json. A non-empty output folder without it is another kind of folder.
RUN_MARKERS = ("config.yaml",)
SEARCH_MARKERS = ("state.json",)


def check_folder_path(out: str | Path) -> None:
    """UserError unless --out is a folder or can become one: no regular file at it or on its path."""
    path = Path(out)
    for p in (path, *path.parents):
        if p.exists():
            if p == path and not p.is_dir():
                raise UserError(f"--out {out}: exists and is not a folder")
            if not p.is_dir():
                raise UserError(f"--out {out}: cannot be a folder ({p} is a file)")
            break


def check_not_foreign(out: str | Path, what: str, markers: tuple[str, ...]) -> None:
    """UserError when `out` is a file (check_folder_path: a Python caller's path, which no command checked)
    or a non-empty folder holding none of `markers` (it is no `what`): a run is not mixed into another folder
    (a home folder, a dataset). Hidden files do not count: a kill during the first atomic write leaves only
    its `.NAME.*.tmp` file."""
    path = Path(out)
    check_folder_path(path)
    visible = path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir())
    if visible and not any((path / m).exists() for m in markers):
        raise UserError(f"--out {out}: folder is not empty and holds no {what}; use another --out")


def _comparable(data: dict, cfg_type: type, where: Path, what: str) -> dict:
    """A saved config (config.yaml's or a checkpoint's) as a dict comparable with a new one."""
    from audionas.config import from_dict, to_dict
    from audionas.data import upgrade_run_config

    try:
        old = to_dict(from_dict(cfg_type, upgrade_run_config(data)))
    except UserError as e:
        raise UserError(f"{where}: unreadable {what} config ({e})") from None
    if isinstance(old.get("model_args"), dict) and isinstance(old.get("model"), str):
        from audionas.models import freeze_model_args

        try:  # a run saved before model_args were frozen still matches the same command
            old["model_args"] = freeze_model_args(old["model"], old["model_args"])
        except UserError:
            pass  # its file is gone: compared as saved
    return old


def check_config_unedited(run: Path, cfg, ckpt: dict, ckpt_path: Path, ignore: tuple[str, ...],
                          what: str) -> None:
    """UserError when `run`'s config.yaml (loaded as `cfg`) differs from the config its checkpoint `ckpt`
    records: a run read, not resumed (a supernet a search scores), would be described by a config it was
    never trained with."""
    from audionas.config import to_dict

    _differs_from_recorded(run, to_dict(cfg), ckpt.get("config"), ckpt_path, type(cfg), ignore, what,
                           "undo the edit")


def _check_config_yaml_unedited(run: Path, saved: dict, cfg_type: type, ignore: tuple[str, ...],
                                what: str) -> None:
    """UserError when config.yaml differs from the config the run's checkpoint was trained with: a hand
    edit (epochs, lr, ...) would otherwise go unnoticed, the resumed run carrying on under another config."""
    from audionas.utils.checkpoint import load_checkpoint

    ckpt_path = next(p for p in (run / "checkpoints" / "last.pt", run / "final.pt") if p.exists())
    try:
        recorded = load_checkpoint(ckpt_path).get("config")
    except UserError:  # the resume reads it again and says what is wrong with it
        return
    _differs_from_recorded(run, saved, recorded, ckpt_path, cfg_type, ignore, what,
                           "undo the edit, or choose another --out")


def _differs_from_recorded(run: Path, saved: dict, recorded, ckpt_path: Path, cfg_type: type,
                           ignore: tuple[str, ...], what: str, fix: str) -> None:
    from audionas.train.config import config_diff

    if not isinstance(recorded, dict):  # older checkpoints: nothing to compare with
        return
    trained = _comparable(recorded, cfg_type, ckpt_path, what)
    diff = [d for d in config_diff(trained, saved) if d not in ignore]
    if diff:
        raise UserError(f"{run / 'config.yaml'}: field '{diff[0]}' differs from the config the {what} was "
                        f"trained with ({ckpt_path}); {fix}")


def _unused_difference(field: str, old: dict, new: dict) -> bool:
    """Whether `field` differs only where no run reads it: data.ratios of a split that is not a ratio split
    (an older audionas saved other default ratios), or a model argument one config omits and the other sets
    to the model's default (older runs saved model_args without their defaults)."""
    from audionas.data import RATIO_SPLITS

    data = new.get("data") if isinstance(new.get("data"), dict) else {}
    if field == "data.ratios":
        return data.get("kind") == "dcase2018" or data.get("split") not in RATIO_SPLITS
    name = new.get("model")
    if not field.startswith("model_args.") or field.count(".") != 1 or not isinstance(name, str):
        return False
    from audionas.models.registry import argument_defaults

    key, defaults = field.split(".", 1)[1], argument_defaults(name)
    if key not in defaults:
        return False
    old_value, new_value = (c["model_args"].get(key, defaults[key]) if isinstance(c.get("model_args"), dict)
                            else None for c in (old, new))
    return old_value == new_value


def check_run_dir(run: Path, cfg, free_fields: tuple[str, ...], what: str = "run") -> None:
    """UserError naming the first differing field when `run` holds a `what` started with another config, or
    when its config.yaml was edited since its last checkpoint.

    A run directory with a config.yaml but no checkpoint yet holds no work (the run failed before its first
    checkpoint), so a new config may replace it."""
    from audionas.config import read_yaml, to_dict
    from audionas.train.config import config_diff

    path = run / "config.yaml"
    if not path.is_file() or not holds_work(run):
        return
    raw = read_yaml(path)  # not read_run_config: an old run's missing split_seed is reported below
    legacy_split = isinstance(raw.get("data"), dict) and "split_seed" not in raw["data"]
    old = _comparable(raw, type(cfg), path, what)
    # model_args.genotype.ops is a label (recorded since the report names op sets): it changes no weights.
    ignore = (*free_fields, "model_args.genotype.ops")
    # First: an edited config.yaml is the mistake to name, not the unchanged command that now differs from it.
    _check_config_yaml_unedited(run, old, type(cfg), ignore, what)
    new = to_dict(cfg)
    diff = [d for d in config_diff(old, new) if d not in ignore and not _unused_difference(d, old, new)]
    if diff == ["data.split_seed"] and legacy_split:
        raise UserError(f"{run}: saved before data.split_seed existed, its splits were drawn with seed "
                        f"{old['data']['split_seed']}; add data.split_seed={old['data']['split_seed']} to "
                        f"resume it, or choose another --out")
    if diff:
        more = f" and {len(diff) - 1} more" if len(diff) > 1 else ""
        # Choice: a run is never extended; a cosine or step schedule is laid out over the epochs it began.
        # Said only when more epochs is the whole difference (another preset differs in epochs too).
        more_epochs = diff == ["epochs"] and isinstance(old["epochs"], int) and new["epochs"] > old["epochs"]
        hint = ("; a run is not extended to more epochs (its learning-rate schedule may be laid out over "
                "them)" if more_epochs else "")
        raise UserError(f"{run}: holds a {what} with a different config (field '{diff[0]}'{more}){hint}; "
                        f"choose another --out")
