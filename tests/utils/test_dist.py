import pytest
import torch

from audionas.errors import UserError
from audionas.utils.dist import DistInfo, resolve_device


def test_resolve_device_single_process():
    assert resolve_device("auto", DistInfo(device=torch.device("cpu"))) == torch.device("cpu")
    assert resolve_device("cpu", DistInfo()) == torch.device("cpu")


def test_resolve_device_under_torchrun_uses_the_process_group_device():
    info = DistInfo(rank=1, world_size=2, local_rank=1, device=torch.device("cpu"))
    assert resolve_device("cpu", info) == torch.device("cpu")
    assert resolve_device("auto", info) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_resolve_device_cuda_without_gpu_is_a_user_error():
    with pytest.raises(UserError, match="'device'"):
        resolve_device("cuda", DistInfo())
    with pytest.raises(UserError, match="'device'"):
        resolve_device("cuda:1", DistInfo(world_size=2))


@pytest.mark.parametrize("text", ["cuda:x", "tpu", "cpu:zero", ""])
def test_parse_device_refuses_what_is_not_a_device(text):
    from audionas.utils.dist import parse_device

    if text == "":
        assert parse_device(text) == parse_device("auto")
        return
    with pytest.raises(UserError, match=f"--device: '{text}'"):
        parse_device(text, "--device")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_parse_device_cuda_without_gpu_is_a_user_error():
    from audionas.utils.dist import parse_device

    with pytest.raises(UserError, match="CUDA is not available"):
        parse_device("cuda:0", "--device")


@pytest.mark.parametrize("text", ["cuda:x", "tpu"])
def test_configs_refuse_a_device_name_when_loaded(text):
    from audionas.config import load_config
    from audionas.nas.darts.config import DartsSearchConfig
    from audionas.nas.oneshot.config import SupernetConfig
    from audionas.train.config import TrainConfig

    for cls in (TrainConfig, DartsSearchConfig, SupernetConfig):
        with pytest.raises(UserError, match=f"config field 'device': '{text}' is not a device"):
            load_config(cls, None, [f"device={text}"])


def test_process_group_outlasts_rank_zero_evaluating_alone(monkeypatch):
    import datetime

    import audionas.utils.dist as d

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(d.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(d.dist, "init_process_group", lambda **kw: seen.update(kw))
    monkeypatch.setattr(d.dist, "get_rank", lambda: 0)
    monkeypatch.setattr(d.dist, "get_world_size", lambda: 2)
    assert d.init_distributed().world_size == 2
    assert seen["timeout"] >= datetime.timedelta(hours=1)  # NCCL's default, 10 min, is too short
