import copy

import pytest
import torch
import torch.nn.functional as F

from audionas.errors import UserError
from audionas.nas.oneshot.fairnas import fairnas_step
from audionas.nas.oneshot.sampler import FairSampler
from audionas.nas.oneshot.supernet import ChunkedBatchNorm2d, Supernet


def test_supernet_has_one_block_per_choice_and_shared_stem_head(tiny_space):
    net = Supernet(tiny_space)
    assert [len(layer) for layer in net.blocks] == tiny_space.n_choices
    assert sum(isinstance(m, ChunkedBatchNorm2d) for m in net.modules()) == 2  # stem BN + head BN


def test_choice_blocks_get_mbnets_kaiming_fan_out_init(tiny_space):
    # Every choice block starts like a freshly built MBNet (torchvision MobileNetV2 init): layer 1's six
    # projection convs (hidden -> 8, 1x1) are N(0, 2 / fan_out) = N(0, 0.5^2); PyTorch's default init would
    # give std 1 / sqrt(3 * hidden) < 0.17.
    torch.manual_seed(0)
    net = Supernet(tiny_space)
    w = torch.cat([b.project[0].weight.detach().flatten() for b in net.blocks[1]])
    assert len(w) == 8 * 4 * (3 + 6) * 3
    assert float(w.std()) == pytest.approx(0.5, rel=0.1)


@pytest.mark.parametrize("channels_last, momentum", [(False, 0.1), (True, 0.1), (False, None)])
def test_batched_step_equals_sequential_paths(tiny_space, channels_last, momentum):
    # the reference is the algorithm as written: sequential single paths, NCHW; momentum None (a cumulative
    # average, not used by any preset): before (review), the shared stem's BN counted one batch, not M
    torch.manual_seed(0)
    net = Supernet(tiny_space)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = momentum
    ref = copy.deepcopy(net)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    sampler = FairSampler(tiny_space.n_choices, seed=0)
    for _ in range(2):  # the second step, on another batch, starts from the first's running statistics
        x, y = torch.randn(4, 1, 12, 8), torch.randint(0, 5, (4,))
        paths = sampler.sample()
        net.zero_grad()
        ref.zero_grad()
        loss = fairnas_step(net, x, y, paths, batched=True)
        # the logged train_loss: the same sum over the M paths either way
        assert abs(float(loss) - float(fairnas_step(ref, x, y, paths, batched=False))) <= 1e-5
    diff = max((a.grad - b.grad).abs().max().item() for a, b in zip(net.parameters(), ref.parameters()))
    assert diff <= 1e-5
    assert all(p.grad is not None for p in net.parameters())  # every choice got a gradient
    for (name, a), b in zip(net.named_buffers(), ref.buffers()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name  # BN running stats end equal


def test_chunked_bn_differs_from_plain_bn_on_the_stacked_batch(tiny_space):
    # the reason ChunkedBatchNorm2d exists: one BN over 6N samples gives other gradients
    torch.manual_seed(0)
    net = Supernet(tiny_space)
    x = torch.randn(4, 1, 12, 8)
    paths = FairSampler(tiny_space.n_choices, seed=0).sample()
    a = net(x.repeat(6, 1, 1, 1), paths)
    for bn in net._chunked:
        bn.forward = torch.nn.BatchNorm2d.forward.__get__(bn)
    b = net(x.repeat(6, 1, 1, 1), paths)
    assert not torch.allclose(a, b, atol=1e-4)


def test_single_path_equals_extracted_network(tiny_space):
    torch.manual_seed(0)
    net = Supernet(tiny_space).eval()
    chrom = [2, 5, 1]
    x = torch.randn(3, 1, 12, 8)
    with torch.no_grad():
        assert torch.allclose(net(x, chrom), net.extract(chrom).eval()(x), atol=1e-6)
        # several candidates in one pass == one at a time (eval mode)
        both = net(x.repeat(2, 1, 1, 1), [chrom, [0, 0, 0]])
        assert torch.allclose(both[:3], net(x, chrom), atol=1e-6)
        assert torch.allclose(both[3:], net(x, [0, 0, 0]), atol=1e-6)


def test_loss_is_sum_of_path_losses(tiny_space):
    torch.manual_seed(1)
    net = Supernet(tiny_space)
    x, y = torch.randn(4, 1, 12, 8), torch.randint(0, 5, (4,))
    paths = FairSampler(tiny_space.n_choices, seed=0).sample()
    total = fairnas_step(net, x, y, paths, batched=True)
    ref = sum(F.cross_entropy(copy.deepcopy(net)(x, p), y).item() for p in paths)
    assert abs(float(total) - ref) < 1e-4


def test_candidates_sharing_a_choice_in_one_pass_keep_their_own_outputs(tiny_space):
    # the evaluator's batched pass: chunks that pick the same block at a layer run through it together and
    # must come back to their own candidates (here paths 0 and 2 share layer 2's choice after different
    # layer-0/1 choices; paths 1 and 3 share layers 0 and 1)
    torch.manual_seed(0)
    net = Supernet(tiny_space).eval()
    paths = [[0, 1, 2], [3, 3, 4], [5, 0, 2], [3, 3, 0]]
    x = torch.randn(3, 1, 12, 8)
    with torch.no_grad():
        together = net(x.repeat(4, 1, 1, 1), paths).chunk(4)
        for p, out in zip(paths, together):
            torch.testing.assert_close(out, net(x, p), atol=1e-6, rtol=1e-5)


def test_predict_paths_gives_each_paths_own_classes(tiny_space):
    torch.manual_seed(0)
    net = Supernet(tiny_space).eval()
    paths = [[0, 1, 2], [3, 3, 4], [5, 0, 2]]
    x = torch.randn(7, 1, 12, 8)
    got = net.predict_paths(x, paths)
    assert len(got) == 3 and all(g.shape == (7,) and g.device.type == "cpu" for g in got)
    with torch.no_grad():
        assert all(torch.equal(g, net(x, p).argmax(1)) for g, p in zip(got, paths))


def test_an_input_of_another_frequency_size_is_refused_as_mbnet_refuses_it(tiny_space):
    net = Supernet(tiny_space).eval()
    x = torch.randn(2, 1, 12, 7)  # time_axis h: (N, C, time, freq), 8 bands expected
    with pytest.raises(UserError, match=r"^Supernet: input \(2, 1, 12, 7\) does not match input_shape "):
        net(x, [0, 0, 0])
    with pytest.raises(UserError, match=r"^MBNet: input \(2, 1, 12, 7\) does not match input_shape "):
        net.extract([0, 0, 0])(x)


def test_a_batch_that_does_not_split_into_one_chunk_per_path_is_refused(tiny_space):
    # before the check: x.chunk(2) of 5 items gives chunks of 3 and 2, two candidates scored on other clips
    net = Supernet(tiny_space).eval()
    with pytest.raises(UserError, match="batch of 5 does not split into 2 equal chunks"):
        net(torch.randn(5, 1, 12, 8), [[0, 0, 0], [1, 1, 1]])
    assert net(torch.randn(5, 1, 12, 8), [[0, 0, 0], [1, 1, 1]], shared_input=True).shape == (10, 5)
