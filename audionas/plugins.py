"""`audionas --import MODULE`: a user's module (a name on the Python path, or a .py file) imported before the
command runs, so the models and DARTS operations it registers (@register_model, @register_op) exist for
train, evaluate, predict, profile and export as they do in the Python process that registered them."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from audionas.errors import UserError

# Said beside an unknown model or DARTS op name: it may be registered in a module a command imports only when
# asked to.
IMPORT_HINT = "one registered in a module of your own: audionas --import MODULE"


def check_new_name(registry: dict, name: str, fn, kind: str) -> None:
    """ValueError when `name` is taken by another definition. The same definition again (same module and
    qualified name: a notebook cell run twice, a module reloaded) may replace its earlier self."""
    old = registry.get(name)
    if old is None or _where(old) == _where(fn):
        return
    raise ValueError(f"{kind} '{name}' registered twice: by {'.'.join(_where(old))} and "
                     f"{'.'.join(_where(fn))}")


def _where(fn) -> tuple[str, str]:
    return getattr(fn, "__module__", None) or "?", getattr(fn, "__qualname__", None) or repr(fn)


def import_plugin(spec: str) -> None:
    """Import `spec` once per process; a missing module or one that fails while importing is a UserError
    (AUDIONAS_DEBUG=1 raises the original exception instead, for its traceback: it is the user's own code)."""
    try:
        if spec.endswith(".py"):
            _import_file(Path(spec).expanduser())
        else:
            if os.getcwd() not in sys.path:  # as `python -m audionas` has it, for the console script too
                sys.path.insert(0, os.getcwd())
            importlib.import_module(spec)
    except UserError:
        raise
    except ModuleNotFoundError as e:
        if e.name != spec.split(".")[0] or os.environ.get("AUDIONAS_DEBUG"):
            raise _failed(spec, e) from None
        raise UserError(f"--import {spec}: no module named '{e.name}' (expected a module on the Python path "
                        f"or a .py file)") from None
    except Exception as e:
        raise _failed(spec, e) from None


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise UserError(f"--import {path}: file not found (expected a .py file or a module name)")
    name = f"audionas_plugin_{path.stem}"
    known = sys.modules.get(name)
    if known is not None and Path(getattr(known, "__file__", "")).resolve() == path.resolve():
        return  # a second command in the same process: its registrations are there already
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _failed(spec: str, e: Exception) -> Exception:
    if os.environ.get("AUDIONAS_DEBUG"):
        return e
    return UserError(f"--import {spec}: failed while importing it: {type(e).__name__}: {e} (set "
                     f"AUDIONAS_DEBUG=1 for a traceback)")
