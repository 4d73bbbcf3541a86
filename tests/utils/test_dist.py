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
