"""A real `audionas train` process killed with SIGKILL, then the same command again: identical weights."""

import signal
import subprocess
import sys
import time

import pytest
import torch

from audionas.cli import main
from audionas.utils.checkpoint import load_checkpoint


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(speech_commands_root, tmp_path):
    def argv(out):
        return ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(speech_commands_root),
                "--out", str(out), "model=tc-resnet8", "epochs=3", "data.batch_size=4",
                "max_steps_per_epoch=4",
                "checkpoint_every_steps=1", "device=cpu"]

    assert main(argv(tmp_path / "ref")) == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "audionas", *argv(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.pt"
    while proc.poll() is None and not last.exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # it died mid-run, not after finishing
    assert main(argv(killed)) == 0
    a = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")
    b = load_checkpoint(last)
    assert a["step"] == b["step"] == 12
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
