"""`audionas --import MODULE`: a user's registered model or DARTS op is known to the commands."""

import json
import sys

import pytest

from audionas.cli import main
from audionas.errors import UserError
from audionas.plugins import import_plugin

PLUGIN = '''
import torch.nn as nn

from audionas.models.registry import register_model
from audionas.nas.darts.operations import register_op


@register_model("plugin-tiny-{tag}")
def tiny(num_classes=12, input_shape=(1, 101, 40)):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))


@register_op("plugin_conv_{tag}")
def conv(C, stride, affine):
    return nn.Conv2d(C, C, 1, stride=stride, bias=False)
'''


@pytest.fixture
def registries():
    """The model and op registries as they were before the test: its plugins leave no entries behind."""
    from audionas.models import registry
    from audionas.nas.darts import operations

    registry._import_builtin()
    before = [(table, set(table)) for table in (registry._MODELS, operations.OPS)]
    yield
    for table, keys in before:
        for key in set(table) - keys:
            del table[key]
    for name in [m for m in sys.modules if m == "mymod" or m.startswith("audionas_plugin_")]:
        del sys.modules[name]  # only the plugins: a library module imported twice would break isinstance


def test_a_model_registered_in_a_file_or_a_module_is_known_to_the_commands(tmp_path, monkeypatch, capsys,
                                                                           registries):
    # Before (API QA): a model registered from Python was unknown to every command, and no error said why.
    assert main(["profile", "plugin-tiny-a", "--json"]) == 2
    assert capsys.readouterr().err.rstrip().endswith("; one registered in a module of your own: audionas "
                                                     "--import MODULE)")
    (tmp_path / "mine.py").write_text(PLUGIN.format(tag="a"))
    for _ in range(2):  # a second command in the same process does not register it twice
        assert main(["--import", str(tmp_path / "mine.py"), "profile", "plugin-tiny-a", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["params"] == 101 * 40 * 12 + 12
    (tmp_path / "mymod.py").write_text(PLUGIN.format(tag="b"))
    monkeypatch.chdir(tmp_path)  # a module name is found in the working folder, as `python -m` finds it
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert main(["--import", "mymod", "profile", "plugin-tiny-b", "--classes", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 101 * 40 * 3 + 3
    from audionas.nas.darts.operations import OPS

    assert "plugin_conv_a" in OPS and "plugin_conv_b" in OPS


@pytest.mark.parametrize("spec, said", [
    ("nowhere.py", r"--import nowhere.py: file not found \(expected a .py file or a module name\)"),
    ("no_such_module_x", r"--import no_such_module_x: no module named 'no_such_module_x' \(expected a module "
                         r"on the Python path or a .py file\)"),
    ("broken.py", r"--import broken.py: failed while importing it: ZeroDivisionError: division by zero \(set "
                  r"AUDIONAS_DEBUG=1 for a traceback\)")])
def test_a_module_that_cannot_be_imported_is_one_line(tmp_path, monkeypatch, capsys, spec, said):
    import re

    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.py").write_text("x = 1 / 0\n")
    assert main(["--import", spec, "profile", "res15", "--json"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"audionas: error: {said}\n", err), err


def test_the_same_definition_registered_again_replaces_itself_another_is_refused(registries):
    # Before: a notebook cell with @register_model run twice raised ValueError the second time.
    from audionas.models.registry import create_model, register_model
    from audionas.nas.darts.operations import OPS, register_op

    namespace = {"__name__": "__main__"}  # as in a notebook
    for width in (3, 5):  # the cell, edited and run again: its new body counts
        exec(PLUGIN.format(tag="again").replace("nn.Linear(c * h * w, num_classes)",
                                                f"nn.Linear(c * h * w, {width})"), namespace)
        assert create_model("plugin-tiny-again")[1].out_features == width
        assert "plugin_conv_again" in OPS

    def tiny(num_classes=12, input_shape=(1, 101, 40)):
        return None

    def conv(C, stride, affine):
        return None

    with pytest.raises(ValueError, match=r"model 'plugin-tiny-again' registered twice: by __main__\.tiny and "
                                         r"test_plugins\.test_the_same.*\.tiny"):
        register_model("plugin-tiny-again")(tiny)
    with pytest.raises(ValueError, match="op 'plugin_conv_again' registered twice"):
        register_op("plugin_conv_again")(conv)
    with pytest.raises(ValueError, match="model 'res15' registered twice"):
        register_model("res15")(tiny)


def test_a_plugin_file_that_failed_is_imported_again_not_taken_as_done(tmp_path, monkeypatch):
    # a failed import leaves no half-run module behind: the next --import of the file (a second command in the
    # same process) runs it again, so its error is said again rather than the command going on without it
    monkeypatch.delenv("AUDIONAS_DEBUG", raising=False)
    (tmp_path / "broken_twice.py").write_text("x = 1 / 0\n")
    try:
        for _ in range(2):
            with pytest.raises(UserError, match="failed while importing it: ZeroDivisionError"):
                import_plugin(str(tmp_path / "broken_twice.py"))
    finally:
        sys.modules.pop("audionas_plugin_broken_twice", None)
