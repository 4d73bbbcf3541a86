import pytest

from audionas.cli import _discover, main


def test_top_level_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "COMMAND" in capsys.readouterr().out


def test_every_subcommand_has_help(capsys):
    paths = [c.path for c in _discover()]
    assert len(paths) == len(set(paths)), "a subcommand is defined twice"
    for path in paths:
        with pytest.raises(SystemExit) as e:
            main([*path, "--help"])
        assert e.value.code == 0, path
        assert capsys.readouterr().out.strip(), path


def test_group_without_subcommand_prints_help_and_fails(capsys):
    groups = {c.path[0] for c in _discover() if len(c.path) == 2}
    for g in groups:
        assert main([g]) == 2


def test_groups_are_described_and_epilog_presets_exist():
    import re
    from pathlib import Path

    import audionas
    from audionas.cli import EPILOG, GROUP_HELP

    assert {c.path[0] for c in _discover() if len(c.path) == 2} == set(GROUP_HELP)
    presets = Path(audionas.__file__).parent / "presets"
    for name in re.findall(r"--preset (\S+)", EPILOG):
        assert (presets / f"{name}.yaml").is_file(), name
