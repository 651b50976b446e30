"""Cao et al.'s long-tailed CIFAR recipe (kaidic/LDAM-DRW cifar_train.py) as the preset `cifar_lt`:
its values, the lr schedule, DRW's start, the dataset protocol that applies it, and a short run's
record (top-1, per-class, group and last-epoch results)."""
import dataclasses

import pytest
import torch

from benchmarks.core.config import RunConfig
from benchmarks.core.metrics import group_accuracies, shot_groups
from benchmarks.core.records import record_problem
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import resolve_config
from benchmarks.methods import create_method
from benchmarks.methods.multiclass import ClassContext, cao_factor
from benchmarks.methods.presets import CLASS_PRESETS, CLASS_RUN
from benchmarks.run import build_parser, config_from_args
from datasets import get_dataset_entry
from models3d import create_model

SIZES = (5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50)


def reference_lr(epoch, lr=0.1):
    """kaidic/LDAM-DRW cifar_train.py `adjust_learning_rate`, line by line: `epoch = epoch + 1`,
    `if epoch <= 5: lr = args.lr * epoch / 5`, `elif epoch > 180: lr = args.lr * 0.0001`,
    `elif epoch > 160: lr = args.lr * 0.01`, `else: lr = args.lr`."""
    epoch = epoch + 1
    if epoch <= 5:
        return lr * epoch / 5
    if epoch > 180:
        return lr * 0.0001
    if epoch > 160:
        return lr * 0.01
    return lr


def ldam_drw(epochs=200):
    ctx = ClassContext(dims=2, epochs=epochs, device=torch.device("cpu"), n_train=sum(SIZES),
                       train_positive_rate=SIZES[-1] / sum(SIZES), batch_size=128, class_sizes=SIZES, critical=(9,))
    model = create_model(2, 3, arch="resnet32", width=0.125, num_outputs=10, head="cosine")
    return create_method("ldam_ce", model, {"preset": "cifar_lt", "drw": True}, ctx)


def test_preset_is_the_references_arguments():
    """cifar_train.py: `'--lr', default=0.1`, `'--momentum', default=0.9`, `'--wd', default=2e-4`,
    `'-b', '--batch-size', default=128`, `'-a', '--arch', default='resnet32'`, `'--epochs', default=200`,
    `torch.optim.SGD(model.parameters(), args.lr, momentum=args.momentum, weight_decay=args.weight_decay)`."""
    assert CLASS_PRESETS["cifar_lt"] == {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 2e-4,
                                         "schedule": "cao", "warmup_epochs": 5}
    assert CLASS_RUN["cifar_lt"] == {"model": "resnet32", "batch_size": 128}
    assert get_dataset_entry("cifar10_lt").epochs == 200 and get_dataset_entry("cifar10_lt").patience == 0
    method = ldam_drw()
    group = method.optimizer.param_groups[0]
    assert isinstance(method.optimizer, torch.optim.SGD)
    assert (group["momentum"], group["weight_decay"], group["nesterov"]) == (0.9, 2e-4, False)


def test_lr_schedule_is_adjust_learning_rate_epoch_by_epoch():
    method = ldam_drw()
    for epoch in range(200):
        assert method.lr() == pytest.approx(reference_lr(epoch), rel=1e-12), epoch
        method.optimizer.step()
        method.end_epoch(epoch, 0.5)
    assert [cao_factor(e, 100, 5) for e in (0, 4, 5, 79, 80, 89, 90)] == [0.2, 1.0, 1.0, 1.0, 0.01, 0.01, 1e-4]


def test_drw_reweights_from_epoch_160_of_200():
    """cifar_train.py DRW: `idx = epoch // 160`, `betas = [0, 0.9999]`: weights 1 up to epoch 159
    (0-based), class-balanced from epoch 160."""
    method = ldam_drw()
    for epoch in range(200):
        assert method.reweighting == (epoch // 160 == 1), epoch
        method.optimizer.step()
        method.end_epoch(epoch, 0.5)


def test_dataset_protocol_applies_the_recipe_to_multiclass_runs_only():
    multiclass = resolve_config(RunConfig(dataset="cifar10_lt", method="ce", task="multiclass", epochs=200))
    assert (multiclass.model, multiclass.batch_size, multiclass.patience) == ("resnet32", 128, 0)
    assert {k: multiclass.params[k] for k in ("preset", "optimizer", "lr", "schedule")} == {
        "preset": "cifar_lt", "optimizer": "sgd", "lr": 0.1, "schedule": "cao"}
    own = resolve_config(RunConfig(dataset="cifar10_lt", method="ce", task="multiclass", model="resnet18",
                                   params={"lr": 0.05}))
    assert own.model == "resnet18" and own.params["lr"] == 0.05 and own.params["optimizer"] == "sgd"
    binary = resolve_config(RunConfig(dataset="cifar10_lt", method="bce"))
    assert "preset" not in binary.params or binary.params["preset"] == ""
    assert resolve_config(RunConfig(dataset="dermamnist", method="ce", task="multiclass")).params["preset"] == ""


def test_command_line_epochs_default_to_the_datasets_protocol():
    parse = build_parser().parse_args
    assert config_from_args(parse(["--dataset", "cifar10_lt", "--method", "ce"])).epochs == 200
    assert config_from_args(parse(["--dataset", "cifar10_lt", "--method", "ce", "--epochs", "3"])).epochs == 3
    assert config_from_args(parse(["--dataset", "pneumoniamnist", "--method", "bce"])).epochs == 100


def test_shot_groups_and_their_accuracies():
    groups = shot_groups(list(SIZES), (1000, 200))
    assert groups == {"many": [0, 1, 2, 3], "medium": [4, 5, 6], "few": [7, 8, 9]}
    recall = [1.0, 1.0, 0.8, 0.6, 0.5, 0.5, 0.2, 0.1, 0.0, 0.2]
    accuracies = group_accuracies(recall, shot_groups([120, 50, 10], (100, 20)))
    assert accuracies == {"many": {"classes": [0], "acc": 1.0}, "medium": {"classes": [1], "acc": 1.0},
                          "few": {"classes": [2], "acc": 0.8}}
    assert group_accuracies(recall[:2], {"many": [0, 1], "medium": [], "few": []})["medium"]["acc"] is None


def test_short_run_records_top1_per_class_groups_and_the_last_epoch(tmp_path):
    stand_in = get_dataset_entry("cifar10_lt").stand_in(tmp_path)
    config = RunConfig(dataset="cifar10_lt", method="ldam_ce", task="multiclass", epochs=3, width=0.125,
                       device="cpu", params={"drw": True}, **stand_in.run_kwargs())
    record = run_benchmark(resolve_config(config), progress=False)
    assert record_problem(record) is None
    results = record["multiclass"]
    assert len(results["test"]["recall"]) == 10 and set(results["test"]["groups"]) == {"many", "medium", "few"}
    assert results["last_epoch"]["epoch"] == 3 and set(results["last_epoch"]["test"]) >= {"acc", "recall", "groups"}
    if record["best_epoch"] == 3:
        assert results["last_epoch"]["test"] == results["test"]
    assert all(0 <= entry["val_acc"] <= 1 for entry in record["history"])
    assert record["config"]["model"] == "resnet32" and record["dataset"]["reference_train_counts"][0] == 12
    assert dataclasses.asdict(resolve_config(config))["params"]["schedule"] == "cao"
