"""The training loop: early stopping, checkpoint copies, single test scoring, reproducibility."""
import json
import math

import pytest
import torch

from benchmarks.core.config import RunConfig
from benchmarks.engine.resolve import resolve_config
from benchmarks.core.errors import CritBenchError, DivergedError
from benchmarks.methods.loss_methods import LossMethod
from benchmarks.core.storage import save_record
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import load_dataset
import benchmarks.engine.device as device_module
from benchmarks.engine.device import resolve_device
from benchmarks.engine.trainer import EarlyStopping, Trainer
from tests.conftest import TINY


def tiny(method="bce", **overrides):
    return resolve_config(RunConfig(dataset="synthetic2d", method=method, **{**TINY, **overrides}))


def test_early_stopping_is_nan_safe():
    stopper = EarlyStopping(patience=2)
    assert stopper.update(0.6) and not stopper.update(math.nan) and not stopper.update(0.6)
    assert stopper.best == 0.6 and stopper.stale == 2
    never = EarlyStopping(patience=0)
    for _ in range(50):
        never.update(math.nan)
    assert not never.should_stop and never.best == -math.inf


def test_early_stopping_follows_the_alm_paper_rule():
    """alm-dnn utils/train_test_CIFAR.py, after each epoch:
        if epoch - epoch_last_auc_max > patience_early_stopping:
    with `patience_early_stopping` 30 (main.py default) a run whose best epoch is 0 trains epochs
    0..31 and stops after the 31st stale epoch, not the 30th."""
    stopper = EarlyStopping(patience=30)
    stopper.update(0.9)
    for _ in range(30):
        stopper.update(0.5)
    assert not stopper.should_stop, "30 stale epochs: epoch - best = 30, not > 30"
    stopper.update(0.5)
    assert stopper.should_stop


def test_snapshot_is_a_copy_not_an_alias():
    config = tiny()
    trainer = Trainer(config, load_dataset(config), resolve_device(config.device), progress=False)
    snapshot = trainer.snapshot(0, "train")
    before = {k: v.clone() for k, v in snapshot["model"].items()}
    trainer.train_epoch()
    assert all(torch.equal(before[k], snapshot["model"][k]) for k in before)
    assert not all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())


def test_test_split_is_scored_once_after_training_with_the_best_checkpoint(monkeypatch):
    calls = []
    original = Trainer.score

    def spy(self, split, **options):
        calls.append(split)
        return original(self, split, **options)

    monkeypatch.setattr(Trainer, "score", spy)
    config = tiny(epochs=4)
    trainer = Trainer(config, load_dataset(config), resolve_device(config.device), progress=False)
    result = trainer.fit()
    assert calls.count("test") == 1 and calls[-1] == "test"
    best = max(result["history"], key=lambda h: h["val_auc"])
    assert result["best_epoch"] == best["epoch"]
    assert result["val"]["auc"] == pytest.approx(best["val_auc"]), "restored weights are the best epoch's"


def test_patience_stops_training():
    record = run_benchmark(tiny(epochs=30, patience=1, params={"lr": 1e-9}), progress=False)
    assert record["stopped_early"] and len(record["history"]) < 30


def test_same_seed_same_result_on_cpu():
    a = run_benchmark(tiny(method="alm"), progress=False)
    b = run_benchmark(tiny(method="alm"), progress=False)
    c = run_benchmark(tiny(method="alm", seed=1), progress=False)
    assert a["test_scores"] == b["test_scores"] and a["run_id"] == b["run_id"]
    assert a["test_scores"] != c["test_scores"] and a["run_id"] != c["run_id"]


def test_non_finite_loss_raises_diverged(monkeypatch):
    monkeypatch.setattr(LossMethod, "loss", lambda self, logits, y, index: logits.sum() * math.nan)
    config = tiny()
    with pytest.raises(DivergedError, match="epoch 1"):
        Trainer(config, load_dataset(config), resolve_device(config.device), progress=False).fit()


def test_a_diverged_runs_failure_record_keeps_the_epochs_before_it(monkeypatch):
    """The figures that show how a run diverged (its losses, ALM's term-to-loss ratio) are in its
    failure record, not only in a checkpoint left behind."""
    config = tiny(epochs=4, patience=0)
    steps_per_epoch = -(-len(load_dataset(config).train.y) // config.batch_size)
    steps = []
    original = LossMethod.loss

    def nan_from_epoch_3(self, logits, y, index):
        steps.append(1)
        loss = original(self, logits, y, index)
        return loss * math.nan if len(steps) > 2 * steps_per_epoch else loss

    monkeypatch.setattr(LossMethod, "loss", nan_from_epoch_3)
    record = run_benchmark(config, progress=False)
    assert record["status"] == "failed" and record["failure"] == "diverged" and "in epoch 3" in record["reason"]
    assert [entry["epoch"] for entry in record["history"]] == [1, 2]
    assert all(math.isfinite(entry["train_loss"]) for entry in record["history"])
    json.dumps(record, allow_nan=False)


def test_record_is_complete_strict_json(tmp_path):
    record = run_benchmark(tiny(method="aucm"), progress=False)
    path = save_record(record, tmp_path)
    loaded = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    for key in ("config", "dataset", "env", "history", "best_epoch", "val", "test", "test_scores", "seconds"):
        assert key in loaded
    assert loaded["config"]["params"]["margin"] == 1.0 and loaded["config"]["batch_size"] == 128
    assert set(loaded["test"]["tpr_at_fpr"]) == {"0.01", "0.05", "0.1"}
    assert set(loaded["test"]["fpr_at_tpr"]) == {"0.9", "0.95", "0.98"}
    assert {"auc", "spauc_0.1", "acc"} <= set(loaded["test"])
    assert {"python", "torch", "libauc", "monai", "medmnist", "device_name", "git_revision", "cpu", "started_at"} <= set(loaded["env"])
    assert loaded["finished_at"] >= loaded["env"]["started_at"] and loaded["env"]["cpu"]
    assert loaded["env"]["precision"] in ("fp32", "bf16-autocast")
    assert set(loaded["history"][0]) == {"epoch", "stage", "train_loss", "val_auc", "lr", "seconds",
                                         "imratio", "regularizer_reset"}
    assert loaded["best_stage"] == "train" and loaded["resumed_from_epoch"] is None
    assert loaded["dataset"]["tensor_md5"] and loaded["dataset"]["critical_class"] == "blob"
    assert path.name == f"{loaded['run_id']}.json" and not list(tmp_path.glob("*.tmp"))


def test_cuda_request_without_cuda_is_a_user_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(CritBenchError, match="CUDA is not available"):
        run_benchmark(tiny(device="cuda"), progress=False)


def test_training_batches_are_augmented_in_fp32_outside_autocast(monkeypatch):
    """bf16 autocast covers the network only: the augmentation (a rotation's sampling grid) runs
    in fp32, whatever precision trains the network. Forced bf16, as on a CPU with native bf16."""
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: True)
    monkeypatch.setattr(device_module, "CPU_BF16_MIN_CHANNELS", 1)
    seen = []
    batch = Trainer.batch

    def watched(self, x, train=False):
        if train:
            seen.append(torch.is_autocast_enabled("cpu"))
        return batch(self, x, train=train)

    monkeypatch.setattr(Trainer, "batch", watched)
    config = resolve_config(RunConfig(dataset="synthetic2d", method="bce", augment="flip+rotate",
                                      **{**TINY, "size": 28, "epochs": 1}))
    assert config.precision == "bf16-autocast"
    run_benchmark(config, progress=False)
    assert seen and not any(seen)


def test_the_epochs_train_loss_is_the_mean_over_the_samples_trained_on(monkeypatch):
    """A one-sample tail batch is skipped (BatchNorm): it must not count in the mean either."""
    config = tiny(epochs=1, batch_size=16, params={"n_train": 65})
    trainer = Trainer(config, load_dataset(config), resolve_device(config.device), progress=False)
    assert len(trainer.data["train"].y) % 16 == 1
    monkeypatch.setattr(Trainer, "train_step", lambda self, index: torch.tensor(1.0))
    assert trainer.train_epoch() == pytest.approx(1.0)
