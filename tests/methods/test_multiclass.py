"""The multi-class framing (--task multiclass): its losses against their references, the critical
class's score, the MedMNIST metrics against medmnist's evaluator, the refusals, the run id, and a
DermaMNIST run planned without data and trained on a stand-in file."""
import dataclasses
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from medmnist import INFO
from medmnist.evaluator import getACC, getAUC

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.identity import run_id
from benchmarks.core.metrics import class_metrics, medmnist_task
from benchmarks.core.records import record_problem
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from benchmarks.methods import create_method
from benchmarks.methods.alm import alm_penalty
from benchmarks.methods.multiclass import ClassContext, critical_columns, critical_logit
from datasets.base import file_md5
from datasets.medmnist_binary import write_npz
from models3d import create_model

CPU = torch.device("cpu")
SIZES = (50, 20, 10, 5)


def context(critical=(3,), multilabel=False, epochs=10):
    return ClassContext(dims=2, epochs=epochs, device=CPU, n_train=sum(SIZES), train_positive_rate=SIZES[3] / sum(SIZES),
                        batch_size=8, class_sizes=SIZES, critical=critical, multilabel=multilabel)


def method(name, values=None, **ctx):
    model = create_model(2, 1, width=0.125, num_outputs=len(SIZES))
    return create_method(name, model, values or {}, context(**ctx))


def batch(seed=0, n=12):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(SIZES), generator=gen), torch.randint(0, len(SIZES), (n,), generator=gen)


class ReferenceLDAMLoss(torch.nn.Module):
    """kaidic/LDAM-DRW losses.py `LDAMLoss`, line by line, on the CPU (`torch.cuda.FloatTensor` -> float):

        m_list = 1.0 / np.sqrt(np.sqrt(cls_num_list))
        m_list = m_list * (max_m / np.max(m_list))
        index = torch.zeros_like(x, dtype=torch.uint8)
        index.scatter_(1, target.data.view(-1, 1), 1)
        batch_m = torch.matmul(self.m_list[None, :], index_float.transpose(0,1))
        x_m = x - batch_m.view((-1, 1))
        output = torch.where(index, x_m, x)
        return F.cross_entropy(self.s*output, target, weight=self.weight)"""

    def __init__(self, cls_num_list, max_m=0.5, weight=None, s=30):
        super().__init__()
        m_list = 1.0 / np.sqrt(np.sqrt(cls_num_list))
        m_list = m_list * (max_m / np.max(m_list))
        self.m_list, self.s, self.weight = torch.FloatTensor(m_list), s, weight

    def forward(self, x, target):
        index = torch.zeros_like(x, dtype=torch.uint8)
        index.scatter_(1, target.data.view(-1, 1), 1)
        batch_m = torch.matmul(self.m_list[None, :], index.float().transpose(0, 1)).view((-1, 1))
        output = torch.where(index.bool(), x - batch_m, x)
        return F.cross_entropy(self.s * output, target, weight=self.weight)


def reference_drw_weights(cls_num_list, beta=0.9999):
    """kaidic/LDAM-DRW cifar_train.py, DRW: `effective_num = 1.0 - np.power(betas[idx], cls_num_list)`,
    `per_cls_weights = (1.0 - betas[idx]) / np.array(effective_num)`,
    `per_cls_weights = per_cls_weights / np.sum(per_cls_weights) * len(cls_num_list)`."""
    weights = (1.0 - beta) / (1.0 - np.power(beta, cls_num_list))
    return torch.FloatTensor(weights / np.sum(weights) * len(cls_num_list))


@pytest.mark.parametrize("drw", [False, True])
def test_ldam_is_kaidics_ldam_loss_on_the_cosines(drw):
    ldam = method("ldam_ce", {"drw": drw, "drw_start": 0.5})
    cosines, target = torch.rand(12, len(SIZES)) * 2 - 1, batch()[1]
    ldam.optimizer.step()  # (no gradients: nothing moves) so that the schedule may step
    for epoch in range(5):  # DRW switches on at epoch 5 of 10
        ldam.end_epoch(epoch, 0.5)
    reference = ReferenceLDAMLoss(list(SIZES), weight=reference_drw_weights(SIZES) if drw else None)
    torch.testing.assert_close(ldam.objective(30 * cosines, target), reference(cosines, target))


def test_focal_is_kaidics_focal_loss():
    """kaidic/LDAM-DRW losses.py: `p = torch.exp(-input_values)`, `loss = (1 - p) ** gamma * input_values`,
    `return loss.mean()` over `F.cross_entropy(input, target, reduction='none')`."""
    outputs, target = batch()
    ce = F.cross_entropy(outputs, target, reduction="none")
    expected = ((1 - torch.exp(-ce)) ** 2.0 * ce).mean()
    torch.testing.assert_close(method("focal_ce", {"gamma": 2.0}).objective(outputs, target), expected)


def reference_focal_loss(outputs, target, gamma, weight=None):
    """kaidic/LDAM-DRW losses.py `FocalLoss.forward`: `focal_loss(F.cross_entropy(input, target,
    reduction='none', weight=self.weight), self.gamma)`, `p = torch.exp(-input_values)`,
    `loss = (1 - p) ** gamma * input_values`, `return loss.mean()`."""
    values = F.cross_entropy(outputs, target, reduction="none", weight=weight)
    return ((1 - torch.exp(-values)) ** gamma * values).mean()


def after_epochs(trained, epochs):
    for epoch in range(epochs):
        trained.optimizer.step()  # (no gradients: nothing moves) so that the schedule may step
        trained.end_epoch(epoch, 0.5)
    return trained


@pytest.mark.parametrize("name, reference", [
    ("ce", lambda outputs, target, weight: F.cross_entropy(outputs, target, weight=weight)),
    ("focal_ce", lambda outputs, target, weight: reference_focal_loss(outputs, target, 1.0, weight)),
])
def test_drw_is_kaidics_deferred_reweighting_of_ce_and_focal(name, reference):
    """kaidic/LDAM-DRW cifar_train.py, `train_rule == 'DRW'`: `idx = epoch // 160`, `betas = [0, 0.9999]`,
    then `criterion = nn.CrossEntropyLoss(weight=per_cls_weights)` (CE) or `FocalLoss(weight=per_cls_weights,
    gamma=1)` (Focal); here drw_start 0.5 of 10 epochs stands for 160 of 200."""
    drw = method(name, {"drw": True, "drw_start": 0.5})
    outputs, target = batch()
    torch.testing.assert_close(after_epochs(drw, 4).objective(outputs, target), reference(outputs, target, None))
    assert drw.state_summary() == {"drw": False}
    torch.testing.assert_close(after_epochs(drw, 5).objective(outputs, target),
                               reference(outputs, target, reference_drw_weights(SIZES)))
    assert drw.state_summary() == {"drw": True} and method(name).state_summary() == {}


def test_drw_start_0_reweights_from_the_first_epoch_as_kaidics_reweight_rule():
    """cifar_train.py `train_rule == 'Reweight'`: the same `per_cls_weights` (beta 0.9999) from epoch 0."""
    outputs, target = batch()
    reweighted = method("ce", {"drw": True, "drw_start": 0.0})
    torch.testing.assert_close(reweighted.objective(outputs, target),
                               F.cross_entropy(outputs, target, weight=reference_drw_weights(SIZES)))


def test_drw_state_survives_a_checkpoint_beside_alm_ces_multipliers():
    trained = after_epochs(method("alm_ce", {"drw": True, "drw_start": 0.5}), 5)
    trained.multipliers += 0.25
    state = trained.state_dict()
    assert state["reweighting"] and set(state) == {"reweighting", "multipliers", "schedule"}
    resumed = method("alm_ce", {"drw": True, "drw_start": 0.5})
    resumed.load_state_dict(state)
    assert resumed.reweighting and float(resumed.multipliers.max()) == 0.25
    assert {"drw", "mu", "term_to_loss"} <= set(resumed.state_summary())


@pytest.mark.parametrize("values", [{"drw_start": 1.5}, {"drw_start": -0.1}])
def test_drw_start_outside_the_epochs_is_refused(values):
    with pytest.raises(CritBenchError, match=re.escape(f"drw_start must be in [0, 1] (a share of the epochs), got "
                                                       f"{values['drw_start']}")):
        method("ce", values)


@pytest.mark.parametrize("name", ["ce", "focal_ce", "alm_ce"])
@pytest.mark.parametrize("drw, refused", [("true", True), ("false", False)])
def test_drw_on_multilabel_data_is_refused_before_any_data(name, drw, refused, tmp_path):
    config = RunConfig(dataset="chestmnist", method=name, task="multiclass", data_dir=str(tmp_path / "absent"),
                       params={"critical": "pneumothorax", "drw": drw})
    if not refused:
        assert resolve_config(config).params["drw"] is False
        return
    with pytest.raises(CritBenchError, match=re.escape("--param drw=true re-weights the softmax classes of one label "
                                                       "per sample; chestmnist is multi-label: drop drw")):
        resolve_config(config)


@pytest.mark.parametrize("drw", ["true", "false"])
def test_ldam_ce_on_multilabel_data_names_the_methods_that_run_there_whatever_drw_says(drw, tmp_path):
    """The method's own refusal comes first: dropping drw would not make ldam_ce run on ChestMNIST."""
    config = RunConfig(dataset="chestmnist", method="ldam_ce", task="multiclass", data_dir=str(tmp_path / "absent"),
                       params={"critical": "pneumothorax", "drw": drw})
    with pytest.raises(CritBenchError, match=re.escape("--method ldam_ce is a softmax loss over one label per sample; "
                                                       "chestmnist is multi-label: use ce, focal_ce, maucm or alm_ce")):
        resolve_config(config)


def test_class_balanced_ce_averages_each_samples_weighted_loss():
    """Hand-computed: two samples of classes 0 and 3, ins weights 1/n scaled to sum to K = 4."""
    raw = torch.tensor([1 / 50, 1 / 20, 1 / 10, 1 / 5])
    weights = raw * 4 / raw.sum()
    outputs, target = torch.tensor([[2.0, 0, 0, 0], [0, 0, 0, 1.0]]), torch.tensor([0, 3])
    e = torch.exp(torch.tensor([2.0, 1.0]))
    ce0, ce3 = -torch.log(e / (e + 3))  # the true class's logit 2 (sample 1) and 1 (sample 2), the others 0
    expected = (weights[0] * ce0 + weights[3] * ce3) / 2
    torch.testing.assert_close(method("cb_ce", {"weighting": "ins"}).objective(outputs, target), expected)


def test_the_critical_score_is_the_log_odds_of_the_critical_probability():
    outputs = batch()[0]
    probability = torch.softmax(outputs, 1)[:, [1, 3]].sum(1)
    torch.testing.assert_close(torch.sigmoid(critical_logit(outputs, (1, 3), False)), probability)
    torch.testing.assert_close(critical_logit(outputs, (2,), True), outputs[:, 2])  # one sigmoid output: its logit
    either = 1 - (1 - torch.sigmoid(outputs[:, 0])) * (1 - torch.sigmoid(outputs[:, 1]))
    torch.testing.assert_close(torch.sigmoid(critical_logit(outputs, (0, 1), True)), either)


def test_alm_ce_is_cross_entropy_plus_the_binary_alm_term_on_the_critical_score():
    alm = method("alm_ce", {"delta": 0.5, "mu0": 0.1})
    outputs, target = batch()
    members = (target == 3).float()
    score = critical_logit(outputs, (3,), False)
    hinge = torch.relu(0.5 - (score[:, None] - score[None, :])) * (1 - members)[None, :]
    q = hinge.sum(1) * members
    expected = F.cross_entropy(outputs, target) + alm_penalty(q, torch.zeros(12), 0.1, members)
    torch.testing.assert_close(alm.loss(outputs, target, torch.arange(12)), expected)
    alm.after_step()
    torch.testing.assert_close(alm.multipliers[:12], 0.1 * q)


@pytest.mark.parametrize("num_classes,multilabel", [(4, False), (2, False), (3, True)])
def test_medmnist_metrics_are_medmnists_evaluator(num_classes, multilabel):
    rng = np.random.default_rng(0)
    probabilities = rng.random((40, num_classes))
    if multilabel:
        classes = (rng.random((40, num_classes)) < 0.4).astype(np.int64)
    else:
        probabilities /= probabilities.sum(1, keepdims=True)
        classes = np.arange(40) % num_classes
    task = medmnist_task(num_classes, multilabel)
    metrics = class_metrics(classes, probabilities, multilabel)
    assert metrics["acc"] == pytest.approx(getACC(classes, probabilities, task))
    assert metrics["auc"] == pytest.approx(getAUC(classes, probabilities, task))
    assert len(metrics["recall"]) == num_classes


def test_binary_run_ids_leave_the_task_out_and_multiclass_ones_keep_it():
    binary = RunConfig(dataset="synthetic2d_mc", method="ce")
    assert "task" not in binary.identity()
    multiclass = RunConfig(dataset="synthetic2d_mc", method="ce", task="multiclass")
    assert multiclass.identity()["task"] == "multiclass" and run_id(binary, "x") != run_id(multiclass, "x")


@pytest.mark.parametrize("dataset,method,task,message", [
    ("synthetic2d_mc", "wbce", "multiclass", "--method wbce trains --task binary, not --task multiclass: use --task binary, or choose one of the methods for "
                                            "--task multiclass: alm_ce, autobalance_ce, cb_ce, ce, focal_ce, ldam_ce, maucm"),
    ("synthetic2d_mc", "ce", "binary", "--method ce trains --task multiclass, not --task binary"),
    ("synthetic2d", "ce", "multiclass", "dataset synthetic2d has no class labels beyond its binary task"),
    ("chestmnist", "ldam_ce", "multiclass", "chestmnist is multi-label: use ce, focal_ce, maucm or alm_ce"),
    ("synthetic2d_mc", "ce", "multi", "unknown --task 'multi'; valid: binary, multiclass"),
])
def test_a_framing_a_method_or_dataset_cannot_train_is_refused_before_any_data(dataset, method, task, message, tmp_path):
    config = RunConfig(dataset=dataset, method=method, task=task, data_dir=str(tmp_path / "absent"),
                       params={"critical": "pneumothorax"} if dataset == "chestmnist" else {})
    with pytest.raises(CritBenchError, match=re.escape(message)):
        resolve_config(config)


def test_dermamnist_plans_without_data_and_trains_on_a_stand_in(tmp_path, monkeypatch):
    absent = RunConfig(dataset="dermamnist", method="alm_ce", task="multiclass", data_dir=str(tmp_path / "absent"))
    assert resolve_config(absent).task == "multiclass"  # planned: nothing read
    monkeypatch.setitem(INFO["dermamnist"], "MD5", file_md5(write_npz("dermamnist", tmp_path, n=28)))
    tiny = dict(epochs=1, width=0.125, batch_size=8, stem="standard", device="cpu", data_dir=str(tmp_path))
    record = run_benchmark(resolve_config(RunConfig(dataset="dermamnist", method="ce", task="multiclass", **tiny)),
                           progress=False)
    record = json.loads(json.dumps(record))
    assert record["status"] == "complete" and record_problem(record) is None
    assert record["dataset"]["critical_class"] == "melanoma" and record["dataset"]["critical_labels"] == [4]
    assert len(record["dataset"]["class_names"]) == 7 and len(record["multiclass"]["confusion_matrix"]) == 7
    assert {"acc", "auc", "balanced_accuracy", "recall"} <= set(record["multiclass"]["test"])
    assert {"auc", "tpr_at_fpr", "fpr_at_tpr"} <= set(record["test"])  # the critical class, as in the binary framing
    binary = run_benchmark(resolve_config(RunConfig(dataset="dermamnist", method="bce", **tiny)), progress=False)
    assert binary["dataset"]["critical_class"] == "melanoma" and "multiclass" not in binary
    assert binary["dataset"]["split_md5"]["test"] == record["dataset"]["split_md5"]["test"]  # one test set, both framings


@pytest.mark.parametrize("binary, multiclass", [("alm", "alm_ce"), ("bce", "ce"), ("focal", "focal_ce"),
                                                ("cb_bce", "cb_ce"), ("ldam", "ldam_ce"), ("aucm", "maucm"),
                                                ("autobalance", "autobalance_ce")])
def test_a_binary_methods_name_with_task_multiclass_trains_its_multiclass_variant(binary, multiclass):
    """`--dataset dermamnist --task multiclass --method alm` (issue 23) plans alm_ce, with alm_ce's run id."""
    planned = resolve_config(RunConfig(dataset="dermamnist", method=binary, task="multiclass"))
    assert planned == resolve_config(RunConfig(dataset="dermamnist", method=multiclass, task="multiclass"))
    assert resolve_config(RunConfig(dataset="dermamnist", method=binary)).method == binary


@pytest.mark.parametrize("method", ["alm+focal", "aucm_ce", "wbce"])
def test_binary_methods_without_a_multiclass_variant_are_refused_for_task_multiclass(method):
    with pytest.raises(CritBenchError, match=f"--method {re.escape(method)} trains --task binary, not --task multiclass"):
        resolve_config(RunConfig(dataset="dermamnist", method=method, task="multiclass"))


@pytest.mark.parametrize("values, says", [
    ({"optimizer": "sgd"}, "unknown parameter 'optimizer'; valid: epoch_decay"),
    ({"warmup_epochs": 3}, "unknown parameter 'warmup_epochs'"),
    ({"preset": "cifar_lt"}, "unknown parameter 'preset'"),
    ({"schedule": "cao"}, "schedule must be one of medmnist, constant"),
])
def test_maucm_refuses_the_adam_sgd_terms_its_pesg_never_reads(values, says):
    """maucm trains with LibAUC's PESG alone: the Adam/SGD methods' optimizer, warm-up and preset
    would be silently ignored, so they are refused, naming maucm's own parameters."""
    with pytest.raises(CritBenchError, match=re.escape(says)):
        method("maucm", values)


def test_maucm_decays_pesgs_lr_at_half_and_three_quarters_of_the_epochs():
    """LibAUC's ChestMNIST recipe: `decay_epochs: [0.5, 0.75]`, each `optimizer.update_regularizer(decay_factor=10)`."""
    maucm = method("maucm", epochs=8)
    assert maucm.scheduler is None
    lrs = []
    for epoch in range(8):
        maucm.end_epoch(epoch, 0.5)
        lrs.append(maucm.optimizer.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1] * 3 + [0.01] * 2 + [0.001] * 3)


def test_select_on_all_classes_selects_and_stops_on_the_auc_over_every_label(monkeypatch, tmp_path):
    """MedMNIST/experiments train_and_eval_pytorch.py keeps the model of the best validation AUC over
    every label (`if cur_auc > best_auc`, cur_auc = the Evaluator's AUC); CritBench's default keeps
    the critical class's. The all-label AUC here peaks in epoch 1, which --select-on all_classes picks."""
    over_epochs = iter([0.9, 0.5, 0.6, 0.7])
    monkeypatch.setattr("benchmarks.engine.trainer.medmnist_auc", lambda *args: next(over_epochs))
    config = RunConfig(dataset="synthetic2d_mc", method="ce", task="multiclass", select_on="all_classes", epochs=4,
                       width=0.125, size=8, device="cpu", patience=0)
    record = run_benchmark(resolve_config(config), progress=False)
    assert [entry["val_class_auc"] for entry in record["history"]] == [0.9, 0.5, 0.6, 0.7]
    assert record["best_epoch"] == 1 and record["config"]["select_on"] == "all_classes"
    monkeypatch.undo()
    critical = run_benchmark(resolve_config(dataclasses.replace(config, select_on="critical")), progress=False)
    val_aucs = [entry["val_auc"] for entry in critical["history"]]
    assert critical["best_epoch"] == val_aucs.index(max(val_aucs)) + 1


def test_select_on_all_classes_needs_the_multiclass_task_and_enters_the_run_id_only_when_set():
    with pytest.raises(CritBenchError, match=re.escape("--select-on all_classes selects on the AUC over every label, "
                                                       "which only --task multiclass scores")):
        resolve_config(RunConfig(dataset="synthetic2d", method="bce", select_on="all_classes"))
    with pytest.raises(CritBenchError, match=re.escape("unknown --select-on 'macro'; valid: critical, all_classes")):
        resolve_config(RunConfig(dataset="synthetic2d_mc", method="ce", task="multiclass", select_on="macro"))
    plain = RunConfig(dataset="synthetic2d_mc", method="ce", task="multiclass")
    assert "select_on" not in plain.identity()
    assert run_id(plain, "x") != run_id(dataclasses.replace(plain, select_on="all_classes"), "x")


def test_alm_ce_trains_after_a_run_that_first_built_the_critical_columns_while_scoring():
    """`critical_columns` is cached for the process; its first call may come from scoring, inside
    `torch.inference_mode`. The cached index tensors must still serve a training loss (ce then
    alm_ce in one leaderboard process): an inference tensor there stops backpropagation."""
    critical_columns.cache_clear()
    with torch.inference_mode():
        critical_logit(torch.randn(4, 3), (2,), independent=False)  # as ce's validation scoring
    outputs = torch.randn(4, 3, requires_grad=True)
    critical_logit(outputs, (2,), independent=False).sum().backward()  # as alm_ce's training loss
    assert outputs.grad is not None and outputs.grad.abs().sum() > 0
