"""A real `audionas train` process killed (SIGKILL) or stopped (SIGTERM, SIGINT), then the same command again:
identical weights."""

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from audionas.cli import main
from audionas.utils.checkpoint import load_checkpoint


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "said"), [(signal.SIGKILL, -signal.SIGKILL, ""),
                                                   (signal.SIGTERM, 143, "audionas: terminated\n"),
                                                   (signal.SIGINT, 130, "audionas: interrupted\n")])
def test_a_kill_or_stop_then_resume_matches_uninterrupted(speech_commands_root, tmp_path, sig, code, said,
                                                          capsys):
    # SIGTERM (a scheduler's stop) before: no handling, exit 143 with no word and temporary files left.
    def argv(out):
        return ["train", "--preset", "kws-tc-resnet-cpu", "--data", str(speech_commands_root),
                "--out", str(out), "model=tc-resnet8", "epochs=3", "data.batch_size=4",
                "max_steps_per_epoch=4",
                "checkpoint_every_steps=1", "device=cpu"]

    assert main(argv(tmp_path / "ref")) == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "audionas", *argv(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    last = killed / "checkpoints" / "last.pt"
    while proc.poll() is None and not last.exists():
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate()
    assert proc.returncode == code  # it stopped mid-run, not after finishing
    if said:
        assert err.endswith(said) and "Traceback" not in err
        assert not [p for p in killed.rglob(".*") if p.name.endswith(".tmp")]  # no temporary file left
    capsys.readouterr()
    assert main(argv(killed)) == 0
    assert f"resuming {killed} at epoch" in capsys.readouterr().err  # the weights cannot tell a fresh start
    a = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")
    b = load_checkpoint(last)
    assert a["step"] == b["step"] == 12
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
