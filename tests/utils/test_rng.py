import pytest

from audionas.cli import main


@pytest.mark.parametrize("cmd", [["train", "--preset", "kws-tc-resnet-cpu"],
                                 ["search", "supernet", "--preset", "kws-fairnas-cpu"],
                                 ["search", "darts", "--preset", "kws-nas1-cpu"]])
@pytest.mark.parametrize("seed,expected", [(2**32, "an integer in 0..4294967295"),
                                           (10**20, "a 64-bit integer")])
def test_a_seed_numpy_cannot_take_is_a_config_error(tmp_path, capsys, cmd, seed, expected):
    assert main([*cmd, "--data", str(tmp_path), "--out", str(tmp_path / "run"), f"seed={seed}"]) == 2
    err = capsys.readouterr().err
    assert err == f"audionas: error: config field 'seed': expected {expected}, got {seed}\n"
    assert not (tmp_path / "run").exists()


def test_cuda_rng_state_is_the_run_devices_own(monkeypatch):
    """A run on cuda:1 saves cuda:1's CUDA RNG state and restores it to cuda:1 only (before: every device's
    states were saved and all restored, so a rank restored rank 0's view of its device, and a machine with
    fewer GPUs failed). Simulated: this machine has no GPU."""
    import torch

    from audionas.utils.rng import get_rng_state, set_rng_state

    dev = torch.device("cuda", 1)
    saved = torch.arange(16, dtype=torch.uint8)
    calls = []
    cuda = torch.cuda
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "get_rng_state", lambda device="cuda": calls.append(("get", device)) or saved)
    monkeypatch.setattr(cuda, "set_rng_state", lambda s, device="cuda": calls.append(("set", device, s)))
    monkeypatch.setattr(cuda, "get_rng_state_all", lambda: calls.append(("get_all",)))
    monkeypatch.setattr(cuda, "set_rng_state_all", lambda states: calls.append(("set_all",)))
    state = get_rng_state(dev)
    assert calls == [("get", dev)] and state["cuda"] is saved
    calls.clear()
    set_rng_state(state, dev)
    assert calls == [("set", dev, saved)]
    calls.clear()
    set_rng_state(state, torch.device("cpu"))  # a GPU run resumed on the CPU: the CUDA state is not needed
    assert calls == [] and "cuda" not in get_rng_state(torch.device("cpu"))
