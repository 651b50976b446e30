"""What a base loss declares at registration (its head, whether its logit is a probability's, its
hooks) reaches the methods and the record; one check says whether a base loss exists; a method's
limits (`Method.skip`) reach the resolver; adding a base loss is one decorated class."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.registry import Registry
from benchmarks.engine.resolve import resolve_config
from benchmarks.methods import TrainContext, create_method, get_method, losses, resolve_params
from benchmarks.methods.losses import BaseLoss, ClassCounts, create_loss, get_loss, list_losses, register_loss
from benchmarks.run import main

TINY = ["--dataset", "synthetic2d", "--epochs", "1", "--width", "0.125", "--size", "8", "--device", "cpu", "--quiet"]
CTX = TrainContext(dims=2, epochs=2, device=torch.device("cpu"), n_train=100, train_positive_rate=0.1, batch_size=8)


def test_ldam_declares_its_head_its_score_and_its_epoch_hook():
    ldam = create_loss("ldam", ClassCounts(n_pos=16, n_neg=81), drw=True, drw_start=0.5)
    cosines = torch.tensor([[0.1, 0.7], [0.4, -0.2]])
    assert get_loss("ldam").head == "cosine_pair" and not get_loss("ldam").probability
    assert torch.equal(ldam.score(cosines), cosines[:, 1])
    ldam.set_epoch(5, 10)
    assert ldam.reweighting
    assert get_method("ldam").model_options(resolve_params("ldam", {}))["head"] == "cosine_pair"


def test_a_loss_without_hooks_scores_its_logit_and_ignores_the_epoch():
    loss, logits, y = create_loss("s_fl"), torch.tensor([0.3, -1.2]), torch.tensor([1.0, 0.0])
    before = float(loss(logits, y))
    loss.set_epoch(3, 10)
    assert loss.score(logits) is logits and float(loss(logits, y)) == before
    assert get_loss("s_fl").head is None
    assert get_method("s_fl").model_options(resolve_params("s_fl", {}))["head"] == "linear"


@pytest.mark.parametrize("base, probability", [("bce", True), ("focal", True), ("s_lm", False), ("mbauc", False)])
def test_the_declared_probability_says_whether_the_logit_is_a_log_odds(base, probability):
    method = create_method(f"alm+{base}", torch.nn.Linear(1, 1), resolve_params(f"alm+{base}", {}), CTX)
    assert method.score_is_probability_logit is probability


def test_an_unknown_base_loss_is_refused_alike_wherever_it_is_named():
    for ask in (lambda: get_method("alm+nope"), lambda: resolve_params("alm", {"base": "nope"}),
                lambda: resolve_params("alm", {"base": "nope", "preset": "c10_1to100"}), lambda: create_loss("nope")):
        with pytest.raises(CritBenchError, match=r"unknown base loss 'nope'.*; valid: a_fl, a_lm, bce"):
            ask()
    with pytest.raises(CritBenchError, match="unknown base loss 'nope' in alm\\+nope; valid:"):
        get_method("alm+nope")


def test_a_method_refuses_what_it_cannot_run_through_the_resolver(monkeypatch):
    assert get_method("bce").skip(RunConfig(dataset="synthetic2d", method="bce", compile=True)) is None
    reason = get_method("autobalance").skip(RunConfig(dataset="synthetic2d", method="autobalance", compile=True))
    assert reason.startswith("--method autobalance differentiates its loss twice") and reason.endswith("drop --compile")
    monkeypatch.setattr(get_method("bce"), "skip", classmethod(lambda cls, config: f"{cls.name} cannot run seed {config.seed}"))
    with pytest.raises(CritBenchError, match="^bce cannot run seed 3$"):
        resolve_config(RunConfig(dataset="synthetic2d", method="bce", seed=3))


def test_a_base_loss_added_by_one_decorated_class_trains_under_alm(tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as patch:
        registry = Registry("base loss")  # a copy of the registry, so the throw-away loss leaves no trace
        for name in list_losses():
            registry.register(name)(get_loss(name))
        patch.setattr(losses, "LOSSES", registry)

        @register_loss("scaled_bce", probability=True)
        class ScaledBCE(BaseLoss):
            """binary cross-entropy times a factor (a throw-away test loss)

            Args:
                counts: the training set's class sizes (unused).
                factor: the loss' multiple, > 0.
            """

            def __init__(self, counts: ClassCounts, factor: float = 1.0):
                self.factor = factor

            def __call__(self, x, y):
                return self.factor * F.binary_cross_entropy_with_logits(x, y)

        assert main(TINY + ["--method", "alm+scaled_bce", "--param", "factor=0.5", "--out", str(tmp_path)]) == 0
        record = json.loads(Path(capsys.readouterr().out.strip().splitlines()[-1]).read_text())
        assert record["status"] == "complete" and record["config"]["method"] == "alm+scaled_bce"
        assert record["config"]["params"]["base"] == "scaled_bce" and record["config"]["params"]["factor"] == 0.5
        assert record["calibration"] is not None  # declared a probability: its calibration is reported
        assert len(record["history"]) == 1 and record["history"][0]["mu"] == 1e-4  # trained one epoch under ALM
    assert "scaled_bce" not in list_losses()
    with pytest.raises(CritBenchError, match="unknown base loss 'scaled_bce' in alm\\+scaled_bce"):
        get_method("alm+scaled_bce")
