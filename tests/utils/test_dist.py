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
    # auto is the group's device, not this machine's default (no GPU needed: nothing is allocated)
    gpu_rank = DistInfo(rank=1, world_size=2, local_rank=1, device=torch.device("cuda", 1))
    assert resolve_device("auto", gpu_rank) == torch.device("cuda", 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_resolve_device_cuda_without_gpu_is_a_user_error():
    with pytest.raises(UserError, match="'device'"):
        resolve_device("cuda", DistInfo())
    with pytest.raises(UserError, match="'device'"):
        resolve_device("cuda:1", DistInfo(world_size=2))


@pytest.mark.parametrize("text", ["cuda:x", "tpu", "cpu:zero"])
def test_parse_device_refuses_what_is_not_a_device(text):
    from audionas.utils.dist import parse_device

    with pytest.raises(UserError, match=f"--device: '{text}'"):
        parse_device(text, "--device")


def test_an_empty_device_is_auto():
    from audionas.utils.dist import default_device, parse_device

    assert parse_device("") == parse_device("auto") == default_device()


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


@pytest.fixture
def two_ranks(monkeypatch):
    """torch.distributed as seen by rank 0 of two, the other rank holding `other[0]` (flat values)."""
    import audionas.utils.dist as d

    other = [None]

    def all_reduce(t, op=None):  # `other[0]` a list: one value per all_reduce, in order
        value = other[0].pop(0) if isinstance(other[0], list) else other[0]
        t += value.reshape(t.shape).to(t.dtype)

    monkeypatch.setattr(d.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(d.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(d.dist, "all_reduce", all_reduce)
    return other


def test_reductions_over_two_ranks_are_the_sum_and_the_mean(two_ranks):
    from audionas.utils.dist import all_reduce_mean, all_reduce_sum, sync_mean

    two_ranks[0] = torch.tensor([3.0, 5.0])
    assert all_reduce_sum(torch.tensor([1.0, 1.0])).tolist() == [4.0, 6.0]
    assert all_reduce_mean(torch.tensor([1.0, 1.0])).tolist() == [2.0, 3.0]
    two_ranks[0] = torch.tensor([2.0, 4.0, 6.0])
    a, b = sync_mean([torch.tensor([0.0]), torch.tensor([[2.0, 2.0]])])
    assert a.tolist() == [1.0] and b.tolist() == [[3.0, 4.0]]  # (0+2)/2, (2+4)/2, (2+6)/2, shapes kept


def test_average_gradients_counts_a_gradient_missing_on_one_rank_as_zero_and_keeps_none_of_all(two_ranks):
    from audionas.utils.dist import average_gradients

    used, unused_here, unused_everywhere, frozen = (torch.nn.Parameter(torch.zeros(2)) for _ in range(4))
    frozen.requires_grad_(False)
    used.grad = torch.tensor([2.0, 4.0])
    # The other rank's gradients of used and unused_here (zeros for unused_everywhere, which it lacks too),
    # then which of the three it had: one all_reduce.
    two_ranks[0] = torch.tensor([6.0, 8.0, 10.0, 20.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    average_gradients([used, unused_here, unused_everywhere, frozen])
    assert used.grad.tolist() == [4.0, 6.0] and unused_here.grad.tolist() == [5.0, 10.0]
    # As in one process: the optimizer skips it (momentum and weight decay would move a zero gradient).
    assert unused_everywhere.grad is None and frozen.grad is None


def test_thread_limit_is_four_per_core(monkeypatch):
    import audionas.utils.dist as d

    monkeypatch.setattr(d, "available_cores", lambda: 2)
    d.check_threads(8, "threads")
    with pytest.raises(UserError, match="threads: 9 threads for 2 CPU core"):
        d.check_threads(9, "threads")


def test_under_torchrun_each_rank_keeps_its_own_gpu_and_a_cpu_config_on_gpus_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    info = DistInfo(rank=1, world_size=2, local_rank=1, device=torch.device("cuda", 1))
    assert resolve_device("cuda", info) == torch.device("cuda", 1)  # not cuda (= cuda:0 for every rank)
    assert resolve_device("cuda:0", info) == torch.device("cuda", 1)
    hide = r"\(use device=auto or hide the GPUs with CUDA_VISIBLE_DEVICES= to run on CPU\)$"
    with pytest.raises(UserError, match=r"'cpu' under torchrun, but the process group runs on cuda " + hide):
        resolve_device("cpu", info)
    current = []

    def set_device(d):  # as torch's: a device without an index is a ValueError
        if torch.device(d).index is None:
            raise ValueError(f"Expected a torch.device with a specified index or an integer, but got:{d}")
        current.append(d)

    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert resolve_device("cuda:1", DistInfo()) == torch.device("cuda", 1)  # one process: as named
    assert resolve_device("cuda", DistInfo()) == torch.device("cuda", 0)  # the current one, named
    assert current == [torch.device("cuda", 1), torch.device("cuda", 0)]  # made current: no context on cuda:0


def test_more_torchrun_processes_than_gpus_is_a_user_error(monkeypatch):
    import audionas.utils.dist as d

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(d.dist, "init_process_group", lambda **kw: pytest.fail("joined a process group"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with pytest.raises(UserError, match="torchrun: 2 processes on this machine but 1 GPU"):
        d.init_distributed()
    # A launcher that gives each rank one GPU of its own (CUDA_VISIBLE_DEVICES) is fine.
    joined = []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.setattr(torch.cuda, "set_device", lambda dev: None)
    monkeypatch.setattr(d.dist, "init_process_group", lambda **kw: joined.append(kw["backend"]))
    monkeypatch.setattr(d.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(d.dist, "get_world_size", lambda: 2)
    assert d.init_distributed().device == torch.device("cuda", 0) and joined == ["nccl"]
    # Before (GPU QA): under torchrun, which gives every rank the same environment, one visible GPU is
    # shared by both ranks (NCCL's "Duplicate GPU detected" traceback at the first collective).
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    with pytest.raises(UserError, match="torchrun: 2 processes on this machine but 1 GPU"):
        d.init_distributed()


def test_an_nccl_barrier_names_the_rank_gpu(monkeypatch):
    import audionas.utils.dist as d

    seen = []
    monkeypatch.setattr(d.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(d.dist, "get_backend", lambda: "nccl")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(d.dist, "barrier", lambda **kw: seen.append(kw))
    d.barrier()
    monkeypatch.setattr(d.dist, "get_backend", lambda: "gloo")
    d.barrier()
    assert seen == [{"device_ids": [1]}, {}]


def test_a_single_process_joins_no_process_group(monkeypatch):
    import audionas.utils.dist as d

    def refuse(**kw):
        raise AssertionError("init_process_group called for one process")

    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setattr(d.dist, "init_process_group", refuse)
    info = d.init_distributed()
    assert (info.rank, info.world_size, info.distributed, info.is_main) == (0, 1, False, True)


def test_broadcast_buffers_sends_one_flat_tensor_per_dtype_and_copies_every_buffer_back(monkeypatch):
    """Before: one broadcast per buffer (hundreds per supernet step, each a separate NCCL call)."""
    import audionas.utils.dist as d

    calls = []

    def broadcast(t, src):  # rank `src` holds 100, 101, 102, ... in every dtype
        calls.append((t.dtype, t.numel()))
        t.copy_(torch.arange(100, 100 + t.numel()).to(t.dtype))

    monkeypatch.setattr(d.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(d.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(d.dist, "broadcast", broadcast)
    net = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.BatchNorm1d(2))
    d.broadcast_buffers(net)
    assert sorted(calls, key=str) == sorted([(torch.float32, 10), (torch.int64, 2)], key=str)
    floats = [b for b in net.buffers() if b.dtype == torch.float32]
    assert torch.cat([b.reshape(-1) for b in floats]).tolist() == list(range(100, 110))
    assert [int(b) for b in net.buffers() if b.dtype == torch.int64] == [100, 101]


@pytest.mark.parametrize("name", ["WORLD_SIZE", "LOCAL_RANK"])
def test_an_empty_launcher_variable_is_a_single_process(monkeypatch, name):
    # Before (QA): WORLD_SIZE= or LOCAL_RANK= raised ValueError (int('')), where cli.py read empty as unset.
    from audionas.utils.dist import init_distributed

    monkeypatch.setenv(name, "")
    info = init_distributed()
    assert not info.distributed and info.world_size == 1 and info.rank == 0


def test_unused_parameters_are_found_on_a_copy_that_leaves_the_model_and_rng_alone():
    from audionas.models import create_model
    from audionas.nas.darts.genotype import GENOTYPES
    from audionas.utils.dist import unused_parameters

    def net(genotype):
        torch.manual_seed(0)
        return create_model("darts", num_classes=3, input_shape=(1, 16, 8), genotype=genotype, cells=3,
                            channels=4, auxiliary=True, drop_path_prob=0.5)

    x = torch.randn(2, 1, 16, 8)
    assert unused_parameters(net("DARTS_V2"), x) == []  # the aux head too: a training-mode pass
    skips = {**GENOTYPES["DARTS_V2"].to_dict(), "normal_concat": [5]}  # cell output = node 5 alone
    model = net(skips)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    unused = unused_parameters(model.eval(), x)
    # Normal cell 0's nodes 2-4 feed neither node 5 nor the output: their ops (2, 3, 4) get no gradient.
    assert {".".join(n.split(".")[:4]) for n in unused} == {"cells.0.ops.2", "cells.0.ops.3", "cells.0.ops.4"}
    assert not model.training and torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics too


def test_a_callers_own_gloo_group_runs_its_ranks_on_cpu(monkeypatch):
    # Before (GPU QA): a GPU machine gave each rank its GPU whatever group the caller had set up, and gloo
    # then met CUDA tensors in collectives it does not take (all_gather).
    import audionas.utils.dist as d

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(d.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(d.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(d.dist, "get_world_size", lambda: 2)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(d.dist, "get_backend", lambda: "gloo")
    assert d.init_distributed().device == torch.device("cpu")
    monkeypatch.setattr(d.dist, "get_backend", lambda: "nccl")
    assert d.init_distributed().device == torch.device("cuda", 1)


def test_cudnn_autotunes_convolutions_on_a_gpu_only(monkeypatch):
    from audionas.utils.dist import autotune_convolutions

    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    autotune_convolutions(torch.device("cpu"))
    assert torch.backends.cudnn.benchmark is False
    autotune_convolutions(torch.device("cuda", 0))
    assert torch.backends.cudnn.benchmark is True


def test_a_launcher_showing_each_rank_several_gpus_is_checked_against_them(monkeypatch):
    # Catches (per_rank_gpu for any number of visible GPUs, not exactly one): 3 ranks that each see the
    # same 2 GPUs share them, as without CUDA_VISIBLE_DEVICES
    import audionas.utils.dist as d

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(d.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(d.dist, "init_process_group", lambda **kw: pytest.fail("joined a process group"))
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(UserError, match=r"^torchrun: 3 processes on this machine but 2 GPU\(s\)"):
        d.init_distributed()


def test_broadcast_buffers_sends_from_the_rank_it_is_given(monkeypatch):
    # Catches (dist.broadcast(flat, 0) whatever src): the only caller passes the default today
    import audionas.utils.dist as d

    sources = []
    monkeypatch.setattr(d.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(d.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(d.dist, "broadcast", lambda t, src: sources.append(src))
    d.broadcast_buffers(torch.nn.BatchNorm1d(2), src=1)
    assert sources and set(sources) == {1}
