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


def test_the_front_member_recipe_the_readme_gives_builds_the_searched_network(tmp_path):
    # Before (API QA): resolve_chromosome refused a Path, and the README's recipe left out num_classes and
    # input_shape, so the network built did not take the searched inputs.
    import json

    import torch

    from audionas.config import load_config
    from audionas.models import create_model
    from audionas.nas.oneshot.config import SupernetConfig
    from audionas.nas.oneshot.space import load_space, resolve_chromosome
    from audionas.profile import count_macs

    space = load_space(load_config(SupernetConfig, "kws-fairnas-cpu").space)
    chrom = [0] * len(space.layers)
    macs = count_macs(space.build(chrom), tuple(space.input_shape))
    (tmp_path / "pareto.json").write_text(json.dumps({"algorithm": "nsga2", "task": space.task, "space":
        space.to_dict(), "front": [{"chromosome": chrom, "score": 0.5, "macs": macs, "params": 1}]}))
    spec = resolve_chromosome(tmp_path / "pareto.json#0")  # a Path, as Python code holds it
    net = create_model(spec["model"], num_classes=spec["num_classes"], input_shape=spec["input_shape"],
                       **spec["model_args"])
    assert count_macs(net, tuple(spec["input_shape"])) == macs
    assert net.eval()(torch.zeros(1, *spec["input_shape"])).shape == (1, spec["num_classes"])
    assert 'num_classes=spec["num_classes"], input_shape=spec["input_shape"]' in README.read_text()
