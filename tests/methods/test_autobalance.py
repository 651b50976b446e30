"""AutoBalance (`--method autobalance`) against the reference code, ucr-optml/AutoBalance (commit
775f85d: loss_search.py, retraining.py, core/trainer.py, core/utils.py,
configs/cifar10/dyly_no_init/1.yaml): its loss, hypergradient, schedules and split, a
finite-difference check, a task whose optimal loss weighting is known, and proof that neither
validation nor test labels reach the loss parameters."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import load_dataset, resolve_config
from benchmarks.engine.trainer import Trainer
from benchmarks.engine.device import resolve_device
from benchmarks.methods import TrainContext, create_method, resolve_params
from benchmarks.methods.autobalance import (RETRAIN_LOWER, SEARCH_LOWER, SEARCH_UPPER, balanced_bce, hypergradient,
                                            neumann_inverse_hvp, parametric_bce)
from benchmarks.run import main as run_main
from datasets import list_datasets
from datasets.base import Split
from tests.bad_input.conftest import assert_refused, invoke, trained  # noqa: F401  (trained: a fixture)
from tests.conftest import TINY
from tests.test_generic import stand_in

CPU = torch.device("cpu")
LOSS_PARAMETERS = [f"{kind}_{side}" for kind in ("multiplier", "offset", "weight") for side in ("neg", "pos")]


def context(n_train: int, rate: float, epochs: int = 2, batch_size: int = 100) -> TrainContext:
    return TrainContext(dims=2, epochs=epochs, device=CPU, n_train=n_train, train_positive_rate=rate,
                        batch_size=batch_size)


def gaussian_task(n_pos: int, n_neg: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two 2-D Gaussians, means (+-1, 0): a logistic model is well specified."""
    y = torch.cat([torch.ones(n_pos), torch.zeros(n_neg)])
    x = torch.randn(n_pos + n_neg, 2, generator=gen) + (2 * y - 1).unsqueeze(1) * torch.tensor([1.0, 0.0])
    return x, y


def search(params: dict, epochs: int, seed: int = 0, batch: int = 100) -> list[dict]:
    """The search stage of a logistic model on a 1:9 Gaussian task, driven as the trainer drives
    it; the state summary of every epoch."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x, y = gaussian_task(100, 900, gen)
    model = torch.nn.Linear(2, 1)
    method = create_method("autobalance", model, {"up_start": 0, "search_fraction": 0.99, **params},
                           context(len(y), 0.1, epochs, batch))
    method.begin_stage(method.stages()[0], method.stage_epochs()[0])
    history = []
    for epoch in range(method.stage_epochs()[0]):
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), batch):
            index = order[start:start + batch]
            loss = method.loss(model(x[index]).squeeze(1), y[index], index)
            method.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            method.optimizer.step()
            method.after_step()
        history.append(method.state_summary())
        method.end_epoch(epoch, 0.5)
    return history


def test_defaults_are_the_reference_configuration():
    """configs/cifar10/dyly_no_init/1.yaml: `low_lr: 0.1`, `up_lr: 0.01`, `train_size: 4000`,
    `val_size: 1000`, `epoch: 300`, `start_epoch: 120`, `iter_interval: 20`, `dy: true`, `ly: true`,
    `wy: false`; loss_search.py: `optim.SGD(params=model.parameters(), lr=args["low_lr"],
    momentum=0.9, weight_decay=1e-4)`, `optim.SGD(params=[{'params': dy}, {'params': ly}],
    lr=args["up_lr"], momentum=0.9, weight_decay=1e-4)`; retraining.py: `args["epoch"]=200`;
    core/trainer.py: `neumann_hyperstep_preconditioner(d_val_loss_d_theta, d_train_loss_d_w, 1.0, 5, model)`."""
    params = resolve_params("autobalance", {})
    assert (params["lr"], params["momentum"], params["weight_decay"]) == (0.1, 0.9, 1e-4)
    assert (params["up_lr"], params["up_momentum"], params["up_weight_decay"]) == (0.01, 0.9, 1e-4)
    assert params["holdout"] == 1000 / 5000 and params["search_fraction"] == 300 / 500
    assert params["up_start"] == 120 / 300 and params["iter_interval"] == 20
    assert (params["neumann_terms"], params["neumann_lr"]) == (5, 1.0)
    assert (params["learn_multipliers"], params["learn_offsets"], params["learn_weights"]) == (True, True, False)


def reference_loss(logits, targets, params):
    """core/utils.py `loss_adjust_cross_entropy`, group_size 1, as written there:
    `x = logits*F.sigmoid(dy)+ly`; `loss = F.cross_entropy(x, targets, weight=wy)`."""
    dy, ly, wy = params
    x = logits * torch.sigmoid(dy) + ly
    return F.cross_entropy(x, targets, weight=wy)


def test_parametric_loss_is_the_reference_loss_written_for_one_logit():
    """With the class logits (0, z) the reference's loss is one multiplier sigmoid(dy_1) and one
    offset ly_1 - ly_0 on z: the one-logit form with equal multipliers and opposite offsets. Per-
    class multipliers, which one logit cannot carry through a softmax, act on s z, s = 2y - 1."""
    z = torch.tensor([1.5, -0.5, 0.2, 2.0, -1.0], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    d, offset, wy = 0.3, -0.7, torch.tensor([0.5, 2.0], dtype=torch.float64)
    expected = reference_loss(torch.stack([torch.zeros_like(z), z], 1), y.long(),
                              (torch.tensor([9.0, d], dtype=torch.float64),
                               torch.tensor([0.0, offset], dtype=torch.float64), wy))
    ours = parametric_bce(z, y, torch.tensor([d, d], dtype=torch.float64),
                          torch.tensor([-offset, offset], dtype=torch.float64), wy.log(), torch.ones_like(y))
    assert float(ours) == pytest.approx(float(expected), rel=1e-12)
    # distinct multipliers and offsets, by hand: w_y softplus(-(sigmoid(d_y) s z + l_y)), weighted mean
    dy, ly = torch.tensor([0.0, 2.0], dtype=torch.float64), torch.tensor([0.4, -0.1], dtype=torch.float64)
    sig = [1 / (1 + math.exp(-v)) for v in (0.0, 2.0)]
    terms = [(0.5 if c == 0 else 2.0) * math.log1p(math.exp(-(sig[c] * (2 * c - 1) * v + float(ly[c]))))
             for v, c in zip(z.tolist(), y.long().tolist())]
    total_weight = sum(0.5 if c == 0 else 2.0 for c in y.long().tolist())
    assert float(parametric_bce(z, y, dy, ly, wy.log(), torch.ones_like(y))) == pytest.approx(sum(terms) / total_weight)


def test_upper_loss_is_the_reference_weighted_cross_entropy_on_the_raw_logit():
    """loss_search.py: `up_criterion=cross_entropy` with `up_params=[dy, ly, w_val]`; core/utils.py
    `cross_entropy`: `F.cross_entropy(logits, targets, weight=params[2])` (no dy, ly), and
    `get_val_w`: `w_val=np.sum(num_val_samples)/num_val_samples`."""
    z = torch.tensor([1.5, -0.5, 0.2, 2.0], dtype=torch.float64)
    y = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    weights = torch.tensor([1 / 30, 1 / 3], dtype=torch.float64)
    expected = F.cross_entropy(torch.stack([torch.zeros_like(z), z], 1), y.long(), weight=weights)
    assert float(balanced_bce(z, y, weights, torch.ones_like(y))) == pytest.approx(float(expected), rel=1e-12)


def quadratic_gradient(a: torch.Tensor, theta: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(0.5 * theta @ a @ theta, [theta], create_graph=True))


def test_neumann_series_is_the_reference_preconditioner():
    """core/utils.py `neumann_hyperstep_preconditioner`: `preconditioner = d_val_loss_d_theta.detach()`;
    `counter = preconditioner`; `while i < num_neumann_terms`: `counter = old_counter - elementary_lr *
    hessian_term`; `preconditioner = preconditioner + counter`; `return elementary_lr * preconditioner`:
    lr sum_{j=0..5} (I - lr H)^j v. A divergent series (lr H with an eigenvalue past 2) stops
    before its first growing term."""
    a = torch.tensor([[1.2, 0.3, 0.0], [0.3, 0.8, 0.1], [0.0, 0.1, 0.5]], dtype=torch.float64)
    v = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    theta = torch.tensor([0.3, 0.1, -0.2], dtype=torch.float64, requires_grad=True)
    step = torch.eye(3, dtype=torch.float64) - a
    expected = sum(torch.linalg.matrix_power(step, j) @ v for j in range(6))
    (ours,) = neumann_inverse_hvp([v], quadratic_gradient(a, theta), [theta], 5, 1.0)
    assert torch.allclose(ours, expected, rtol=1e-12)
    (converged,) = neumann_inverse_hvp([v], quadratic_gradient(a, theta), [theta], 400, 1.0)
    assert torch.allclose(converged, torch.linalg.solve(a, v), rtol=1e-10)
    steep = torch.diag(torch.tensor([0.5, 3.0, 0.5], dtype=torch.float64))  # |1 - 3| > 1: (I - H)^j grows
    (cut,) = neumann_inverse_hvp([v], quadratic_gradient(steep, theta), [theta], 5, 1.0)
    assert torch.allclose(cut, v)  # the first term, (I - H) v, is already larger than v


def lower_objective(theta, x, y, phi, reg):
    logits = x @ theta[:2] + theta[2]
    return parametric_bce(logits, y, phi[0:2], phi[2:4], phi[4:6], torch.ones_like(y)) + 0.5 * reg * theta.pow(2).sum()


def upper_objective(theta, x, y, class_weights):
    return balanced_bce(x @ theta[:2] + theta[2], y, class_weights, torch.ones_like(y))


def solve_lower(x, y, phi, reg) -> torch.Tensor:
    """The exact minimizer of the (strongly convex) lower objective, by Newton's method."""
    theta = torch.zeros(3, dtype=torch.float64)
    for _ in range(30):
        objective = lambda t: lower_objective(t, x, y, phi, reg)  # noqa: E731
        gradient = torch.autograd.functional.jacobian(objective, theta)
        theta = theta - torch.linalg.solve(torch.autograd.functional.hessian(objective, theta), gradient)
    return theta


def test_hypergradient_matches_finite_differences():
    """d upper(w*(phi)) / d phi by the implicit function theorem (`hyper_grad=-indirect_grad`,
    core/trainer.py) against central differences of the exactly re-solved lower problem, in float64
    on L2-regularized logistic regression, for every multiplier, offset and weight parameter."""
    gen = torch.Generator().manual_seed(3)
    x, y = (t.double() for t in gaussian_task(12, 36, gen))
    x_val, y_val = (t.double() for t in gaussian_task(8, 24, gen))
    class_weights = torch.tensor([1 / 24, 1 / 8], dtype=torch.float64)
    phi = torch.tensor([0.5, 1.5, 0.3, -0.2, 0.1, 0.4], dtype=torch.float64)
    reg = 0.1
    theta = solve_lower(x, y, phi, reg).requires_grad_()
    hyper = phi.clone().requires_grad_()
    (ours,) = hypergradient(lower_objective(theta, x, y, hyper, reg), upper_objective(theta, x_val, y_val, class_weights),
                            [theta], [hyper], terms=400, lr=1.0)
    eps = 1e-6
    finite = torch.stack([
        (upper_objective(solve_lower(x, y, phi + eps * e, reg), x_val, y_val, class_weights)
         - upper_objective(solve_lower(x, y, phi - eps * e, reg), x_val, y_val, class_weights)) / (2 * eps)
        for e in torch.eye(6, dtype=torch.float64)])
    assert finite.abs().min() > 1e-4  # every parameter matters here
    assert torch.allclose(ours, finite, rtol=1e-6, atol=1e-9)


def test_learned_weights_move_toward_the_known_optimum():
    """Lower: weighted logistic loss; upper: the balanced loss, on a 1:9 task where the logistic
    model is well specified. The weighting whose lower objective is the upper one, w_pos / w_neg =
    n_neg / n_pos = 9, is optimal; from w = (1, 1) the learned log ratio moves toward log 9."""
    history = search({"learn_multipliers": False, "learn_offsets": False, "learn_weights": True,
                      "iter_interval": 2, "up_lr": 0.03}, epochs=16)
    ratios = [math.log(h["weight_pos"] / h["weight_neg"]) for h in history]
    assert 0 < ratios[0] < ratios[len(ratios) // 2] < ratios[-1]
    assert 0.5 * math.log(9) < ratios[-1] < 1.5 * math.log(9)


def test_learned_offsets_move_the_right_way():
    """The same task with the reference's learned multipliers and offsets: the balanced objective
    asks the rare class for a larger margin, offsets ordered as logit adjustment's tau log pi_y
    (core/utils.py `get_LA_params`: `pi = tau*log(pi)`): l_pos - l_neg falls below 0."""
    history = search({"iter_interval": 2, "up_lr": 0.03}, epochs=16)
    gaps = [h["offset_pos"] - h["offset_neg"] for h in history]
    assert gaps[-1] < min(gaps[0], -0.5)


def batches(n: int, size: int, gen: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=gen)
    return [order[start:start + size] for start in range(0, n, size)]


def test_held_out_split_is_stratified_fixed_and_never_reaches_the_lower_level():
    """dataset/cifar10.py: `val_index.extend(np.where(train_y==i)[0][-num_val_samples[i]:])` per class
    i, `num_val_samples.append(ceil(val_size*(val_mu**i)))`: a per-class share of train. Here
    round(0.2 n_c) of each class, fixed when first seen, and the lower-level loss of a batch does not
    change when its held-out samples' labels do."""
    gen = torch.Generator().manual_seed(0)
    y = (torch.rand(200, generator=gen) < 0.15).float()
    n_pos = int(y.sum())
    method = create_method("autobalance", torch.nn.Linear(2, 1), {"up_start": 0.99},
                           context(200, n_pos / 200, epochs=10))
    method.begin_stage(method.stages()[0], method.stage_epochs()[0])
    x = torch.randn(200, 2, generator=gen)
    split = method.split
    with_repeats = torch.cat([torch.arange(5), torch.arange(5)])  # a sampler with replacement
    method.loss(method.model(x[with_repeats]).squeeze(1), y[with_repeats], with_repeats)
    for index in batches(200, 16, gen):
        method.loss(method.model(x[index]).squeeze(1), y[index], index)
    held = split.held.bool()
    assert int(held[y == 1].sum()) == round(0.2 * n_pos) and int(held[y == 0].sum()) == round(0.2 * (200 - n_pos))
    assert split.assigned.bool().all() and len(split.held) == 200  # only training positions exist
    first = held.clone()
    for index in batches(200, 16, gen):  # another epoch, another order: the same split
        method.loss(method.model(x[index]).squeeze(1), y[index], index)
    assert torch.equal(split.held.bool(), first)
    index = torch.arange(200)
    flipped = torch.where(first, 1 - y, y)
    outputs = method.model(x).squeeze(1).detach()
    assert float(method.loss(outputs, flipped, index)) == float(method.loss(outputs, y, index))
    assert float(method.loss(outputs, torch.where(first, y, 1 - y), index)) != float(method.loss(outputs, y, index))


def count_upper_steps(method, batches_per_epoch: int, epochs: range) -> list[int]:
    """Upper steps taken in each of the (stage) `epochs`, of batches of 8 (4 positives)."""
    model = method.model
    y = torch.tensor([1.0, 0, 1, 0, 1, 0, 1, 0])
    steps = []
    for epoch in epochs:
        before = method.upper_steps
        for batch in range(batches_per_epoch):
            index = torch.arange(8) + 8 * (batch % 5)
            loss = method.loss(model(torch.randn(8, 2)).squeeze(1), y, index)
            method.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            method.optimizer.step()
        steps.append(method.upper_steps - before)
        method.end_epoch(epoch, 0.5)
    return steps


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_upper_level_follows_the_reference_warm_up_and_update_frequency():
    """core/trainer.py: `is_up=(cur_epoch >= ARCH_EPOCH) and (cur_epoch <= ARCH_END) and
    ((cur_epoch+1) % ARCH_EPOCH_INTERVAL) == 0` (`start_epoch: 120`, `end_epoch: 300`,
    `epoch_interval: 1`) and `if cur_iter%ARCH_INTERVAL==0:` (`iter_interval: 20`): with 500 epochs
    (search 300, retrain 200) the upper level starts at epoch 120 and steps at iterations 0, 20, 40."""
    torch.manual_seed(0)
    method = create_method("autobalance", torch.nn.Linear(2, 1), {}, context(40, 0.5, epochs=500, batch_size=8))
    assert method.stage_epochs() == [300, 200]
    method.begin_stage(method.stages()[0], 300)
    method.end_epoch(118, 0.5)  # as after 119 epochs
    assert count_upper_steps(method, 45, range(119, 121)) == [0, 3]


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_lower_and_upper_lr_schedules_are_the_reference_lambdas():
    """loss_search.py: `warm_up_with_multistep_lr_low(epoch): return (epoch+1) / args["low_lr_warmup"]
    if epoch < args["low_lr_warmup"] else 0.1**len([m for m in args["low_lr_schedule"] if m <= epoch])`
    and `warm_up_with_multistep_lr_up(epoch): return (epoch-up_start_epoch+1) / args["up_lr_warmup"]
    if epoch-up_start_epoch < args["up_lr_warmup"] else 0.1**len(...)`, with `low_lr_warmup: 5`,
    `up_lr_warmup: 10`, schedules `[220, 260]` of 300; retraining.py: `[160,180]` of 200. A stage of
    another length scales every epoch in proportion."""
    assert [SEARCH_LOWER.factor(e, 300) for e in (0, 4, 5, 219, 220, 259, 260)] == pytest.approx(
        [0.2, 1, 1, 1, 0.1, 0.1, 0.01])
    assert [SEARCH_UPPER.factor(e, 300, 120) for e in (119, 120, 129, 130, 220, 260)] == pytest.approx(
        [0, 0.1, 1, 1, 0.1, 0.01])
    assert [RETRAIN_LOWER.factor(e, 200) for e in (0, 5, 159, 160, 180)] == pytest.approx([0.2, 1, 1, 0.1, 0.01])
    assert [SEARCH_LOWER.factor(e, 60) for e in (0, 43, 44, 52)] == pytest.approx([1, 1, 0.1, 0.01])
    method = create_method("autobalance", torch.nn.Linear(2, 1), {}, context(40, 0.5, epochs=500))
    method.begin_stage(method.stages()[0], 300)
    lrs, upper = [], []
    for epoch in range(131):
        lrs.append(method.lr())
        upper.append(method.state_summary()["upper_lr"])
        method.end_epoch(epoch, 0.5)
    assert lrs[0] == pytest.approx(0.02) and lrs[4] == pytest.approx(0.1)
    assert upper[119] == 0 and upper[120] == pytest.approx(1e-3) and upper[130] == pytest.approx(1e-2)


def test_retraining_starts_from_the_initial_weights_with_every_sample_and_fixed_parameters():
    """retraining.py: `args["up_configs"]["dy"]=False`, `["ly"]=False`, `["start_epoch"]=10000`,
    `load_cifar10(train_size=args["train_size"]+args["val_size"], ...)`, the searched
    `dy = args["result"]["dy"][-1]`; a new model (the search's initial one here)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    method = create_method("autobalance", model, {"up_start": 0, "iter_interval": 1}, context(40, 0.5, epochs=4, batch_size=8))
    search_epochs, retrain_epochs = method.stage_epochs()
    method.begin_stage(method.stages()[0], search_epochs)
    count_upper_steps(method, 5, range(search_epochs))
    searched = method.state_dict()
    assert method.upper_steps > 0 and not torch.equal(searched["dy"], torch.ones(2))
    method.begin_stage(method.stages()[1], retrain_epochs)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in initial.items())
    steps = method.upper_steps
    count_upper_steps(method, 5, range(retrain_epochs))
    assert method.upper_steps == steps and all(torch.equal(method.state_dict()[k], v) for k, v in searched.items())
    x, y, index = torch.randn(40, 2), torch.tensor([1.0, 0.0] * 20), torch.arange(40)
    outputs = model(x).squeeze(1).detach()
    expected = parametric_bce(outputs, y, searched["dy"], searched["ly"], searched["log_w"], torch.ones_like(y))
    assert float(method.loss(outputs, y, index)) == pytest.approx(float(expected))  # held-out samples included


def test_record_history_carries_the_loss_parameters_per_epoch(tmp_path):
    record = run_benchmark(resolve_config(RunConfig(dataset="synthetic2d", method="autobalance", **TINY,
                                                    params={"iter_interval": 4})), progress=False)
    assert record["status"] == "complete" and record["best_stage"] == "retrain"
    assert [h["stage"] for h in record["history"]] == ["search", "retrain"]
    for entry in record["history"]:
        assert set(LOSS_PARAMETERS) <= set(entry) and entry["upper_steps"] > 0
    assert record["history"][0]["offset_pos"] != 0.0  # the search moved them ...
    assert all(record["history"][1][k] == record["history"][0][k] for k in LOSS_PARAMETERS)  # ... retraining not
    held_out = record["autobalance"]["held_out"]
    assert held_out == {"n": round(0.2 * 24) + round(0.2 * 240), "positives": round(0.2 * 24)}
    assert record["autobalance"]["loss_parameters"] == {k: record["history"][-1][k] for k in LOSS_PARAMETERS}


def loss_parameter_history(randomize: tuple[str, ...]) -> list[dict]:
    config = resolve_config(RunConfig(dataset="synthetic2d", method="autobalance", **TINY, params={"iter_interval": 4}))
    dataset = load_dataset(config)
    gen = torch.Generator().manual_seed(7)
    for name in randomize:
        split = getattr(dataset, name)
        labels = torch.randperm(len(split), generator=gen) < len(split) // 2  # random, both classes
        setattr(dataset, name, Split(split.x, labels.to(torch.uint8)))
    history = Trainer(config, dataset, resolve_device(config.device), progress=False).fit()["history"]
    return [{k: entry[k] for k in LOSS_PARAMETERS + ["upper_steps", "train_loss"]} for entry in history]


@pytest.mark.parametrize("randomize", [("test",), ("val", "test")])
def test_random_test_and_validation_labels_leave_the_loss_parameters_unchanged(randomize):
    """The upper level sees only its held-out share of train: replacing the test (and validation)
    labels with random ones changes no loss parameter of any epoch, nor the training loss."""
    reference = loss_parameter_history(())
    assert reference[0]["upper_steps"] > 0 and reference[0]["offset_pos"] != 0.0  # the search moved them
    assert loss_parameter_history(randomize) == reference


@pytest.mark.parametrize("dataset", list_datasets())
def test_runs_on_every_dataset(dataset, tmp_path, monkeypatch):
    """Every registered dataset's stand-in (tests/test_generic.py), two epochs: search, retrain."""
    source = stand_in(dataset, tmp_path, monkeypatch)
    config = RunConfig(dataset=dataset, method="autobalance", epochs=2, width=0.125, batch_size=16, device="cpu",
                       patience=0, **source.run_kwargs())
    record = run_benchmark(resolve_config(config), progress=False)
    assert record["status"] == "complete", record.get("reason")
    assert all(math.isfinite(v) for v in record["autobalance"]["loss_parameters"].values())
    assert record["history"][0]["upper_steps"] >= 1


def test_compile_is_refused_before_any_data_is_loaded():
    """Hessian-vector products need double backward, which torch.compile's AOTAutograd lacks."""
    with pytest.raises(CritBenchError, match="differentiates its loss twice, which torch.compile does not support"):
        resolve_config(RunConfig(dataset="synthetic2d", method="autobalance", compile=True))


def test_too_few_training_samples_of_a_class_are_refused():
    with pytest.raises(CritBenchError, match="needs >= 2 samples of each class; train has 1 positives"):
        create_method("autobalance", torch.nn.Linear(2, 1), {}, context(20, 0.05))


@pytest.mark.parametrize("param,names", [("holdout=0.9", "holdout"), ("up_start=1", "up_start"),
                                         ("neumann_terms=-1", "neumann_terms"), ("learn_offsets=false", "learns nothing")])
def test_bad_parameters_are_refused_before_training(param, names, tmp_path, capsys, trained):
    argv = ["--dataset", "synthetic2d", "--method", "autobalance", "--epochs", 2, "--device", "cpu",
            "--out", tmp_path, "--param", param]
    if param.startswith("learn_offsets"):
        argv += ["--param", "learn_multipliers=false"]
    assert_refused(invoke(run_main, argv, capsys), names)
    assert trained == [] and list(tmp_path.iterdir()) == []
