"""The method zoo: every method (and ALM over every base loss) trains on tiny synthetic data;
presets, samplers, heads, augmentations and the rate constraint behave as documented."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from libauc.losses import AUCMLoss
from libauc.optimizers import PESG, Adam as LibAUCAdam
from libauc.sampler import DualSampler

from benchmarks.engine.augment import create_augmentation, crop_flip
from benchmarks.core.config import RunConfig
from benchmarks.engine.resolve import resolve_config
from benchmarks.core.errors import CritBenchError
from benchmarks.methods.losses import list_losses
from benchmarks.methods import TrainContext, create_method, get_method, resolve_params
from benchmarks.methods.base import methods_for_task
from benchmarks.methods.presets import ALM_BASE, ALM_CONFIGS, ALM_SETTINGS, AUCM_PRESETS
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import load_dataset
from benchmarks.engine.trainer import Trainer
from benchmarks.engine.device import resolve_device
from benchmarks.methods.sampling import KINDS, Sampling, epoch_order
from models3d import create_model
from tests.conftest import TINY

CPU = torch.device("cpu")


def tiny_ctx(epochs: int = 2, n_train: int = 40, rate: float = 0.25) -> TrainContext:
    return TrainContext(dims=2, epochs=epochs, device=CPU, n_train=n_train, train_positive_rate=rate, batch_size=8)


def take_steps(name: str, params: dict | None = None, steps: int = 2) -> list[float]:
    """A few optimizer steps of method `name` on random 8x8 images; returns the losses."""
    cls = get_method(name)
    resolved = resolve_params(name, params or {})
    model = create_model(2, 1, width=0.125, **cls.model_options(resolved))
    method = create_method(name, model, resolved, tiny_ctx())
    method.begin_stage(method.stages()[0], method.stage_epochs()[0])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 8, 8, generator=gen)
    y = torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 0])
    index = torch.arange(8)
    losses = []
    for epoch in range(steps):
        loss = method.loss(model(x).squeeze(1), y, index)
        method.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        method.optimizer.step()
        model.constrain_head()
        method.after_step()
        method.end_epoch(epoch, 0.5)
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("name", methods_for_task("binary") + [f"alm+{b}" for b in list_losses() if b != "bce"])
def test_every_method_takes_finite_steps(name):
    """Every binary method (the multi-class ones: tests/methods/test_multiclass.py and the generic test)."""
    losses = take_steps(name)
    assert all(math.isfinite(v) for v in losses)


@pytest.mark.parametrize("name", ["s_fl", "alm+ldam", "aucm_ce", "rate_constrained"])
def test_end_to_end_run_on_synthetic(name, tmp_path):
    record = run_benchmark(resolve_config(RunConfig(dataset="synthetic2d", method=name, **TINY)), progress=False)
    assert record["status"] == "complete" and 0 <= record["test"]["auc"] <= 1
    assert record["config"]["method"] == name


def test_alm_record_names_its_base_and_compact_names_resolve():
    params = resolve_params("alm+s_fl", {"gamma": "2"})
    assert params["base"] == "s_fl" and params["gamma"] == 2.0 and "delta" in params
    assert resolve_params("alm", {"base": "s_lm"})["margin"] == 0.5
    assert get_method("alm+wbce").name == "alm+wbce"
    with pytest.raises(CritBenchError, match="does not wrap"):
        get_method("bce+s_fl")
    with pytest.raises(CritBenchError, match="unknown base loss"):
        get_method("alm+nope")
    with pytest.raises(CritBenchError, match="unknown parameter 'gamma'"):
        resolve_params("s_lm", {"gamma": "1"})


@pytest.mark.parametrize("setting", ALM_SETTINGS)
def test_alm_presets_load_and_validate(setting):
    column = ALM_SETTINGS.index(setting)
    for base in ALM_CONFIGS:
        params = resolve_params(f"alm+{base}", {"preset": setting})
        k, delta = ALM_CONFIGS[base][column]
        assert params["mu0"] == pytest.approx(10.0 ** -k) and params["delta"] == delta
        assert params["optimizer"] == "sgd" and params["weight_decay"] == 2e-4
        assert params["lr"] == (1e-2 if setting.startswith("c10_") else 1e-3)
        plain = resolve_params(base, {"preset": setting})
        assert "mu0" not in plain
        if base in ALM_BASE:
            key, row = ALM_BASE[base]
            assert plain[key] == row[column] == params[key]


def test_alm_presets_are_the_whole_recipe_with_a_constant_lr():
    """alm-dnn utils/train_test_CIFAR.py: with `lr_decrease` 0 (the paper's setting, recipes.md)
    `scheduler = optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.1, patience=1000)`:
    the lr never changes within <= 100 epochs; the recipe trains ResNet10 with batch 64."""
    for name in ("alm+s_fl", "s_fl"):
        params = resolve_params(name, {"preset": "c10_1to100"})
        method = create_method(name, create_model(2, 1, width=0.125), params, tiny_ctx(epochs=4))
        lrs = []
        for epoch in range(4):
            lrs.append(method.lr())
            method.end_epoch(epoch, 0.5)
        assert lrs == [1e-2] * 4
        assert get_method(name).run_overrides(params) == {"model": "resnet10", "batch_size": 64}
    assert get_method("s_fl").run_overrides(resolve_params("s_fl", {})) == {}


def test_published_values_spot_check_and_explicit_values_win():
    # recipes.md: C10 1:100 S-LM+ALM is ALM_16 (mu0 1e-6) with delta 0.1 and margin 0.5;
    # C100 1:200 A-LM uses margin 4.
    params = resolve_params("alm+s_lm", {"preset": "c10_1to100"})
    assert (params["mu0"], params["delta"], params["margin"]) == (1e-6, 0.1, 0.5)
    assert resolve_params("a_lm", {"preset": "c100_1to200"})["margin"] == 4.0
    assert resolve_params("alm+s_lm", {"preset": "c10_1to100", "delta": "0.3"})["delta"] == 0.3
    with pytest.raises(CritBenchError, match="unknown preset"):
        resolve_params("bce", {"preset": "c10"})
    with pytest.raises(CritBenchError, match="no c10_1to100 configuration"):
        resolve_params("alm+focal", {"preset": "c10_1to100"})


def test_aucm_presets_are_the_dam_study_values():
    for dataset in AUCM_PRESETS:
        resolve_params("aucm", {"preset": dataset})
    pneumonia = resolve_params("aucm", {"preset": "pneumoniamnist"})
    assert (pneumonia["momentum"], pneumonia["weight_decay"], pneumonia["lr"]) == (0.8, 1e-3, 0.1)
    assert resolve_params("aucm", {"preset": "adrenalmnist3d"})["epoch_decay"] == 0.05
    assert resolve_params("aucm", {"preset": "synapsemnist3d"})["momentum"] == 0.7
    with pytest.raises(CritBenchError, match="unknown preset"):
        resolve_params("aucm", {"preset": "c10_1to100"})


@pytest.mark.parametrize("labels", [torch.float32, torch.uint8])
def test_samplers_compose_batches_as_documented(labels):
    y = torch.tensor([1] * 5 + [0] * 45, dtype=labels)
    gen = torch.Generator().manual_seed(0)
    assert sorted(epoch_order(Sampling("none"), y, 10, gen).tolist()) == list(range(50))
    over = epoch_order(Sampling("oversample"), y, 10, gen)
    assert len(over) == 90 and int(y[over].sum()) == 45
    assert torch.bincount(over[y[over] == 1], minlength=5)[:5].tolist() == [9] * 5  # even cycling
    under = epoch_order(Sampling("undersample"), y, 10, gen)
    assert len(under) == 10 and int(y[under].sum()) == 5 and len(set(under.tolist())) == 10
    weighted = epoch_order(Sampling("weighted"), y, 10, torch.Generator().manual_seed(1))
    assert len(weighted) == 50 and 10 < int(y[weighted].sum()) < 40  # about half positives
    again = epoch_order(Sampling("dual", 0.2), y, 10, torch.Generator().manual_seed(3))
    assert torch.equal(again, epoch_order(Sampling("dual", 0.2), y, 10, torch.Generator().manual_seed(3)))
    with pytest.raises(CritBenchError, match="unknown --sampler"):
        Sampling("balanced")
    assert set(KINDS) >= {"none", "weighted", "oversample", "undersample", "dual"}


@pytest.mark.parametrize("n_pos,n_neg,batch_size,rate", [(5, 45, 10, 0.2), (45, 15, 10, 0.2), (30, 470, 64, 0.2),
                                                         (400, 100, 32, 0.5)])
def test_dual_sampler_epoch_matches_libauc(n_pos, n_neg, batch_size, rate):
    """LibAUC libauc/sampler/sampler.py, DualSampler: `self.num_pos = int(self.sampling_rate*batch_size)`,
    `self.num_neg = batch_size - self.num_pos`, `self.num_batches = max(self.pos_len//self.num_pos,
    self.neg_len//self.num_neg)`; a class that runs out is reshuffled and repeats. Same epoch length,
    positives per batch and number of distinct samples of each class seen in one epoch."""
    y = torch.tensor([1] * n_pos + [0] * n_neg)
    oracle = np.fromiter(iter(DualSampler(None, batch_size, labels=y.numpy(), sampling_rate=rate)), dtype=np.int64)
    ours = epoch_order(Sampling("dual", rate), y.float(), batch_size, torch.Generator().manual_seed(0)).numpy()
    labels = y.numpy()
    assert len(ours) == len(oracle)
    assert (labels[ours].reshape(-1, batch_size).sum(1) == labels[oracle].reshape(-1, batch_size).sum(1)).all()
    for cls in (0, 1):
        assert len(set(ours[labels[ours] == cls])) == len(set(oracle[labels[oracle] == cls]))


def test_aucm_uses_dual_batches_and_refuses_a_second_sampler():
    model = create_model(2, 1, width=0.125)
    method = create_method("aucm", model, {}, tiny_ctx())
    assert method.sampling("none") == Sampling("dual", 0.2)
    with pytest.raises(CritBenchError, match="sampling_rate=0"):
        method.sampling("oversample")
    natural = create_method("aucm", model, {"sampling_rate": "0"}, tiny_ctx())
    assert natural.sampling("oversample") == Sampling("oversample")


def test_aucm_ce_declares_a_bce_then_an_aucm_stage():
    model = create_model(2, 1, width=0.125)
    method = create_method("aucm_ce", model, {}, tiny_ctx(epochs=4))
    bce, aucm = method.stages()
    assert (bce.name, bce.selectable, aucm.name, aucm.selectable) == ("bce", False, "aucm", True)
    assert method.stage_epochs() == [2, 2]
    method.begin_stage(bce, 2)
    assert isinstance(method.optimizer, torch.optim.Adam) and method.sampling("none") == Sampling("dual", 0.5)
    method.begin_stage(aucm, 2)
    assert type(method.optimizer).__name__ == "PESG" and method.sampling("none") == Sampling("dual", 0.2)
    assert method.decays == [1]  # 50% / 75% of the stage's two epochs
    with pytest.raises(CritBenchError, match="needs --epochs >= 2"):
        create_method("aucm_ce", model, {}, tiny_ctx(epochs=1)).stage_epochs()


def test_trainer_runs_stages_and_selects_only_from_selectable_ones():
    config = resolve_config(RunConfig(dataset="synthetic2d", method="aucm_ce", **{**TINY, "epochs": 4}))
    record = run_benchmark(config, progress=False)
    assert [h["stage"] for h in record["history"]] == ["bce", "bce", "aucm", "aucm"]
    assert record["best_stage"] == "aucm" and record["best_epoch"] in (3, 4)


def test_aucm_ce_record_holds_aucm_epochs_when_stage_1_stops_early():
    """Patience counts within a stage: a stalled BCE stage stops, the AUCM stage still runs and
    supplies the selected checkpoint."""
    config = RunConfig(dataset="synthetic2d", method="aucm_ce", params={"pretrain_lr": "1e-12"},
                       **{**TINY, "epochs": 12, "patience": 1})
    record = run_benchmark(resolve_config(config), progress=False)
    stages = [h["stage"] for h in record["history"]]
    assert stages.count("bce") < 6 and "aucm" in stages and record["best_stage"] == "aucm"
    assert record["history"][record["best_epoch"] - 1]["stage"] == "aucm"


def stage_lrs(method, stage, epochs):
    """The lr each epoch of `stage` trains with."""
    method.begin_stage(stage, epochs)
    lrs = []
    for epoch in range(epochs):
        lrs.append(method.lr())
        method.end_epoch(epoch, 0.5)
    return lrs


def test_aucm_ce_stage_1_decays_its_lr_at_half_and_three_quarters_of_the_stage():
    """LibAUC examples/trainer_recipes/image_trainer/config_ce_PneumoniaMNIST.yaml: `epochs: 60`,
    `optimizer: Adam`, `lr: 1.0e-3`, `decay_epochs: [0.5, 0.75]`; libauc/trainer/config/args.py:
    `self.decay_epochs[i] = int(self.decay_epochs[i] * self.epochs)`; callbacks.py on_epoch_begin:
    `if optimizer and state.epoch in args.decay_epochs: ... optimizer.update_lr(decay_factor=10)`.
    Oracle: libauc's Adam stepped by that rule over the 60-epoch stage."""
    model = create_model(2, 1, width=0.125)
    method = create_method("aucm_ce", model, {}, tiny_ctx(epochs=120))
    bce, _ = method.stages()
    oracle = LibAUCAdam(create_model(2, 1, width=0.125).parameters(), lr=1e-3, weight_decay=1e-4, verbose=False)
    expected = []
    for epoch in range(60):
        if epoch in (int(0.5 * 60), int(0.75 * 60)):
            oracle.update_lr(decay_factor=10)
        expected.append(oracle.param_groups[0]["lr"])
    assert stage_lrs(method, bce, 60) == pytest.approx(expected)
    assert method.optimizer.param_groups[0]["weight_decay"] == 1e-4


def test_aucm_ce_stage_2_starts_from_the_last_stage_1_weights_with_a_fresh_head():
    """LibAUC config_auc_PneumoniaMNIST.yaml: `pretrained_path: "./output/resnet18_ce_PneumoniaMNIST/
    epoch_60.pt"` (the last stage-1 epoch), and libauc/trainer/core/image_trainer.py loads it without
    the head (`if not any(part in k.split(".") for part in _HEAD_PARTS)`), then `for attr in ("fc",
    "linear"): ... head.reset_parameters()`."""
    config = resolve_config(RunConfig(dataset="synthetic2d", method="aucm_ce", **{**TINY, "epochs": 4}))
    trainer = Trainer(config, load_dataset(config), resolve_device(config.device), progress=False)
    weights = {}
    begin_stage, end_epoch = trainer.method.begin_stage, trainer.method.end_epoch

    def keep_weights(key):
        weights[key] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    def spy_begin(stage, epochs):
        keep_weights(f"start {stage.name}")
        begin_stage(stage, epochs)

    def spy_end(epoch, val_auc):
        keep_weights(f"end {trainer.method.stage}")
        end_epoch(epoch, val_auc)

    trainer.method.begin_stage, trainer.method.end_epoch = spy_begin, spy_end
    trainer.fit()
    last_bce, start_aucm = weights["end bce"], weights["start aucm"]
    backbone = [k for k in last_bce if not k.startswith("fc.")]
    assert all(torch.equal(last_bce[k], start_aucm[k]) for k in backbone)
    assert not torch.equal(last_bce["fc.weight"], start_aucm["fc.weight"])


AUCM_EXAMPLE_RECIPE = {"lr": 0.1, "margin": 1.0, "epoch_decay": 0.003, "weight_decay": 0.0001, "momentum": 0.9,
                       "sampling_rate": 0.2}


def test_aucm_defaults_are_libaucs_from_scratch_example_recipe():
    """LibAUC examples/02_Optimizing_AUROC_with_ResNet20_on_Imbalanced_CIFAR10.ipynb, HyperParameters:
        BATCH_SIZE = 128 / total_epochs = 100 / decay_epochs = [50, 75] / lr = 0.1 / margin = 1.0 /
        epoch_decay = 0.003 # refers gamma in the paper / weight_decay = 0.0001 / sampling_rate = 0.2
    and `loss_fn = AUCMLoss()`, `PESG(model.parameters(), loss_fn=loss_fn, lr=lr, momentum=0.9,
    margin=margin, epoch_decay=epoch_decay, weight_decay=weight_decay)`. Oracle: that PESG and
    AUCMLoss() built by libauc."""
    params = resolve_params("aucm", {})
    assert {key: params[key] for key in AUCM_EXAMPLE_RECIPE} == AUCM_EXAMPLE_RECIPE
    method = create_method("aucm", create_model(2, 1, width=0.125), params, tiny_ctx(epochs=100))
    loss_fn = AUCMLoss()
    oracle = PESG(create_model(2, 1, width=0.125).parameters(), loss_fn=loss_fn, lr=0.1, momentum=0.9, margin=1.0,
                  epoch_decay=0.003, weight_decay=0.0001, verbose=False, device=CPU)
    assert scalar_settings(method.optimizer) == scalar_settings(oracle)
    assert (method.aucm.margin, method.aucm.version) == (loss_fn.margin, loss_fn.version)
    assert method.decays == [50, 75] and resolve_config(RunConfig(dataset="synthetic2d", method="aucm")).batch_size == 128
    assert method.sampling("none") == Sampling("dual", 0.2)


def scalar_settings(optimizer) -> dict:
    """An optimizer's hyperparameters (its first parameter group without tensors)."""
    return {k: v for k, v in optimizer.param_groups[0].items() if isinstance(v, (bool, int, float, str, tuple))}


def test_ldam_head_gives_the_unscaled_cosines_and_the_run_scores_cos_1():
    """alm-dnn models/resnet.py, NormedLinear: `out = F.normalize(x, dim=1).mm(F.normalize(self.weight,
    dim=0))` (no scale; LDAMLoss applies `self.s * output`), and utils/train_test_CIFAR.py scores LDAM
    runs with class 1's output: `val_logits[i] = el[1]`, `test_logits[i] = el[1]`."""
    model = create_model(2, 1, width=0.125, head="cosine_pair")
    features = torch.tensor([[3.0, 4.0] + [0.0] * (model.fc.weight.shape[1] - 2)])
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.weight[0, 0] = 2.0  # class 0 along e1: cos = 3/5
        model.fc.weight[1, 1] = 5.0  # class 1 along e2: cos = 4/5
    cosines = model.fc(features).detach()
    assert cosines.tolist() == [pytest.approx([0.6, 0.8])]
    for name in ("ldam", "alm+ldam"):
        method = create_method(name, model, resolve_params(name, {}), tiny_ctx())
        assert method.score(cosines).tolist() == pytest.approx([0.8])
        assert get_method(name).model_options(resolve_params(name, {}))["head"] == "cosine_pair"
    assert create_method("bce", model, {}, tiny_ctx()).score(torch.tensor([0.3])).tolist() == pytest.approx([0.3])


def test_head_regularizers():
    model = create_model(2, 1, width=0.125, head="cosine", head_scale=5.0)
    out = model(torch.randn(4, 1, 8, 8))
    assert out.shape == (4, 1) and out.abs().max() <= 5.0 + 1e-5
    options = get_method("bce").model_options(resolve_params("bce", {"max_norm": "0.01"}))
    linear = create_model(2, 1, width=0.125, **options)
    with torch.no_grad():
        linear.fc.weight.mul_(100)
    linear.constrain_head()
    assert float(linear.fc.weight.norm()) == pytest.approx(0.01, rel=1e-4)
    with pytest.raises(CritBenchError, match="head must be"):
        resolve_params("bce", {"head": "mlp"})


def test_augmentations_on_the_device():
    gen = torch.Generator().manual_seed(0)
    x2 = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    assert torch.equal(create_augmentation("crop_flip", 2)(x2, torch.Generator().manual_seed(1)),
                       crop_flip(x2, torch.Generator().manual_seed(1)))  # CIFAR's default unchanged
    flipped = create_augmentation("flip", 2)(x2, gen)
    for image, out in zip(x2, flipped):  # each image is itself or its horizontal mirror
        assert torch.equal(out, image) or torch.equal(out, image.flip(-1))
    rotated = create_augmentation("flip+rotate+crop", 2)(x2, gen)
    assert rotated.shape == x2.shape and rotated.dtype == torch.float32
    assert torch.equal(create_augmentation("flip+rotate+crop", 2)(x2, gen, train=False), x2)
    x3 = torch.full((4, 1, 4, 4, 4), 200, dtype=torch.uint8)
    shape_aug = create_augmentation("scale+flip", 3)
    scaled = shape_aug(x3, gen)
    factors = scaled.flatten(1).max(1).values / 200
    assert ((factors >= 0) & (factors <= 1)).all() and scaled.flatten(1).std(1).max() == 0
    assert torch.equal(shape_aug(x3, gen, train=False), torch.full(x3.shape, 100.0))  # eval x 0.5
    assert create_augmentation("none", 3) is None and create_augmentation(None, 2) is None
    with pytest.raises(CritBenchError, match="3D augmentation 'rotate'"):
        create_augmentation("flip+rotate", 3)


def test_run_config_checks_sampler_and_augment():
    with pytest.raises(CritBenchError, match="--sampler"):
        resolve_config(RunConfig(dataset="synthetic2d", method="bce", sampler="smote"))
    with pytest.raises(CritBenchError, match="augmentation"):
        resolve_config(RunConfig(dataset="synthetic3d", method="bce", augment="crop"))
    config = resolve_config(RunConfig(dataset="synthetic3d", method="bce", sampler="oversample", augment="scale+flip"))
    assert config.to_dict()["sampler"] == "oversample" and config.augment == "scale+flip"


def test_sampler_and_augment_reach_training(tmp_path):
    record = run_benchmark(resolve_config(RunConfig(dataset="synthetic3d", method="bce", sampler="undersample",
                                                    augment="scale+flip", **{**TINY, "size": 8})), progress=False)
    assert record["config"]["sampler"] == "undersample" and math.isfinite(record["history"][0]["train_loss"])


def test_rate_constraint_multiplier_and_report():
    model = create_model(2, 1, width=0.125)
    method = create_method("rate_constrained", model, {"min_tpr": "0.9", "dual_lr": "0.5"}, tiny_ctx())
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    logits = torch.tensor([-1.0, 2.0, -1.0, 1.0], requires_grad=True)  # true TPR 0.5 < 0.9
    method.loss(logits, y, None).backward()
    method.after_step()
    assert method.multiplier() == pytest.approx(0.5 * (0.9 - 0.5))  # one ascent step on the true violation
    proxy = 0.9 - (torch.sigmoid(torch.tensor(-1.0)) + torch.sigmoid(torch.tensor(2.0))).item() / 2
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits.detach(), y).item()
    # the term in the epoch's loss used the multiplier before this step's ascent: 0
    assert method.state_summary() == {"multiplier": pytest.approx(0.2), "violation_mean": pytest.approx(0.4),
                                      "proxy_violation_mean": pytest.approx(proxy), "term_to_loss": 0.0}
    method.loss(logits, y, None)
    assert method.activity()["term_to_loss"] == pytest.approx(0.2 * proxy / (2 * bce))  # summed over both steps
    method.end_epoch(0, 0.5)
    assert method.activity() == {"violation_mean": 0.0, "proxy_violation_mean": 0.0, "term_to_loss": 0.0}
    report = method.report({"val": (y.numpy(), torch.tensor([1.0, 2.0, -1.0, 1.0]).numpy())})["constraint"]
    assert report["threshold"] == 0.0 and report["min_tpr"] == 0.9
    assert report["val"] == {"tpr": 1.0, "fpr": 0.5, "satisfied": True}
    config = resolve_config(RunConfig(dataset="synthetic2d", method="rate_constrained", **TINY))
    record = run_benchmark(config, progress=False)
    assert set(record["constraint"]) >= {"val", "test", "threshold", "min_tpr"}
    assert isinstance(record["constraint"]["val"]["satisfied"], bool)
