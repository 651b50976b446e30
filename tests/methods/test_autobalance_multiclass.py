"""AutoBalance over every label (`--method autobalance_ce`, `--task multiclass`) against the reference
code, ucr-optml/AutoBalance (commit 775f85d: core/utils.py, core/trainer.py, loss_search.py,
dataset/cifar10.py): the K-way parametric loss and the upper loss line by line, the hypergradient
through them by finite differences, the held-out split per class, offsets that move as logit
adjustment's, the score on the raw outputs, the refusals and a run's record. The bilevel machinery
itself (schedules, Neumann series, stages, retraining) is the binary `autobalance`'s, pinned in
tests/methods/test_autobalance.py; checkpoint resume in tests/engine/test_resume.py."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.records import record_problem
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from benchmarks.methods import create_method, resolve_params
from benchmarks.methods.autobalance import balanced_ce, hypergradient, parametric_ce, validation_weights
from benchmarks.methods.multiclass import ClassContext, critical_logit
from tests.conftest import TINY

CPU = torch.device("cpu")


def loss_adjust_cross_entropy(logits, targets, params, group_size=1):
    """core/utils.py `loss_adjust_cross_entropy`, line by line: `dy = params[0]`; `ly = params[1]`;
    `if group_size != 1: new_dy = dy.repeat_interleave(group_size)` ... `x = logits*F.sigmoid(new_dy)+new_ly`;
    `else: x = logits*F.sigmoid(dy)+ly`; `if len(params) == 3: wy = params[2]`; `loss =
    F.cross_entropy(x, targets, weight=wy)`; `else: loss = F.cross_entropy(x, targets)`."""
    dy = params[0]
    ly = params[1]
    if group_size != 1:
        new_dy = dy.repeat_interleave(group_size)
        new_ly = ly.repeat_interleave(group_size)
        x = logits * torch.sigmoid(new_dy) + new_ly
    else:
        x = logits * torch.sigmoid(dy) + ly
    if len(params) == 3:
        wy = params[2]
        loss = F.cross_entropy(x, targets, weight=wy)
    else:
        loss = F.cross_entropy(x, targets)
    return loss


def reference_cross_entropy(logits, targets, params, group_size=1):
    """core/utils.py `cross_entropy` (the upper criterion and the evaluation loss): `if len(params) == 3:
    return F.cross_entropy(logits, targets, weight=params[2])`; `else: return F.cross_entropy(logits, targets)`."""
    if len(params) == 3:
        return F.cross_entropy(logits, targets, weight=params[2])
    return F.cross_entropy(logits, targets)


def get_val_w(num_val_samples, balance_val=False):
    """core/utils.py `get_val_w`: `if args["balance_val"]: w_val = torch.ones([num_classes])`; `else:
    w_val=np.sum(num_val_samples)/num_val_samples`; `w_val=w_val/np.linalg.norm(w_val)`."""
    if balance_val:
        return torch.ones(len(num_val_samples), dtype=torch.float64)
    w_val = np.sum(num_val_samples) / np.asarray(num_val_samples, dtype=np.float64)
    w_val = w_val / np.linalg.norm(w_val)
    return torch.tensor(w_val, dtype=torch.float64)


def batch(k: int = 5, n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=gen, dtype=torch.float64) * 2, torch.randint(0, k, (n,), generator=gen)


def loss_parameters(k: int = 5, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(k, generator=gen, dtype=torch.float64) for _ in range(2)) + (
        torch.rand(k, generator=gen, dtype=torch.float64) + 0.2,)


def test_parametric_loss_is_the_reference_loss_adjust_cross_entropy():
    """Per-class multipliers sigmoid(dy_k) and offsets ly_k on each class's logit (not indexed by the
    target), weighted by wy as `F.cross_entropy(weight=wy)`; with unit weights the reference's
    two-parameter branch; over a mask, the reference's loss of the masked samples alone."""
    logits, targets = batch()
    dy, ly, wy = loss_parameters()
    ones = torch.ones(len(targets), dtype=torch.float64)
    ours = parametric_ce(logits, targets, dy, ly, wy.log(), ones)
    assert float(ours) == pytest.approx(float(loss_adjust_cross_entropy(logits, targets, [dy, ly, wy])), rel=1e-12)
    unweighted = parametric_ce(logits, targets, dy, ly, torch.zeros_like(wy), ones)
    assert float(unweighted) == pytest.approx(float(loss_adjust_cross_entropy(logits, targets, [dy, ly])), rel=1e-12)
    mask = (torch.arange(len(targets)) % 3 == 0).double()
    chosen = mask.bool()
    masked = loss_adjust_cross_entropy(logits[chosen], targets[chosen], [dy, ly, wy])
    assert float(parametric_ce(logits, targets, dy, ly, wy.log(), mask)) == pytest.approx(float(masked), rel=1e-12)
    assert float(parametric_ce(logits, targets, torch.full_like(dy, 50.0), torch.zeros_like(ly), torch.zeros_like(wy),
                               ones)) == pytest.approx(float(F.cross_entropy(logits, targets)), rel=1e-12)  # Delta = 1


def test_upper_loss_is_the_reference_cross_entropy_with_get_val_w():
    """loss_search.py: `up_criterion=cross_entropy` with `up_params=[dy, ly, w_val]` and `w_val =
    get_val_w(args, num_val_samples)` (`balance_val: false` in configs/cifar10/dyly_no_init/1.yaml):
    the raw logits, no dy or ly. Our weights 1/n_k are get_val_w's up to its norm, which the
    weighted mean divides out."""
    logits, targets = batch()
    held_out = [11, 7, 5, 2, 1]
    ours = validation_weights(torch.tensor(held_out))
    reference = get_val_w(held_out)
    assert torch.allclose(ours.double() / ours.double().norm(), reference, rtol=1e-6)
    mask = (torch.arange(len(targets)) % 2 == 0).double()
    chosen = mask.bool()
    expected = reference_cross_entropy(logits[chosen], targets[chosen], [None, None, reference])
    assert float(balanced_ce(logits, targets, ours.double(), mask)) == pytest.approx(float(expected), rel=1e-6)


def lower_objective(theta, x, y, phi, reg, k):
    logits = x @ theta[:2 * k].view(2, k) + theta[2 * k:]
    ones = torch.ones(len(y), dtype=theta.dtype)
    return parametric_ce(logits, y, phi[:k], phi[k:2 * k], phi[2 * k:], ones) + 0.5 * reg * theta.pow(2).sum()


def upper_objective(theta, x, y, weights, k):
    return balanced_ce(x @ theta[:2 * k].view(2, k) + theta[2 * k:], y, weights, torch.ones(len(y), dtype=theta.dtype))


def gaussian_classes(counts: tuple[int, ...], gen: torch.Generator,
                     dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """One 2-D Gaussian per class, means 1.5 apart from 0 on a circle: softmax regression is well specified."""
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    angles = 2 * math.pi * y.to(dtype) / len(counts)
    return 1.5 * torch.stack([angles.cos(), angles.sin()], 1) + torch.randn(len(y), 2, generator=gen, dtype=dtype), y


def solve_lower(x, y, phi, reg, k) -> torch.Tensor:
    """The exact minimizer of the (strongly convex) lower objective, by Newton's method."""
    theta = torch.zeros(3 * k, dtype=torch.float64)
    for _ in range(30):
        objective = lambda t: lower_objective(t, x, y, phi, reg, k)  # noqa: E731
        gradient = torch.autograd.functional.jacobian(objective, theta)
        theta = theta - torch.linalg.solve(torch.autograd.functional.hessian(objective, theta), gradient)
    return theta


def test_hypergradient_through_the_k_way_losses_matches_finite_differences():
    """The shared implicit hypergradient (`hyper_grad=-indirect_grad`, core/trainer.py) with the
    K-way lower and upper losses, against central differences of the exactly re-solved lower
    problem (L2-regularized softmax regression, float64), for every multiplier, offset and weight."""
    k, reg = 3, 0.1
    gen = torch.Generator().manual_seed(5)
    x, y = gaussian_classes((30, 12, 6), gen, torch.float64)
    x_val, y_val = gaussian_classes((10, 6, 4), gen, torch.float64)
    weights = validation_weights(torch.tensor([10, 6, 4])).double()
    phi = torch.tensor([0.5, 1.5, -0.3, 0.3, -0.2, 0.1, 0.1, 0.4, -0.2], dtype=torch.float64)
    theta = solve_lower(x, y, phi, reg, k).requires_grad_()
    hyper = phi.clone().requires_grad_()
    (ours,) = hypergradient(lower_objective(theta, x, y, hyper, reg, k), upper_objective(theta, x_val, y_val, weights, k),
                            [theta], [hyper], terms=400, lr=1.0)
    eps = 1e-6
    finite = torch.stack([
        (upper_objective(solve_lower(x, y, phi + eps * e, reg, k), x_val, y_val, weights, k)
         - upper_objective(solve_lower(x, y, phi - eps * e, reg, k), x_val, y_val, weights, k)) / (2 * eps)
        for e in torch.eye(3 * k, dtype=torch.float64)])
    assert finite.abs().max() > 1e-3
    assert torch.allclose(ours, finite, rtol=1e-6, atol=1e-9)


def context(sizes: tuple[int, ...], epochs: int = 10, batch_size: int = 16, critical=(0,)) -> ClassContext:
    return ClassContext(dims=2, epochs=epochs, device=CPU, n_train=sum(sizes), train_positive_rate=0.0,
                        batch_size=batch_size, class_sizes=sizes, critical=critical)


def test_held_out_split_is_per_class_fixed_and_never_reaches_the_lower_level():
    """dataset/cifar10.py: `val_index.extend(np.where(train_y==i)[0][-num_val_samples[i]:])` for each
    class i: a per-class share of train. Here round(0.2 n_c) of each of K classes, fixed when first
    seen, and the lower-level loss does not change when the held-out samples' labels do."""
    gen = torch.Generator().manual_seed(0)
    sizes = (120, 50, 20, 10)
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])
    x = torch.randn(len(y), 2, generator=gen)
    method = create_method("autobalance_ce", torch.nn.Linear(2, 4), {"up_start": 0.99}, context(sizes))
    method.begin_stage(method.stages()[0], method.stage_epochs()[0])
    split = method.split

    def epoch() -> torch.Tensor:
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), 16):
            index = order[start:start + 16]
            method.loss(method.model(x[index]), y[index], index)
        return split.held.bool().clone()
    held = epoch()
    assert split.assigned.bool().all() and torch.equal(epoch(), held)  # another order: the same split
    assert [int(held[y == c].sum()) for c in range(4)] == [round(0.2 * n) for n in sizes]
    assert method.report({})["autobalance"]["held_out"] == {"n": 24 + 10 + 4 + 2, "per_class": [24, 10, 4, 2]}
    index = torch.arange(len(y))
    outputs = method.model(x).detach()
    relabelled = torch.where(held, (y + 1) % 4, y)
    assert float(method.loss(outputs, relabelled, index)) == float(method.loss(outputs, y, index))
    assert float(method.loss(outputs, torch.where(held, y, (y + 1) % 4), index)) != float(method.loss(outputs, y, index))


def test_learned_offsets_order_the_classes_as_logit_adjustment():
    """Softmax regression on a 90:30:10 task of three Gaussians: the balanced upper loss asks the rarer
    classes for larger margins, the learned offsets ordered as logit adjustment's tau log pi_y
    (core/utils.py `get_LA_params`: `pi = tau*log(pi)`): l_0 > l_1 > l_2, from all zeros, each gap > 0.1
    (measured: 0.39, 0.09, -0.48 after 15 epochs)."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x, y = gaussian_classes((450, 150, 50), gen)
    model = torch.nn.Linear(2, 3)
    method = create_method("autobalance_ce", model, {"up_start": 0, "search_fraction": 0.99, "iter_interval": 2,
                                                     "up_lr": 0.03}, context((450, 150, 50), epochs=16, batch_size=100))
    method.begin_stage(method.stages()[0], method.stage_epochs()[0])
    for epoch in range(method.stage_epochs()[0]):
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), 100):
            index = order[start:start + 100]
            loss = method.loss(model(x[index]), y[index], index)
            method.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            method.optimizer.step()
        method.end_epoch(epoch, 0.5)
    offsets = [method.loss_parameters()[f"offset_{c}"] for c in range(3)]
    assert method.upper_steps > 0 and offsets[0] - offsets[1] > 0.1 and offsets[1] - offsets[2] > 0.1


def test_score_and_probabilities_are_the_raw_outputs_softmax():
    """core/trainer.py `eval_epoch`: `logits = model(data)`; `preds = logits.data.max(1)[1]` and the
    test loss `cross_entropy` without dy, ly: evaluation reads the raw logits. The score is the
    critical class's softmax log-odds of those, whatever the searched loss parameters."""
    method = create_method("autobalance_ce", torch.nn.Linear(2, 3), {}, context((10, 10, 10), critical=(2,)))
    with torch.no_grad():
        method.dy.copy_(torch.tensor([3.0, -1.0, 0.5]))
        method.ly.copy_(torch.tensor([0.7, 0.0, -2.0]))
    outputs = torch.randn(6, 3)
    assert torch.equal(method.score(outputs), critical_logit(outputs, (2,), False))
    assert torch.allclose(method.probabilities(outputs), torch.softmax(outputs, 1))
    assert method.score_is_probability_logit


def test_shares_the_binary_methods_parameters():
    """One recipe for both framings: the binary autobalance's defaults (the reference's configuration)."""
    assert resolve_params("autobalance_ce", {}) == resolve_params("autobalance", {})


def test_a_run_writes_a_valid_record_with_the_loss_parameters_of_every_class():
    record = run_benchmark(resolve_config(RunConfig(dataset="synthetic2d_mc", method="autobalance_ce", task="multiclass",
                                                    **TINY, params={"iter_interval": 4})), progress=False)
    assert record_problem(record) is None and record["best_stage"] == "retrain"
    k = len(record["dataset"]["class_names"])
    keys = [f"{kind}_{c}" for kind in ("multiplier", "offset", "weight") for c in range(k)]
    assert [h["stage"] for h in record["history"]] == ["search", "retrain"]
    assert all(set(keys) <= set(h) and h["upper_steps"] > 0 for h in record["history"])
    assert any(record["history"][0][f"offset_{c}"] != 0.0 for c in range(k))  # the search moved them ...
    assert all(record["history"][1][key] == record["history"][0][key] for key in keys)  # ... retraining not
    counts = record["dataset"]["splits"]["train"]["class_counts"]
    assert record["autobalance"]["held_out"]["per_class"] == [round(0.2 * n) for n in counts]
    assert record["autobalance"]["loss_parameters"] == {key: record["history"][-1][key] for key in keys}
    assert record["calibration"] is not None and record["multiclass"]["confusion_matrix"] is not None


@pytest.mark.parametrize("changes,message", [
    (dict(task="binary"), "--method autobalance_ce trains --task multiclass, not --task binary"),
    (dict(dataset="chestmnist", params={"critical": "pneumothorax"}), "chestmnist is multi-label"),
    (dict(params={"preset": "cifar_lt"}), "unknown parameter 'preset'"),
    (dict(compile=True), "differentiates its loss twice"),
    (dict(epochs=1), "--method autobalance_ce trains in 2 stages (search, retrain): needs --epochs >= 2"),
])
def test_what_it_cannot_train_is_refused_before_any_data(changes, message, tmp_path):
    config = RunConfig(**{"dataset": "synthetic2d_mc", "method": "autobalance_ce", "task": "multiclass",
                          "data_dir": str(tmp_path / "absent"), **changes})
    with pytest.raises(CritBenchError, match=re.escape(message)):
        resolve_config(config)


def test_a_class_with_fewer_than_two_training_samples_is_refused():
    with pytest.raises(CritBenchError, match=re.escape("autobalance_ce holds out 0.2 of each class of train for its "
                                                       "upper level and needs >= 2 samples of each class; train has "
                                                       "[30, 1, 5] samples per class")):
        create_method("autobalance_ce", torch.nn.Linear(2, 3), {}, context((30, 1, 5)))
