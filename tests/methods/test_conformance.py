"""Every method and preset against its reference: losses and gradients on fixed inputs, optimizers
and schedules, each compared with a transcription of the reference code (alm-dnn, MedMNIST v2) or
with LibAUC itself.

alm-dnn's losses add 1e-4 inside each log (`torch.log(torch.sigmoid(x) + 1e-4)`); CritBench uses the
exact log-sigmoid, so the transcriptions below take `EPS = 0` and are otherwise literal.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from libauc.losses import AUCMLoss
from libauc.optimizers import PESG

from benchmarks.methods import TrainContext, create_method, get_method, resolve_params
from benchmarks.methods.presets import ALM_CONFIGS, ALM_SETTINGS, AUCM_PRESETS
from models3d import create_model

CPU = torch.device("cpu")
EPS = 0.0  # alm-dnn: + 1e-4 inside every log
N_NEG, RATIO = 2000, 100  # training set at alm-dnn's `ratio_pos_train` 1:100
N_POS = N_NEG // RATIO
Y = torch.tensor([1.0, 0, 0, 1, 0, 0, 1, 0])
LOGITS = torch.tensor([0.7, -0.4, 0.9, -0.2, 0.1, -1.3, 0.4, 0.5])
COSINES = torch.stack([-LOGITS / 3, LOGITS / 2], 1)  # LDAM's head outputs (cos_0, cos_1)
MULTIPLIERS = torch.tensor([0.3, 0, 0, 1.2, 0, 0, 0.05, 0])
SETTINGS = ("",) + ALM_SETTINGS  # "" = CritBench's defaults


def context(epochs: int = 100, batch_size: int = 8, n_train: int = N_NEG + N_POS, rate: float = N_POS / (N_NEG + N_POS)):
    return TrainContext(dims=2, epochs=epochs, device=CPU, n_train=n_train, train_positive_rate=rate,
                        batch_size=batch_size)


def build(name: str, values: dict, ctx: TrainContext | None = None):
    params = resolve_params(name, values)
    model = create_model(2, 1, width=0.125, **get_method(name).model_options(params))
    return create_method(name, model, params, ctx or context()), params


# --- alm-dnn (utils/custom_losses.py) -------------------------------------------------------------

def reference_base_loss(base: str, x: torch.Tensor, t: torch.Tensor, params: dict) -> torch.Tensor:
    """alm-dnn's `select_objective_function(...)` losses, transcribed (LDAM takes the two cosines)."""
    s = torch.sigmoid(x) if base != "ldam" else None
    pos, neg = t == 1, t == 0
    per_sample = torch.zeros_like(t)
    if base == "bce":
        return torch.nn.BCEWithLogitsLoss()(x, t)
    if base == "s_fl":  # SymBCEFocalLoss
        g = params["gamma"]
        per_sample[pos] = -torch.pow(1 - s[pos], g) * torch.log(s[pos] + EPS)
        per_sample[neg] = -torch.pow(s[neg], g) * torch.log(1 - s[neg] + EPS)
    elif base == "a_fl":  # AsymBCEFocalLoss
        per_sample[pos] = -torch.log(s[pos] + EPS)
        per_sample[neg] = -torch.pow(s[neg], params["gamma"]) * torch.log(1 - s[neg] + EPS)
    elif base == "s_lm":  # SymBCELargeMargin
        m = params["margin"]
        per_sample[pos] = -torch.log(torch.sigmoid(x[pos] - m) + EPS)
        per_sample[neg] = -torch.log(1 - torch.sigmoid(x[neg] + m) + EPS)
    elif base == "a_lm":  # AsymBCELargeMargin
        per_sample[pos] = -torch.log(torch.sigmoid(x[pos] - params["margin"]) + EPS)
        per_sample[neg] = -torch.log(1 - s[neg] + EPS)
    elif base == "wbce":  # WeightedBCE(c * ratio_pos_train)
        weight = torch.where(pos, params["c"] * RATIO, 1.0)
        return torch.mean(weight * F.binary_cross_entropy_with_logits(x, t, reduction="none"))
    elif base == "cb_bce":  # ClassBalancedBCE(beta, n_0 = num_maj, n_1 = int(num_maj / ratio_pos_train))
        beta = params["beta"]
        weight = torch.where(pos, (1 - beta) / (1 - beta ** N_POS), (1 - beta) / (1 - beta ** N_NEG))
        if params["normalize"]:  # Cui et al.'s code: `weights = weights / np.sum(weights) * no_of_classes`
            weight = weight / ((1 - beta) / (1 - beta ** N_POS) + (1 - beta) / (1 - beta ** N_NEG)) * 2
        return torch.mean(weight * F.binary_cross_entropy_with_logits(x, t, reduction="none"))
    elif base == "ldam":  # LDAMLoss(cls_num_list, max_m=0.5, s=30)
        m_list = 1.0 / np.sqrt(np.sqrt(np.array([N_NEG, N_POS], dtype=np.float64)))
        m_list = torch.tensor(m_list * (params["max_margin"] / np.max(m_list)), dtype=torch.float32)
        index = F.one_hot(t.long(), 2).bool()
        output = torch.where(index, x - m_list[t.long()].view(-1, 1), x)
        return F.cross_entropy(params["scale"] * output, t.long())
    return torch.mean(per_sample)


def reference_alm_terms(score: torch.Tensor, t: torch.Tensor, lambdas: torch.Tensor, delta: float, mu: float):
    """alm-dnn `ALM_terms` (p2_norm 1): the summed per-positive terms and the updated lambdas."""
    buffer_batch_pos, buffer_batch_neg = score[t == 1], score[t == 0]
    positions = (t == 1).nonzero().flatten()
    total, lambdas = torch.zeros(()), lambdas.clone()
    for pos_sample, index in zip(buffer_batch_pos, positions):
        q_pos = torch.zeros(())
        for neg_sample in buffer_batch_neg:
            q_pos = q_pos + torch.relu(-(pos_sample - neg_sample) + delta)
        lam = float(lambdas[index])
        total = total + (mu / 2 * torch.pow(q_pos, 2) + lam * q_pos) / (len(buffer_batch_pos) * len(buffer_batch_neg))
        lambdas[index] += mu * q_pos.detach()
    return total, lambdas


def loss_and_gradient(loss_fn, outputs: torch.Tensor):
    outputs = outputs.clone().requires_grad_(True)
    loss = loss_fn(outputs)
    (grad,) = torch.autograd.grad(loss, outputs)
    return float(loss.detach()), grad


@pytest.mark.parametrize("alm", [False, True], ids=["plain", "alm"])
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("base", list(ALM_CONFIGS))
def test_base_and_alm_loss_and_gradient_match_alm_dnn(base, setting, alm):
    """alm-dnn utils/train_test_CIFAR.py: `loss = loss_function(train_out, target.float())`, then
    `ALM_terms(...)`: `loss = (mu / 2 * torch.pow(q_pos, 2 * p2_norm) + lambdas[int(single_lambda_index)]
    * q_pos) / (len(buffer_batch_pos) * len(buffer_batch_neg))`, `lambdas[...] += mu * q_pos`, on
    `buffer_batch_pos[:, :, 1]` for LDAM. Every base, every preset (and the defaults), with and without
    ALM: same loss, same gradient w.r.t. the model outputs, same multipliers after the step."""
    name = f"alm+{base}" if alm else base
    method, params = build(name, {"preset": setting} if setting else {})
    outputs = COSINES if base == "ldam" else LOGITS
    score = outputs[:, 1] if base == "ldam" else outputs
    index = torch.arange(8)
    if alm:
        method.multipliers[index] = MULTIPLIERS

    def reference(out):
        loss = reference_base_loss(base, out, Y, params)
        if alm:
            loss = loss + reference_alm_terms(out[:, 1] if base == "ldam" else out, Y, MULTIPLIERS,
                                              params["delta"], params["mu0"])[0]
        return loss

    ours = loss_and_gradient(lambda out: method.loss(out, Y, index), outputs)
    expected = loss_and_gradient(reference, outputs)
    assert ours[0] == pytest.approx(expected[0], rel=1e-5, abs=1e-7)
    assert torch.allclose(ours[1], expected[1], rtol=1e-4, atol=1e-7)
    if alm:
        method.after_step()
        lambdas = reference_alm_terms(score, Y, MULTIPLIERS, params["delta"], params["mu0"])[1]
        assert torch.allclose(method.multipliers[index], lambdas, rtol=1e-5, atol=1e-9)


def reference_mu(mu: float, rho: float, mu_limit: float, aucs: list[float]) -> list[float]:
    """mu per epoch: alm-dnn train_test_CIFAR.py's update after each epoch, transcribed
    (`introd_ALM_from = 0`, `cap_mu = 1`, `continue_train = 0`)."""
    introd_ALM_from, stop_update_mu, trajectory = 0, 0, []
    for epoch, val_roc_auc in enumerate(aucs):
        trajectory.append(mu)
        if stop_update_mu == 0 and epoch > introd_ALM_from:
            if epoch == introd_ALM_from + 1:
                previous_auc = val_roc_auc
            elif val_roc_auc == 1.0:
                stop_update_mu = 1
            else:
                mu_old = mu
                mu = mu * rho
                if mu > mu_limit:
                    mu, stop_update_mu = mu_limit, 1
                else:
                    if epoch > introd_ALM_from + 2 and not val_roc_auc < previous_auc - 0.05:
                        mu = mu_old
                    previous_auc = val_roc_auc
    return trajectory


AUCS = [0.6, 0.62, 0.7, 0.6, 0.61, 0.5, 0.52, 0.4, 0.3, 0.2, 0.1, 0.05] + [0.05] * 88


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("base", list(ALM_CONFIGS))
def test_alm_optimizer_lr_and_mu_schedules_match_alm_dnn(base, setting):
    """alm-dnn train_test_CIFAR.py: `optimizer = optim.SGD(net.parameters(), lr=lr, weight_decay=2e-4,
    momentum=0.9)`; `lr_decrease` 0: `ReduceLROnPlateau(optimizer, mode="max", factor=0.1,
    patience=1000)`; main.py: `if args["mu"] < 1e-3: args["mu_limit"] = args["mu"] * args["rho"] ** 5
    else: ... ** 3`. Over 100 epochs the lr and mu of every preset follow the reference's."""
    method, params = build(f"alm+{base}", {"preset": setting} if setting else {})
    lrs, mus = [], []
    for epoch, auc in enumerate(AUCS):
        lrs.append(method.lr())
        mus.append(method.mu)
        method.end_epoch(epoch, auc)
    mu0, rho = params["mu0"], params["rho"]
    assert mus == pytest.approx(reference_mu(mu0, rho, mu0 * rho ** (5 if mu0 < 1e-3 else 3), AUCS))
    if not setting:
        return
    oracle = torch.optim.SGD(method.model.parameters(), lr=params["lr"], weight_decay=2e-4, momentum=0.9)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(oracle, mode="max", factor=0.1, patience=1000)
    expected = []
    for auc in AUCS:
        expected.append(oracle.param_groups[0]["lr"])
        plateau.step(auc)
    assert lrs == pytest.approx(expected) and isinstance(method.optimizer, torch.optim.SGD)
    assert scalar_settings(method.optimizer) == scalar_settings(oracle)


def test_bce_loss_gradient_and_schedule_match_medmnist_v2():
    """MedMNIST/experiments MedMNIST2D/train_and_eval_pytorch.py: `criterion = nn.BCEWithLogitsLoss()`
    (binary-class via 2 logits; on one logit the same objective), `lr = 0.001`, `gamma=0.1`,
    `milestones = [0.5 * num_epochs, 0.75 * num_epochs]`, `optimizer = torch.optim.Adam(model.parameters(),
    lr=lr)`, `scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=gamma)`."""
    method, _ = build("bce", {})
    ours = loss_and_gradient(lambda out: method.loss(out, Y, None), LOGITS)
    expected = loss_and_gradient(lambda out: torch.nn.BCEWithLogitsLoss()(out, Y), LOGITS)
    assert ours[0] == pytest.approx(expected[0]) and torch.allclose(ours[1], expected[1])
    oracle = torch.optim.Adam(method.model.parameters(), lr=0.001)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(oracle, milestones=[0.5 * 100, 0.75 * 100], gamma=0.1)
    lrs, expected_lrs = [], []
    for epoch in range(100):
        lrs.append(method.lr())
        expected_lrs.append(oracle.param_groups[0]["lr"])
        method.end_epoch(epoch, 0.5)
        oracle.step()
        scheduler.step()
    assert lrs == pytest.approx(expected_lrs)
    assert scalar_settings(method.optimizer) == scalar_settings(oracle)


# --- LibAUC ---------------------------------------------------------------------------------------

def scalar_settings(optimizer) -> dict:
    """An optimizer's hyperparameters (its first parameter group without tensors, lists, kernel
    choices and the scheduler's bookkeeping)."""
    return {k: v for k, v in optimizer.param_groups[0].items()
            if k not in ("fused", "foreach", "initial_lr") and isinstance(v, (bool, int, float, str, tuple, type(None)))}


@pytest.mark.parametrize("sampling_rate, sampler, prior", [(0.2, "none", 1 / 8), (0.0, "none", N_POS / (N_NEG + N_POS)),
                                                           (0.0, "oversample", 0.5)],
                         ids=["dual", "natural", "oversample"])
def test_aucm_loss_and_gradient_match_libauc(sampling_rate, sampler, prior):
    """LibAUC libauc/losses/auc.py, AUCMLoss.forward: `if auto or self.p == None: self.p =
    pos_mask.sum()/y_true.shape[0]` (else the given `imratio`: `auto=False`); the loss is computed on `y_pred` in [0, 1] (the examples:
    `y_pred = torch.sigmoid(y_pred)`). With the DualSampler (int(0.2 * 8) = 1 positive per batch of 8)
    and without it (the run's sampler's rate), ours equals libauc's AUCMLoss with that prior."""
    method, _ = build("aucm", {"sampling_rate": sampling_rate}, context(batch_size=8))
    method.sampling(sampler)
    oracle = AUCMLoss(margin=1.0, imratio=prior)
    with torch.no_grad():
        for loss in (method.aucm, oracle):
            loss.a.fill_(0.3), loss.b.fill_(0.2), loss.alpha.fill_(0.4)
    ours = loss_and_gradient(lambda out: method.loss(out, Y, None), LOGITS)
    expected = loss_and_gradient(lambda out: oracle(torch.sigmoid(out), Y, auto=False).reshape(()), LOGITS)
    assert ours[0] == pytest.approx(expected[0], rel=1e-6) and torch.allclose(ours[1], expected[1], rtol=1e-5)


def pesg_steps(method, oracle_kwargs: dict, epochs: int) -> None:
    """Train `method` and libauc's PESG (`oracle_kwargs`) on copies of one model for `epochs` epochs of
    one step each, decaying at the method's epochs as LibAUC's examples do: `if epoch in decay_epochs:
    optimizer.update_regularizer(decay_factor=10)`; the weights and lr must agree after every epoch."""
    oracle_model = copy.deepcopy(method.model)
    oracle_loss = AUCMLoss(margin=oracle_kwargs["margin"], imratio=float(method.aucm.p))
    oracle = PESG(oracle_model.parameters(), loss_fn=oracle_loss, verbose=False, device=CPU, **oracle_kwargs)
    for theirs, ours in zip(oracle.model_ref, method.optimizer.model_ref):  # PESG draws its reference point at random
        theirs.data.copy_(ours.data)
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for epoch in range(epochs):
        if epoch in method.decays:
            oracle.update_regularizer(decay_factor=10)
        assert method.lr() == pytest.approx(oracle.param_groups[0]["lr"])
        for model, optimizer, loss_fn in ((method.model, method.optimizer, lambda s: method.loss(s, Y, None)),
                                          (oracle_model, oracle, lambda s: oracle_loss(torch.sigmoid(s), Y, auto=False).reshape(()))):
            model.train()
            optimizer.zero_grad()
            loss_fn(model(x).squeeze(1)).backward()
            optimizer.step()
        method.end_epoch(epoch, 0.5)
        for ours, theirs in zip(method.model.parameters(), oracle_model.parameters()):
            assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-6)


PESG_KEYS = ("lr", "margin", "epoch_decay", "weight_decay", "momentum")


@pytest.mark.parametrize("preset", [""] + list(AUCM_PRESETS))
def test_aucm_presets_train_as_libauc_pesg(preset):
    """LibAUC libauc/optimizers/pesg.py, PESG(params, loss_fn, lr=0.1, ..., weight_decay=1e-5,
    epoch_decay=2e-3, momentum=0.9, ...) and `update_regularizer`: `self.param_groups[0]['lr'] =
    self.param_groups[0]['lr']/decay_factor`, `self.model_ref[i].data = self.model_acc[i].data/self.T`.
    The defaults and every DAM-on-MedMNIST preset: PESG built with the resolved values takes the same
    steps as ours for 4 epochs (decays at 2 and 3)."""
    method, params = build("aucm", {"preset": preset} if preset else {}, context(epochs=4))
    method.sampling("none")
    pesg_steps(method, {key: params[key] for key in PESG_KEYS}, epochs=4)


def test_aucm_ce_stages_match_libauc_trainer_recipes():
    """LibAUC libauc/trainer/core/image_trainer.py: `elif self.args.loss == "BCELoss": y_pred =
    torch.sigmoid(y_pred); loss = self.loss_fn(y_pred, targets)` (torch's BCELoss, Adam lr 1e-3,
    weight_decay 1e-4: config_ce_PneumoniaMNIST.yaml); then AUCMLoss + PESG with config_auc_
    PneumoniaMNIST.yaml's `lr: 0.1`, `weight_decay: 1.0e-5`, `epoch_decay: 3.0e-3`, `momentum: 0.9`,
    `margin: 1.0`, `sampling_rate: 0.2`."""
    method, _ = build("aucm_ce", {}, context(epochs=8))
    bce, aucm = method.stages()
    method.begin_stage(bce, 4)
    ours = loss_and_gradient(lambda out: method.loss(out, Y, None), LOGITS)
    expected = loss_and_gradient(lambda out: torch.nn.BCELoss()(torch.sigmoid(out), Y), LOGITS)
    assert ours[0] == pytest.approx(expected[0], rel=1e-6) and torch.allclose(ours[1], expected[1], rtol=1e-5)
    assert {k: method.optimizer.param_groups[0][k] for k in ("lr", "weight_decay")} == {"lr": 1e-3, "weight_decay": 1e-4}
    method.begin_stage(aucm, 4)
    method.sampling("none")
    pesg_steps(method, {"lr": 0.1, "margin": 1.0, "epoch_decay": 3e-3, "weight_decay": 1e-5, "momentum": 0.9}, epochs=4)
