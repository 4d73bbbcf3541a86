"""README.md's Python API block runs as it stands."""

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def test_the_python_api_block_runs(speech_commands_root, tmp_path, monkeypatch, capsys):
    text = README.read_text()
    section = text[text.index("## Python API"):text.index("## Conventions")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "speech_commands_synth").symlink_to(speech_commands_root)  # the demo's place
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(blocks[0], "README.md (Python API)", "exec"), scope)  # our own README, not user input
    assert tuple(scope["logits"].shape) == (2, 12)
    assert (tmp_path / "runs" / "api" / "final.pt").is_file()
    assert 0.0 <= scope["report"]["accuracy"] <= 1.0
    assert scope["trained"].classes[:2] == ["_silence_", "_unknown_"]
    printed = capsys.readouterr().out
    assert "'tc-resnet14-1.5'" in printed and " 303000 " in printed  # the model list, then its parameters
