"""LibAUC's optimizers of the ROC region a critical class needs, with LibAUC's own loss and optimizer classes:

- `sopa`: one-way partial AUC (FPR <= beta), `pAUC_CVaR_Loss` + `SOPA` (Zhu et al., ICML 2022);
- `sopa_s`: one-way partial AUC by KL-DRO, `pAUC_DRO_Loss` + `SOPAs` (ibid.);
- `sota_s`: two-way partial AUC (TPR >= alpha, FPR <= beta), `tpAUC_KL_Loss` + `SOTAs` (ibid.);
- `pdsca`: compositional AUC (CE and AUCM steps alternating), `CompositionalAUCLoss` + `PDSCA`
  (Yuan et al., ICLR 2022);
- `soap`: average precision, `APLoss` + `SOAP` (Qi et al., NeurIPS 2021).

As LibAUC's image trainer (libauc/trainer/core/image_trainer.py) runs them: the losses score
sigmoid(logit) and get every sample's training index (`data_len` = the training set's size);
batches come from LibAUC's DualSampler with the recipe's share of positives; at 50% and 75% of a
stage the lr is divided by 10 (`update_lr`, or `update_regularizer` where the optimizer keeps an
epoch-decay reference point: callbacks.py `on_epoch_begin`). The recipes that start from a
cross-entropy checkpoint (`pretrained: true`) run as two stages, `bce` then the method's, the
second from the last `bce` weights with a re-initialized head, as `aucm_ce` does.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from libauc.losses import APLoss, CompositionalAUCLoss, pAUC_CVaR_Loss, pAUC_DRO_Loss, tpAUC_KL_Loss
from libauc.optimizers import PDSCA, SOAP, SOPA, SOTAs, SOPAs

from benchmarks.core.errors import CritBenchError
from benchmarks.methods.base import Method, MethodParams, Stage, TrainContext, adam, decay_epochs
from benchmarks.methods.registry import register_method
from benchmarks.methods.sampling import Sampling, dual_sampler_refusal

RECIPES = "Optimization-AI/LibAUC examples/trainer_recipes/image_trainer/"
SEARCH_SPACES = "Optimization-AI/LibAUC libauc/trainer/config/spaces.py"
LOG_LR, WEIGHT_DECAY = "log:1e-4..1e-1", "0..2e-4"  # spaces.py: lr (0.0001, 0.1) log, weight_decay (0.0, 0.0002)
PAUC_MARGINS = [0.1, 0.3, 0.5, 0.7, 0.9, 1.0]  # spaces.py pAUC_*_LossSpace / tpAUC_KL_LossSpace "margin"
# The moving-average weights: spaces.py's range (0.0, 1.0) includes 0, where the estimates stay 0 and
# the losses divide by them; the losses' docstrings' "suggested values" instead (libauc/losses/auc.py).
GAMMAS = [0.1, 0.3, 0.5, 0.7, 0.9]


@dataclass(frozen=True)
class LibAUCParams(MethodParams):
    sampling_rate: float = 0.5  # DualSampler's share of positives per batch

    def validate(self) -> None:
        super().validate()
        if not 0 < self.sampling_rate < 1:
            raise CritBenchError(f"sampling_rate must be in (0, 1): LibAUC's pairwise losses need both classes "
                                 f"in every batch, got {self.sampling_rate}")


# The cross-entropy stage of the recipes that start from `resnet18_ce_cifar10/epoch_100.pt`:
# config_ce_Cifar10.yaml, 100 epochs before the 60 of the second stage. Deviation: the stage runs
# torch.optim.Adam; LibAUC's trainer resolves `optimizer: Adam` to libauc.optimizers.Adam
# (image_trainer.py `_get_optimizer`), the same step after clamping each gradient element to
# [-1, 1] (`clip_value=1.0`). Measured on soap's BCE stage on CIFAR-10 1:100 (ResNet10, bf16
# autocast, 40 steps each): max |gradient element| 0.51 at initialization and 0.98 at epoch 12,
# none clamped (docs/scripts/adam_clamp_probe.py), so the two steps agreed there; the clamp may
# still act on rare steps.
@dataclass(frozen=True)
class PretrainedParams(LibAUCParams):
    pretrain_fraction: float = 0.625  # epochs: 100 of 100 + 60
    pretrain_lr: float = 1e-3  # optimizer: Adam, lr: 1.0e-3
    pretrain_weight_decay: float = 1e-4  # weight_decay: 1.0e-4
    pretrain_sampling_rate: float = 0.5  # sampling_rate: 0.5 (0: shuffled batches, the run's --sampler none)

    def validate(self) -> None:
        super().validate()
        if not 0 < self.pretrain_fraction < 1:
            raise CritBenchError(f"pretrain_fraction must be in (0, 1) (the share of --epochs pre-training on BCE), "
                                 f"got {self.pretrain_fraction}")
        check_positive(pretrain_lr=self.pretrain_lr)
        if self.pretrain_weight_decay < 0:
            raise CritBenchError(f"pretrain_weight_decay must be >= 0, got {self.pretrain_weight_decay}")
        if not 0 <= self.pretrain_sampling_rate < 1:
            raise CritBenchError(f"pretrain_sampling_rate must be in [0, 1) (0: shuffled batches), "
                                 f"got {self.pretrain_sampling_rate}")


def check_positive(**values) -> None:
    for key, value in values.items():
        if not value > 0:
            raise CritBenchError(f"{key} must be positive, got {value}")


def check_fraction(**values) -> None:
    for key, value in values.items():
        if not 0 < value <= 1:
            raise CritBenchError(f"{key} must be in (0, 1], got {value}")


class LibAUCMethod(Method):
    """A LibAUC loss (`build_loss`) and optimizer (`build_optimizer`) on sigmoid scores, after a
    BCE stage when the params have `pretrain_fraction`. `running` names the loss' running estimates
    that LibAUC keeps as plain attributes, outside its `state_dict`: the method holds them between
    steps (`self.estimates`), so checkpoints keep them."""

    Params = LibAUCParams
    running: tuple[str, ...] = ("u_pos",)

    def __init__(self, model: torch.nn.Module, params: LibAUCParams, ctx: TrainContext):
        super().__init__(model, params, ctx)
        self.criterion = self.build_loss()
        self.estimates = {name: getattr(self.criterion, name) for name in self.running}
        self.stage, self.decays = self.stages()[0].name, []

    def build_loss(self) -> torch.nn.Module:
        raise NotImplementedError

    def build_optimizer(self) -> torch.optim.Optimizer:
        raise NotImplementedError

    @classmethod
    def stage_plan(cls, params):
        if not isinstance(params, PretrainedParams):
            return (Stage(cls.name),)
        share = params.pretrain_fraction
        return Stage("bce", share, selectable=False), Stage(cls.name, 1 - share, reset_head=True)

    def begin_stage(self, stage, epochs):
        self.stage, self.decays = stage.name, decay_epochs(epochs)
        if stage.name == "bce":
            self.optimizer = adam(self.model.parameters(), self.ctx, lr=self.params.pretrain_lr,
                                  weight_decay=self.params.pretrain_weight_decay)
        else:
            self.optimizer = self.build_optimizer()

    @classmethod
    def skip(cls, config):
        """Also refuses a --sampler: the LibAUC stage always draws DualSampler batches."""
        return super().skip(config) or dual_sampler_refusal(cls.name, cls.build_params(config.params), config.sampler,
                                                            zero_allowed=False)

    def sampling(self, requested: str) -> Sampling:
        refusal = dual_sampler_refusal(self.name, self.params, requested, zero_allowed=False)
        if refusal:  # `skip` refuses it before training; this guards a Trainer built on an unresolved config
            raise CritBenchError(refusal)
        rate = getattr(self.params, "pretrain_sampling_rate" if self.stage == "bce" else "sampling_rate")
        return Sampling("dual", rate) if rate else Sampling(requested)

    def loss(self, logits, y, index):
        if self.stage == "bce":
            return F.binary_cross_entropy_with_logits(logits, y)
        for name, value in self.estimates.items():
            setattr(self.criterion, name, value)
        value = self.criterion(torch.sigmoid(logits), y, index=index)
        self.estimates = {name: getattr(self.criterion, name) for name in self.running}
        return value.reshape(())

    def end_epoch(self, epoch, val_auc):
        if epoch + 1 not in self.decays:
            return
        if self.stage == "bce":  # libauc's Adam.update_lr(decay_factor=10)
            for group in self.optimizer.param_groups:
                group["lr"] /= 10
            return
        with contextlib.redirect_stdout(io.StringIO()):  # libauc prints every decay
            self.decay()

    def decay(self) -> None:
        """The recipe's lr decay: `update_lr` for optimizers without an epoch-decay reference point."""
        self.optimizer.update_lr(decay_factor=10)


# `sopa`'s defaults: examples/11_v140_Optimizing_pAUC_Loss_with_SOPA_on_Imbalanced_data.ipynb
# ("HyperParameters" cell: batch_size = 64, total_epochs = 60, decay_epochs = [30, 45], decay_factor
# = 10, and the values below), with its "Pretraining (Recommended)" cell: Adam(lr=lr,
# weight_decay=weight_decay) on BCE for total_epochs, shuffled batches, lr x0.1 at decay_epochs.
# Deviation: that cell keeps the pre-training epoch with the best *test* pAUC (`if best_test <
# test_pauc: ... torch.save(model.state_dict(), 'ce_pretrained_model_sopa.pth')`); the SOPA stage
# here starts from the last, as the trainer recipes' `epoch_100.pt`: CritBench never chooses on test.
@dataclass(frozen=True)
class SOPAParams(PretrainedParams):
    lr: float = 1e-3  # lr = 1e-3
    weight_decay: float = 2e-4  # weight_decay = 2e-4
    beta: float = 0.1  # beta = 0.1 # upper bound for FPR
    eta: float = 1.0  # eta = 1.0 # learning rate for control negative samples weights
    margin: float = 1.0  # pAUC_CVaR_Loss default (the notebook passes none)
    sampling_rate: float = 0.5  # sampling_rate = 0.5
    pretrain_fraction: float = 0.5  # 60 BCE epochs, then 60 SOPA epochs
    pretrain_weight_decay: float = 2e-4  # the same weight_decay
    pretrain_sampling_rate: float = 0.0  # DataLoader(..., shuffle=True): shuffled batches

    def validate(self) -> None:
        super().validate()
        check_fraction(beta=self.beta)
        check_positive(eta=self.eta, margin=self.margin)


@register_method("sopa")
class SOPAMethod(LibAUCMethod):
    """One-way partial AUC (FPR <= beta) by DRO-CVaR: `pAUC_CVaR_Loss` + `SOPA` (adam mode)."""

    description = "one-way pAUC (FPR<=0.1): libauc pAUC_CVaR_Loss + SOPA (adam 1e-3), after BCE pre-training"
    Params = SOPAParams
    search_space = {"lr": LOG_LR, "weight_decay": WEIGHT_DECAY, "margin": PAUC_MARGINS, "eta": "log:0.01..10"}
    search_space_source = f"{SEARCH_SPACES} pAUC_CVaR_LossSpace (lr, weight_decay, margin, eta)"

    def build_loss(self):
        p = self.params
        return pAUC_CVaR_Loss(data_len=self.ctx.n_train, pos_len=self.ctx.class_counts.n_pos, margin=p.margin,
                              beta=p.beta, eta=p.eta, device=self.ctx.device)

    def build_optimizer(self):
        return SOPA(self.model.parameters(), loss_fn=self.criterion, mode="adam", lr=self.params.lr,
                    weight_decay=self.params.weight_decay, device=self.ctx.device)


# `sopa_s`'s defaults: config_opauc_Cifar10.yaml (`loss: pAUCLoss`, whose mode 1w is pAUC_DRO_Loss;
# `optimizer: SOPAs`; epochs: 60, decay_epochs: [30, 45]) and the values below.
@dataclass(frozen=True)
class SOPAsParams(PretrainedParams):
    lr: float = 1e-3  # lr: 1.0e-3 (mode: adam)
    weight_decay: float = 2e-4  # weight_decay: 2.0e-4
    margin: float = 0.6  # margin: 0.6
    gamma: float = 0.1  # gamma: 0.1
    Lambda: float = 1.0  # pAUC_DRO_Loss default (the recipe passes none)
    sampling_rate: float = 0.5  # sampling_rate: 0.5

    def validate(self) -> None:
        super().validate()
        check_fraction(gamma=self.gamma)
        check_positive(margin=self.margin, Lambda=self.Lambda)


@register_method("sopa_s")
class SOPAsMethod(LibAUCMethod):
    """One-way partial AUC by KL-DRO over the negatives: `pAUC_DRO_Loss` + `SOPAs` (adam mode)."""

    description = "one-way pAUC by KL-DRO: libauc pAUC_DRO_Loss + SOPAs (adam 1e-3), after BCE pre-training"
    Params = SOPAsParams
    search_space = {"lr": LOG_LR, "weight_decay": WEIGHT_DECAY, "margin": PAUC_MARGINS, "gamma": GAMMAS,
                    "Lambda": "log:0.1..10"}
    search_space_source = f"{SEARCH_SPACES} pAUC_DRO_LossSpace; gamma: pAUC_DRO_Loss's suggested values"

    def build_loss(self):
        p = self.params
        return pAUC_DRO_Loss(data_len=self.ctx.n_train, gamma=p.gamma, margin=p.margin, Lambda=p.Lambda,
                             device=self.ctx.device)

    def build_optimizer(self):
        return SOPAs(self.model.parameters(), loss_fn=self.criterion, mode="adam", lr=self.params.lr,
                     weight_decay=self.params.weight_decay, verbose=False, device=self.ctx.device)


# `sota_s`'s defaults: config_tpauc_Cifar10.yaml (`loss: pAUCLoss` mode 2w, which is tpAUC_KL_Loss;
# `optimizer: SOTAs`; epochs: 60, decay_epochs: [30, 45]; its metric: max_fpr 0.3, min_tpr 0.7).
@dataclass(frozen=True)
class SOTAsParams(PretrainedParams):
    lr: float = 1e-3  # lr: 1.0e-3 (mode: adam)
    weight_decay: float = 2e-4  # weight_decay: 2.0e-4
    Lambda: float = 0.5  # Lambda: 0.5 (KL weight over the negatives)
    tau: float = 1.0  # tau: 1.0 (KL weight over the positives)
    gamma0: float = 0.5  # gammas: [0.5, 0.5]
    gamma1: float = 0.5
    margin: float = 1.0  # tpAUC_KL_Loss default (the recipe passes none)
    sampling_rate: float = 0.5  # sampling_rate: 0.5

    def validate(self) -> None:
        super().validate()
        check_fraction(gamma0=self.gamma0, gamma1=self.gamma1)
        check_positive(margin=self.margin, Lambda=self.Lambda, tau=self.tau)


@register_method("sota_s")
class SOTAsMethod(LibAUCMethod):
    """Two-way partial AUC (TPR >= alpha, FPR <= beta, set implicitly by Lambda and tau):
    `tpAUC_KL_Loss` + `SOTAs` (adam mode)."""

    description = "two-way pAUC by KL-DRO: libauc tpAUC_KL_Loss + SOTAs (adam 1e-3), after BCE pre-training"
    Params = SOTAsParams
    running = ("u_pos", "w")
    # spaces.py's gammas grid is [(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)]: pairs, given here one value each
    search_space = {"lr": LOG_LR, "weight_decay": WEIGHT_DECAY, "margin": PAUC_MARGINS, "gamma0": [0.1, 0.5, 0.9],
                    "gamma1": [0.1, 0.5, 0.9], "Lambda": "log:0.1..10", "tau": "log:0.1..10"}
    search_space_source = f"{SEARCH_SPACES} tpAUC_KL_LossSpace (gammas split into gamma0, gamma1)"

    def build_loss(self):
        p = self.params
        return tpAUC_KL_Loss(data_len=self.ctx.n_train, tau=p.tau, Lambda=p.Lambda, gammas=(p.gamma0, p.gamma1),
                             margin=p.margin, device=self.ctx.device)

    def build_optimizer(self):
        return SOTAs(self.model.parameters(), loss_fn=self.criterion, mode="adam", lr=self.params.lr,
                     weight_decay=self.params.weight_decay, device=self.ctx.device)


# `soap`'s defaults: config_auprc_Cifar10.yaml (`loss: APLoss`, `optimizer: SOAP`; epochs: 60,
# decay_epochs: [30, 45]) and the values below.
@dataclass(frozen=True)
class SOAPParams(PretrainedParams):
    lr: float = 1e-3  # lr: 1.0e-3 (mode: adam)
    weight_decay: float = 2e-4  # weight_decay: 2.0e-4
    margin: float = 0.6  # margin: 0.6
    gamma: float = 0.1  # gamma: 0.1
    sampling_rate: float = 0.5  # sampling_rate: 0.5

    def validate(self) -> None:
        super().validate()
        check_fraction(gamma=self.gamma)
        check_positive(margin=self.margin)


@register_method("soap")
class SOAPMethod(LibAUCMethod):
    """Average precision: `APLoss` (squared hinge) + `SOAP` (adam mode)."""

    description = "average precision: libauc APLoss + SOAP (adam 1e-3), after BCE pre-training"
    Params = SOAPParams
    running = ("u_all", "u_pos")
    search_space = {"lr": LOG_LR, "weight_decay": WEIGHT_DECAY, "margin": [0.6, 0.8, 1.0], "gamma": GAMMAS}
    search_space_source = f"{SEARCH_SPACES} APLossSpace; gamma: APLoss's suggested values"

    def build_loss(self):
        return APLoss(data_len=self.ctx.n_train, gamma=self.params.gamma, margin=self.params.margin,
                      device=self.ctx.device)

    def build_optimizer(self):
        return SOAP(self.model.parameters(), loss_fn=self.criterion, mode="adam", lr=self.params.lr,
                    weight_decay=self.params.weight_decay, verbose=False, device=self.ctx.device)


# `pdsca`'s defaults: config_compositional_auc_Cifar10.yaml (from scratch, `pretrained: false`;
# epochs: 100, decay_epochs: [0.5, 0.75]) and the values below.
@dataclass(frozen=True)
class PDSCAParams(LibAUCParams):
    lr: float = 0.1  # lr: 0.1 (also the CE steps' lr0, PDSCA's default lr0 = lr)
    weight_decay: float = 1e-4  # weight_decay: 1.0e-4
    epoch_decay: float = 2e-3  # epoch_decay: 2.0e-3
    beta1: float = 0.9  # beta1: 0.9
    beta2: float = 0.9  # beta2: 0.9
    margin: float = 1.0  # margin: 1.0
    k: int = 1  # k: 1 (CE steps per AUC step)
    version: str = "v1"  # CompositionalAUCLoss default
    sampling_rate: float = 0.2  # sampling_rate: 0.2

    def validate(self) -> None:
        super().validate()
        if self.version not in ("v1", "v2"):
            raise CritBenchError(f"version must be v1 or v2, got {self.version!r}")
        if self.k < 1 or self.epoch_decay < 0:
            raise CritBenchError(f"pdsca needs k >= 1 and epoch_decay >= 0, got k={self.k}, epoch_decay={self.epoch_decay}")
        check_fraction(beta1=self.beta1, beta2=self.beta2)
        check_positive(margin=self.margin)


@register_method("pdsca")
class PDSCAMethod(LibAUCMethod):
    """Compositional AUC: `CompositionalAUCLoss` alternates k BCE steps with one AUCM step,
    optimized by `PDSCA`; lr / 10 and a new epoch-decay reference point at 50% and 75%."""

    description = "compositional AUC: libauc CompositionalAUCLoss (BCE/AUCM alternating) + PDSCA (lr 0.1)"
    Params = PDSCAParams
    running = ("step",)  # the BCE/AUCM alternation's counter (a, b, alpha are in its state_dict)
    search_space = {"lr": LOG_LR, "weight_decay": WEIGHT_DECAY, "epoch_decay": "0..0.01", "margin": [0.6, 0.8, 1.0],
                    "k": [1, 2, 4]}
    search_space_source = f"{SEARCH_SPACES} CompositionalAUCLossSpace"

    def __init__(self, model: torch.nn.Module, params: PDSCAParams, ctx: TrainContext):
        super().__init__(model, params, ctx)
        self.alpha_grad = None  # see `loss`

    def loss(self, logits, y, index):
        # PDSCA steps as on an AUCM batch once `alpha` has a gradient; alpha is no optimizer
        # parameter, so nothing clears it: the method holds it, and a resumed run steps the same way.
        self.criterion.alpha.grad = self.alpha_grad
        return super().loss(logits, y, index)

    def after_step(self):
        self.alpha_grad = self.criterion.alpha.grad

    def build_loss(self):
        p = self.params
        return CompositionalAUCLoss(margin=p.margin, k=p.k, version=p.version, device=self.ctx.device)

    def build_optimizer(self):
        p = self.params
        return PDSCA(self.model.parameters(), loss_fn=self.criterion, lr=p.lr, beta1=p.beta1, beta2=p.beta2,
                     epoch_decay=p.epoch_decay, weight_decay=p.weight_decay, verbose=False, device=self.ctx.device)

    def decay(self) -> None:
        """callbacks.py: `update_regularizer(decay_factor=10)` when the optimizer has a reference point."""
        if self.optimizer.model_ref is not None:
            self.optimizer.update_regularizer(decay_factor=10)
        else:
            self.optimizer.update_lr(decay_factor=10)
