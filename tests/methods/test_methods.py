"""The three core methods against hand-computed values and plain-loop references."""
import math
import re

import pytest
import torch
from libauc.losses import AUCMLoss

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError, DivergedError
from benchmarks.engine.resolve import load_dataset, resolve_config
from benchmarks.engine.trainer import Trainer
from benchmarks.methods import TrainContext, create_method, resolve_params
from benchmarks.methods.alm import alm_penalty, ranking_violations
from benchmarks.methods.sampling import epoch_order
from models3d import create_model
from tests.conftest import TINY


def context(epochs=8, n_train=10, rate=0.25, batch_size=4):
    return TrainContext(dims=2, epochs=epochs, device=torch.device("cpu"), n_train=n_train,
                        train_positive_rate=rate, batch_size=batch_size)


def tiny_model():
    return create_model(2, 1, width=0.125)


def test_alm_penalty_hand_computed():
    # Positives 0 (logit 0.1) and 2 (-0.5); negatives 1 (0.0) and 3 (0.3); delta 0.25.
    # q_0 = (0.25 - 0.1) + (0.25 + 0.2) = 0.6 ; q_2 = (0.25 + 0.5) + (0.25 + 0.8) = 1.8
    logits = torch.tensor([0.1, 0.0, -0.5, 0.3])
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    q = ranking_violations(logits, y, 0.25)
    assert q.tolist() == pytest.approx([0.6, 0.0, 1.8, 0.0])
    lam = torch.tensor([0.5, 0.0, 2.0, 0.0])
    # (0.5*0.6 + 0.05*0.36 + 2*1.8 + 0.05*3.24) / (2 * 2) = 4.08 / 4
    assert alm_penalty(q, lam, 0.1, y).item() == pytest.approx(1.02)


def test_alm_matches_a_plain_loop_reference():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(40, generator=gen)
    y = (torch.rand(40, generator=gen) < 0.3).float()
    lam = torch.rand(40, generator=gen) * y
    delta, mu = 0.5, 0.3
    positives = [i for i in range(40) if y[i] == 1]
    negatives = [j for j in range(40) if y[j] == 0]
    reference = 0.0
    for i in positives:
        q = sum(max(0.0, delta - (logits[i].item() - logits[j].item())) for j in negatives)
        reference += lam[i].item() * q + mu / 2 * q * q
    reference /= len(positives) * len(negatives)
    q = ranking_violations(logits, y, delta)
    assert alm_penalty(q, lam, mu, y).item() == pytest.approx(reference, rel=1e-5)


def test_alm_penalty_vanishes_without_both_classes():
    logits = torch.tensor([0.3, -0.2])
    for y in (torch.ones(2), torch.zeros(2)):
        q = ranking_violations(logits, y, 0.25)
        assert alm_penalty(q, torch.ones(2), 1.0, y).item() == 0.0


def test_alm_multipliers_update_after_step_and_belong_to_the_checkpoint():
    method = create_method("alm", tiny_model(), {"mu0": 0.5}, context(n_train=6))
    logits = torch.tensor([0.1, 0.0, -0.5, 0.3])
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    index = torch.tensor([4, 1, 0, 5])  # positions in the training set
    method.loss(logits, y, index)
    method.after_step()
    assert method.multipliers.tolist() == pytest.approx([0.5 * 1.8, 0, 0, 0, 0.5 * 0.6, 0])
    saved = method.state_dict()
    method.after_step()
    assert saved["multipliers"].tolist() == pytest.approx([0.9, 0, 0, 0, 0.3, 0]), "a copy, not an alias"


def mu_per_epoch(aucs, mu0=1e-4):
    """mu each epoch trains with, the schedule stepped with val AUC `aucs`."""
    method = create_method("alm", tiny_model(), {"mu0": mu0}, context(epochs=len(aucs)))
    mus = []
    for epoch, auc in enumerate(aucs):
        mus.append(method.state_summary()["mu"])
        method.end_epoch(epoch, auc)
    return mus, method


def test_alm_mu_schedule_follows_the_reference():
    """alm-dnn utils/train_test_CIFAR.py, after each epoch:
        if stop_update_mu == 0 and (epoch > introd_ALM_from) and (use_ALM == 1):
            if epoch == introd_ALM_from + 1:
                previous_auc = val_roc_auc
            else: ... mu = mu * rho ...
                        if epoch > introd_ALM_from + 2 ...:
                            if val_roc_auc < previous_auc - 0.05: ... else: mu = mu_old
    so epochs 1-3 (1-based) train with mu0 and epoch 4 with rho mu0, whatever the AUC did."""
    mus, _ = mu_per_epoch([0.70, 0.72, 0.74, 0.76, 0.70, 0.69, 0.60, math.nan, 0.5])
    # e=2: x2 unconditionally; e=3: no drop; e=4 (0.76 -> 0.70) x2; e=5 no; e=6 (0.69 -> 0.60) x2;
    # e=7 nan is no drop.
    assert mus == pytest.approx([1e-4, 1e-4, 1e-4, 2e-4, 2e-4, 4e-4, 4e-4, 8e-4, 8e-4])


def test_alm_mu_freezes_at_the_cap_and_at_perfect_val_auc():
    """alm-dnn: `if val_roc_auc == 1.0 and cap_mu == 1: stop_update_mu = 1` and
    `if mu > mu_limit: mu = mu_limit; stop_update_mu = 1` (mu_limit: mu0 rho^5 below 1e-3, else rho^3)."""
    falling = [0.9, 0.9] + [0.9 - 0.1 * k for k in range(1, 9)]
    mus, method = mu_per_epoch(falling, mu0=1e-2)
    assert mus[-1] == pytest.approx(8e-2) and method.state_summary()["mu_frozen"]
    mus, method = mu_per_epoch([0.9, 0.9, 1.0, 0.5, 0.3])
    assert mus == pytest.approx([1e-4] * 5) and method.state_summary()["mu_frozen"]


def test_alm_state_summary_reports_the_multipliers_and_whether_the_constraint_acts():
    """Hand-computed at delta 0.25: q = (0.15 + 0.45, 0.75 + 1.05) = (0.6, 1.8) for the two positives,
    all 4 pairs inside the margin, penalty (0 + mu/2 sum q^2) / 4 = 0.225 against the mean BCE."""
    method = create_method("alm", tiny_model(), {"mu0": 0.5}, context(n_train=8, rate=0.25))
    logits, y = torch.tensor([0.1, 0.0, -0.5, 0.3]), torch.tensor([1.0, 0.0, 1.0, 0.0])
    method.loss(logits, y, torch.tensor([4, 1, 0, 5]))
    method.after_step()
    bce = sum(math.log1p(math.exp(-z if t else z)) for z, t in zip(logits.tolist(), y.tolist())) / 4
    summary = method.state_summary()
    assert summary == {"mu": 0.5, "mu_frozen": False, "multiplier_mean": pytest.approx((0.9 + 0.3) / 2),
                       "multiplier_max": pytest.approx(0.9), "violation_mean": pytest.approx(1.2),
                       "violated_pair_share": 1.0, "term_to_loss": pytest.approx(0.225 / bce)}
    method.end_epoch(0, 0.5)  # a new epoch starts counting afresh
    assert method.activity() == {"violation_mean": 0.0, "violated_pair_share": 0.0, "term_to_loss": 0.0}


def test_aucm_loss_hand_computed_with_the_batch_prior():
    method = create_method("aucm", tiny_model(), {"sampling_rate": "0.3"}, context(rate=0.1, batch_size=4))
    method.sampling("none")  # DualSampler batches of int(0.3 * 4) = 1 positive in 4
    with torch.no_grad():
        method.aucm.a.fill_(0.2), method.aucm.b.fill_(0.1), method.aucm.alpha.fill_(0.5)
    scores = torch.tensor([0.9, 0.2, 0.6, 0.3])
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    # p = 0.25 (the DualSampler batches' rate, not the training set's 0.1), m = 1:
    # (1-p) mean((s-a)^2 [y=1]) = 0.75 * (0.49 + 0.16) / 4 = 0.121875
    # p mean((s-b)^2 [y=0])     = 0.25 * (0.01 + 0.04) / 4 = 0.003125
    # 2 alpha (p(1-p) m + mean(p s [y=0] - (1-p) s [y=1])) = 1.0 * (0.1875 + (0.125 - 1.125) / 4) = -0.0625
    # - p(1-p) alpha^2 = -0.046875
    loss = method.loss(torch.logit(scores), y, torch.arange(4))
    assert loss.shape == () and loss.item() == pytest.approx(0.015625, abs=1e-6)


def test_aucm_prior_is_the_positive_rate_of_its_dual_sampler_batches():
    """LibAUC libauc/losses/auc.py, AUCMLoss.forward: `if auto or self.p == None: self.p =
    pos_mask.sum()/y_true.shape[0]` -- p is the rate of the batch the loss sees. On a DualSampler
    batch (sampling_rate 0.2) the loss equals LibAUC's own with that batch prior, and the summed
    gradients over positives and over negatives balance (within 2x); with the training set's rate
    (5%) as p they differ about 5x."""
    method = create_method("aucm", tiny_model(), {}, context(n_train=200, rate=0.05, batch_size=20))
    y = torch.tensor([1.0] * 10 + [0.0] * 190)
    batch = epoch_order(method.sampling("none"), y, 20, torch.Generator().manual_seed(0))[:20]
    logits = torch.zeros(20, requires_grad=True)
    loss = method.loss(logits, y[batch], batch)
    oracle = AUCMLoss(margin=1.0)(torch.sigmoid(logits.detach()), y[batch]).reshape(())
    assert float(loss) == pytest.approx(float(oracle)) and method.state_summary()["imratio"] == 0.2
    with torch.no_grad():
        method.aucm.a.fill_(0.1), method.aucm.b.fill_(0.1), method.aucm.alpha.fill_(0.0)
    method.loss(logits, y[batch], batch).backward()
    positive = y[batch] == 1
    ratio = float(logits.grad[positive].abs().sum() / logits.grad[~positive].abs().sum())
    assert 0.5 <= ratio <= 2


def test_aucm_pesg_decays_at_half_and_three_quarters():
    method = create_method("aucm", tiny_model(), {}, context(epochs=8))
    lrs = []
    for epoch in range(8):
        lrs.append(method.lr())
        method.end_epoch(epoch, 0.5)
    assert lrs == pytest.approx([0.1] * 4 + [0.01] * 2 + [0.001] * 2)


def test_bce_recipe_schedule():
    method = create_method("bce", tiny_model(), {}, context(epochs=4))
    assert isinstance(method.optimizer, torch.optim.Adam)
    lrs = []
    for epoch in range(4):
        lrs.append(method.lr())
        method.end_epoch(epoch, 0.5)
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-4, 1e-5])


def test_params_are_typed_validated_and_complete():
    params = resolve_params("alm", {"delta": "0.5", "lr": 0.01})
    assert params["delta"] == 0.5 and params["lr"] == 0.01 and params["mu0"] == 1e-4
    with pytest.raises(CritBenchError, match="unknown parameter 'dleta'.*valid:.*delta"):
        resolve_params("alm", {"dleta": "1"})
    with pytest.raises(CritBenchError, match="not a valid float"):
        resolve_params("alm", {"delta": "big"})
    with pytest.raises(CritBenchError, match="lr must be positive"):
        resolve_params("bce", {"lr": "-1"})
    with pytest.raises(CritBenchError, match="unknown method 'sgd'; valid: .*alm.*aucm.*bce"):
        resolve_params("sgd", {})


def test_alm_over_ldam_constrains_the_unscaled_class_1_cosine():
    """alm-dnn utils/train_test_CIFAR.py, before `ALM_terms(...)`:
        if training_type == "LDAM":
            buffer_batch_pos = buffer_batch_pos[:, :, 1]
    -- the constraint reads class 1's unscaled cosine of NormedLinear, not s (cos_1 - cos_0)."""
    model = create_model(2, 1, width=0.125, head="cosine_pair")
    method = create_method("alm+ldam", model, {"mu0": 0.5, "delta": 0.25}, context(n_train=6))
    cosines = torch.tensor([[0.1, 0.5], [0.2, 0.3], [0.0, 0.2], [0.4, 0.6]])  # (cos_0, cos_1)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    # cos_1: positives 0.5, 0.2; negatives 0.3, 0.6.
    # q = (0.25 - 0.2) + (0.25 + 0.1) = 0.4 and (0.25 + 0.1) + (0.25 + 0.4) = 1.0
    method.loss(cosines, y, torch.tensor([4, 1, 0, 5]))
    method.after_step()
    assert method.multipliers.tolist() == pytest.approx([0.5 * 1.0, 0, 0, 0, 0.5 * 0.4, 0])


@pytest.mark.parametrize("method, advice", [("bce", "; try a lower --lr"),
                                            ("alm", "try a smaller --param mu0 (this run: 0.01;")])
def test_a_diverged_run_says_what_to_try(method, advice, monkeypatch):
    """A NaN training loss ends the run with the method's advice: ALM's penalty, not the step size, is
    what diverged at mu0 = 1e-2 on CIFAR-10 1:100 (results/alm_dose)."""
    config = resolve_config(RunConfig(dataset="synthetic2d", method=method, params={"mu0": 1e-2} if method == "alm" else {},
                                      **TINY))
    trainer = Trainer(config, load_dataset(config), torch.device("cpu"), progress=False)
    monkeypatch.setattr(trainer, "train_epoch", lambda: math.nan)
    with pytest.raises(DivergedError, match=re.escape("training loss became nan in epoch 1") + ".*" + re.escape(advice)):
        trainer.fit()
