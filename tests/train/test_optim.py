"""Learning-rate schedules (warm-up then constant / cosine / step) and EMA arithmetic."""

import math
import re

import pytest
import torch
import torch.nn as nn

from audionas.config import from_dict
from audionas.errors import UserError
from audionas.train.config import OptimConfig
from audionas.train.optim import LRSchedule, ModelEMA, build_optimizer, build_scheduler, param_groups


def cfg(**kw) -> OptimConfig:
    return from_dict(OptimConfig, kw)


def test_warmup_then_constant():
    s = LRSchedule(cfg(lr=0.2, schedule="constant", warmup_epochs=1), steps_per_epoch=4, epochs=3)
    assert [s.lr(i) for i in range(6)] == pytest.approx([0.05, 0.1, 0.15, 0.2, 0.2, 0.2])


def test_warmup_then_cosine_to_min_lr():
    s = LRSchedule(cfg(lr=1.0, schedule="cosine", warmup_epochs=1, min_lr=0.1), steps_per_epoch=2, epochs=3)
    # warm-up: steps 0, 1; cosine over the remaining 4 steps from 1.0 towards 0.1
    want = [0.5, 1.0] + [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(4)]
    assert [s.lr(i) for i in range(6)] == pytest.approx(want)
    assert s.lr(6) == pytest.approx(0.1) and s.lr(9) == pytest.approx(0.1)  # past the end: stays at the floor


def test_step_milestones_in_epochs_count_absolute_steps():
    s = LRSchedule(cfg(lr=0.1, schedule="step", milestones=[1.5, 2], gamma=0.1, warmup_epochs=0.5),
                   steps_per_epoch=4, epochs=3)
    got = [s.lr(i) for i in range(12)]
    assert got == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001, 0.001])


def test_step_size_schedule():
    s = LRSchedule(cfg(lr=1.0, schedule="step", step_size=1, gamma=0.5), steps_per_epoch=2, epochs=3)
    assert [s.lr(i) for i in range(6)] == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25])


@pytest.mark.parametrize("step_size,spe,epochs", [(1, 2, 3), (0.5, 3, 4), (0.7, 7, 5), (1.3, 5, 9),
                                                  (0.25, 1, 3), (2.5, 4, 10), (0.1, 3, 2)])
def test_counted_step_size_milestones_equal_the_listed_ones(step_size, spe, epochs):
    s = LRSchedule(cfg(lr=1.0, schedule="step", step_size=step_size, gamma=0.5), spe, epochs)
    listed = [int(round(step_size * k * spe)) for k in range(1, int(epochs / step_size) + 1)]
    for step in range(spe * epochs + 2):
        assert s.milestones_passed(step) == sum(1 for m in listed if step >= m), step


def test_a_long_run_with_a_short_step_size_builds_at_once():
    s = LRSchedule(cfg(lr=1.0, schedule="step", step_size=0.5, gamma=0.5), steps_per_epoch=10**6,
                   epochs=100_000)  # 200,000 milestones: counted, never listed
    assert s.milestones_passed(10**11) == 200_000 and s.lr(10**6 - 1) == 0.5


@pytest.mark.parametrize("field,value,expected", [
    ("lr", 1e300, "a learning rate in (0, 100]"), ("lr", 0, "a learning rate in (0, 100]"),
    ("momentum", 1.0, "0 <= momentum < 1"), ("weight_decay", 1e300, "a number in [0, 1]"),
    ("gamma", 2.0, "a number in [0, 1]"), ("weight_decay", -1e-4, "a number in [0, 1]")])
def test_optimizer_numbers_that_would_overflow_or_diverge_are_refused(field, value, expected):
    with pytest.raises(UserError, match=re.escape(f"config field 'optim.{field}': expected {expected}")):
        cfg(**{field: value}).validate()


def test_scheduler_drives_optimizer_and_round_trips():
    p = nn.Parameter(torch.zeros(1))
    c = cfg(lr=1.0, schedule="cosine", warmup_epochs=1)
    opt = build_optimizer([p], c)
    sch = build_scheduler(opt, c, steps_per_epoch=3, epochs=2)
    ref = LRSchedule(c, 3, 2)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    assert seen == pytest.approx([ref.lr(i) for i in range(4)])
    opt2 = build_optimizer([p], c)
    sch2 = build_scheduler(opt2, c, 3, 2)
    sch2.load_state_dict(sch.state_dict())
    assert sch2.get_last_lr() == pytest.approx([ref.lr(4)])


def test_optimizer_kinds():
    p = [nn.Parameter(torch.zeros(1))]
    assert isinstance(build_optimizer(p, cfg(name="sgd", nesterov=True)), torch.optim.SGD)
    assert isinstance(build_optimizer(p, cfg(name="adam", lr=1e-3)), torch.optim.Adam)
    assert isinstance(build_optimizer(p, cfg(name="adamw", lr=1e-3)), torch.optim.AdamW)


def test_ema_math_and_buffers():
    model = nn.Sequential(nn.Linear(2, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    ema = ModelEMA(model, decay=0.9)
    for target in (3.0, 5.0):
        with torch.no_grad():
            model[0].weight.fill_(target)
            model[1].running_mean.fill_(target)
        ema.update(model)
    # 1 -> 0.9 * 1 + 0.1 * 3 = 1.2 -> 0.9 * 1.2 + 0.1 * 5 = 1.58
    assert torch.allclose(ema.module[0].weight, torch.full((1, 2), 1.58))
    assert torch.equal(ema.module[1].running_mean, torch.tensor([5.0]))  # buffers copied
    assert not any(p.requires_grad for p in ema.module.parameters())
    assert torch.equal(model[0].weight, torch.full((1, 2), 5.0))  # the live model is untouched


def test_ema_copy_repacks_rnn_weights(monkeypatch):
    """The EMA's deepcopy gives every GRU weight its own storage; the copy must call flatten_parameters
    (on cuDNN it packs them into one chunk again; no GPU here, so the call is what is checked)."""
    model = nn.Sequential(nn.GRU(4, 8, num_layers=2, batch_first=True), nn.Linear(8, 2))
    flattened = []
    monkeypatch.setattr(nn.GRU, "flatten_parameters", lambda self: flattened.append(self))
    ema = ModelEMA(model, decay=0.9)
    assert flattened == [ema.module[0]]


@pytest.mark.parametrize("kw", [{"name": "rmsprop"}, {"schedule": "poly"}, {"schedule": "step"},
                                {"ema_decay": 1.0}, {"lr": 0}, {"weight_decay": -1}, {"momentum": -0.5},
                                {"betas": [0.9, 1.5]}, {"weight_decay_on": "bn"}])
def test_bad_optim_config(kw):
    from audionas.errors import UserError

    with pytest.raises(UserError, match="optim"):
        cfg(**kw)


def test_nesterov_without_momentum_is_a_config_error():
    from audionas.errors import UserError

    with pytest.raises(UserError, match=r"'optim.nesterov': Nesterov needs momentum; set optim.momentum > 0"):
        cfg(name="sgd", nesterov=True, momentum=0)
    assert cfg(name="adam", nesterov=True, momentum=0).nesterov  # sgd only: ignored by adam


def test_a_cosine_floor_above_the_lr_is_a_config_error():
    from audionas.config import load_config
    from audionas.errors import UserError
    from audionas.nas.darts.config import DartsSearchConfig

    with pytest.raises(UserError, match=r"'optim.min_lr': the cosine floor 1.0 is above optim.lr 0.01; "):
        cfg(schedule="cosine", lr=0.01, min_lr=1)
    assert cfg(schedule="constant", lr=0.01, min_lr=1).min_lr == 1  # the floor of cosine only
    with pytest.raises(UserError, match=r"'w_lr_min': the cosine floor 1.0 is above w_lr 0.025; expected"):
        load_config(DartsSearchConfig, "kws-nas1-cpu", ["w_lr_min=1"])


@pytest.mark.parametrize("ms", [[-1], [0, 5], [5, 5], [8, 3], [1e308], [2, 100_001]])
def test_milestones_must_be_increasing_epochs_above_zero(ms):
    from audionas.errors import UserError

    with pytest.raises(UserError, match=r"'optim.milestones': expected increasing epochs in \(0, 100,000\]"):
        cfg(schedule="step", milestones=ms)


@pytest.mark.parametrize("field, value", [("warmup_epochs", 1e308), ("warmup_epochs", 100_001),
                                          ("warmup_epochs", -1), ("step_size", 5e-324), ("step_size", -2),
                                          ("step_size", 1e308)])
def test_schedule_numbers_that_can_only_be_typos_are_refused(field, value):
    # Before, 1e308 warm-up epochs or a 5e-324 step_size passed and crashed the schedule with OverflowError.
    from audionas.errors import UserError

    with pytest.raises(UserError, match=rf"^config field 'optim.{field}': expected 0"):
        cfg(schedule="step", **{field: value})
    assert cfg(schedule="step", warmup_epochs=100_000, step_size=0.001).step_size == 0.001


def test_milestones_the_run_never_reaches_are_warned_about():
    with pytest.warns(UserWarning, match=r"optim.milestones \[45, 90\] are at or after the last epoch \(5\)"):
        LRSchedule(cfg(schedule="step", milestones=[2, 45, 90]), 10, 5)


def test_warmup_longer_than_the_run_is_warned_about():
    with pytest.warns(UserWarning, match=r"optim.warmup_epochs 8 is longer than the run \(5 epochs\)"):
        LRSchedule(cfg(warmup_epochs=8), 10, 5)
    with pytest.warns(UserWarning, match=r"optim.warmup_epochs 3 is longer than the run \(1 epoch\)"):
        LRSchedule(cfg(warmup_epochs=3), 10, 1)


def test_step_schedule_with_gamma_zero_is_refused():
    from audionas.errors import UserError

    with pytest.raises(UserError, match=r"'optim.gamma': expected > 0 with the step schedule"):
        cfg(schedule="step", milestones=[2], gamma=0)
    cfg(schedule="cosine", gamma=0)  # unused by cosine: no reason to refuse


def _steps(opt, p, grads):
    out = []
    for g in grads:
        p.grad = torch.full_like(p, g)
        opt.step()
        out.append(float(p))
    return out


def test_sgd_applies_weight_decay_momentum_and_nesterov():
    p = nn.Parameter(torch.ones(1))
    # zero gradient: only the decay moves the weight, p <- p - lr * wd * p
    assert _steps(build_optimizer([p], cfg(name="sgd", lr=0.1, momentum=0, weight_decay=0.01)), p,
                  [0.0]) == pytest.approx([1 - 0.001])
    # a constant gradient 1 at lr 1, momentum 0.9: buffers 1, 1.9; heavy ball moves by the buffer,
    # Nesterov by g + 0.9 * buffer
    p = nn.Parameter(torch.zeros(1))
    assert _steps(build_optimizer([p], cfg(name="sgd", lr=1.0, momentum=0.9)), p, [1, 1]) == pytest.approx(
        [-1, -2.9])
    p = nn.Parameter(torch.zeros(1))
    assert _steps(build_optimizer([p], cfg(name="sgd", lr=1.0, momentum=0.9, nesterov=True)), p,
                  [1, 1]) == pytest.approx([-1.9, -4.61])


def test_adam_weight_decay_is_l2_and_adamw_decoupled():
    # zero gradient, weight 1, wd 0.1, lr 0.01. Adam (L2, the ASC recipe): the decay enters the gradient, and
    # Adam's first step moves by lr whatever its size. AdamW: p <- p * (1 - lr * wd), then no Adam step.
    p = nn.Parameter(torch.ones(1))
    assert _steps(build_optimizer([p], cfg(name="adam", lr=0.01, weight_decay=0.1)), p, [0.0]) == \
        pytest.approx([1 - 0.01], rel=1e-5)
    p = nn.Parameter(torch.ones(1))
    assert _steps(build_optimizer([p], cfg(name="adamw", lr=0.01, weight_decay=0.1)), p, [0.0]) == \
        pytest.approx([1 - 0.001], rel=1e-6)
    assert build_optimizer([p], cfg(name="adam", betas=[0.5, 0.9])).defaults["betas"] == (0.5, 0.9)
    assert build_optimizer([p], cfg(name="adamw", betas=[0.5, 0.9])).defaults["betas"] == (0.5, 0.9)


def test_warmup_length_is_rounded_not_truncated():
    # 0.29 * 100 = 28.999999999999996 in floating point: the warm-up is 29 updates, not 28
    s = LRSchedule(cfg(lr=1.0, schedule="constant", warmup_epochs=0.29), steps_per_epoch=100, epochs=2)
    assert s.warmup == 29 and s.lr(27) == pytest.approx(28 / 29) and s.lr(28) == 1.0


def test_milestones_in_epochs_are_rounded_to_steps_not_truncated():
    # 0.29 * 100 = 28.999999999999996: the lr drops at update 29, as the warm-up length rounds
    s = LRSchedule(cfg(lr=1.0, schedule="step", milestones=[0.29], gamma=0.1), steps_per_epoch=100, epochs=2)
    assert s.lr(28) == 1.0 and s.lr(29) == pytest.approx(0.1)


def test_param_groups_split_by_dimensions_and_leave_out_an_empty_group():
    """weight_decay_on=weights: conv and linear weights keep the optimiser's decay, BN scales and shifts and
    the biases get 0; a model without 1-D parameters gives one group, not one plus an empty one."""
    def named(model, **kw):
        names = {id(p): n for n, p in model.named_parameters()}
        groups = param_groups(model, cfg(**kw))
        return [([names[id(p)] for p in g["params"]], g.get("weight_decay")) for g in groups]

    net = nn.Sequential(nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    assert named(net) == [(["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"], None)]
    assert named(net, weight_decay=0.1, weight_decay_on="weights") == [
        (["0.weight", "2.weight"], None), (["0.bias", "1.weight", "1.bias", "2.bias"], 0.0)]
    assert named(nn.Linear(3, 2, bias=False), weight_decay_on="weights") == [(["weight"], None)]


def test_a_milestone_at_the_last_epoch_is_warned_about_too():
    # A milestone equal to epochs lowers the lr only after the last step: it never takes effect.
    with pytest.warns(UserWarning, match=r"optim.milestones \[5\] are at or after the last epoch \(5\)"):
        s = LRSchedule(cfg(schedule="step", milestones=[2, 5]), 10, 5)
    assert s.milestones_passed(s.total - 1) == 1
