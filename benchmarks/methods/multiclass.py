"""Methods of the multi-class framing (`--task multiclass`): a K-way head trained on every label, the
critical class scored by its probability (docs/methods.md, "The multi-class framing").

The score the run ranks (`critical_logit`) is the log-odds of the critical class: with softmax
outputs z and the critical labels C, log sum_{k in C} e^{z_k} - log sum_{k not in C} e^{z_k}, so that
its sigmoid is the critical class's softmax probability (calibration and the 0.5 threshold keep
their meaning). Where outputs are scored one by one by their sigmoid (multi-label data, AUCM), it
is the log-odds of "any critical output", 1 - prod_{k in C} (1 - sigmoid(z_k)): the critical
output's own logit when C is one label.

Every method trains with the MedMNIST v2 recipe (Adam lr 1e-3, lr x0.1 at 50% and 75% of the
epochs) except `maucm`, which follows LibAUC's own ChestMNIST recipe.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache, partial

import torch
import torch.nn.functional as F
from libauc.losses import mAUCMLoss
from libauc.optimizers import PESG
from torchvision.ops import sigmoid_focal_loss

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.methods.alm import ALMConstraint, ALMMethod, ALMTerms, ranking_violations
from benchmarks.methods.aucm import AUCMMethod
from benchmarks.methods.base import (Method, MethodParams, OptimizerTerms, TrainContext, build_optimizer, decay_epochs,
                                     parse_params, with_preset)
from benchmarks.methods.loss_methods import OPTIMIZER_SOURCE, OPTIMIZER_SPACE
from benchmarks.methods.losses import WEIGHTINGS, class_weights, drw_class_weights, drw_is_on
from benchmarks.methods.presets import CLASS_PRESETS, CLASS_RUN, class_preset
from benchmarks.methods.registry import register_method
from datasets import get_dataset_entry


@dataclass(frozen=True)
class ClassContext(TrainContext):
    """A multi-class run's context: the training samples per class (multi-label: per finding), the
    critical class's label indices, and whether a sample may carry several labels."""

    class_sizes: tuple[int, ...] = ()
    critical: tuple[int, ...] = ()
    multilabel: bool = False


@lru_cache(maxsize=None)
def critical_columns(critical: tuple[int, ...], num_classes: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The critical labels and the others as sorted index tensors on `device`, built once: a training
    step that indexes with them copies nothing to the device and waits for nothing (a boolean mask or
    a host list would sync the host with the device on every step). Built outside inference mode:
    the first call may come from scoring (`torch.inference_mode`), and an inference tensor cached
    here would stop a later run's training loss (alm_ce after ce in one process) from backpropagating."""
    with torch.inference_mode(False):
        chosen = torch.zeros(num_classes, dtype=torch.bool)
        chosen[list(critical)] = True
        return chosen.nonzero().squeeze(1).to(device), (~chosen).nonzero().squeeze(1).to(device)


def critical_logit(outputs: torch.Tensor, critical: tuple[int, ...], independent: bool) -> torch.Tensor:
    """The critical class's log-odds from `(B, K)` outputs (module docstring): softmax outputs, or
    `independent` sigmoid outputs."""
    members, others = critical_columns(tuple(critical), outputs.shape[1], outputs.device)
    if independent:
        none = F.softplus(outputs.index_select(1, members)).sum(1)  # -log prod (1 - sigmoid(z_k))
        return none + torch.log(-torch.expm1(-none))  # log((1 - P(none)) / P(none))
    return torch.logsumexp(outputs.index_select(1, members), 1) - torch.logsumexp(outputs.index_select(1, others), 1)


def critical_members(targets: torch.Tensor, critical: tuple[int, ...], num_classes: int) -> torch.Tensor:
    """Float 1 where a sample belongs to the critical class: its label (multi-class `(B,)` targets)
    or any finding (multi-label `(B, K)`) among `critical`, of `num_classes` labels."""
    members = critical_columns(tuple(critical), num_classes, targets.device)[0]
    if targets.ndim == 2:
        return targets.index_select(1, members).amax(1).float()
    return torch.isin(targets, members).float()


def class_tensor(weights: list[float], device: torch.device) -> torch.Tensor:
    """Per-class weights (`losses.class_weights`) as a float32 tensor on `device`."""
    return torch.tensor(weights, dtype=torch.float32, device=device)


SCHEDULES = ("medmnist", "cao", "constant")
PESG_SCHEDULES = ("medmnist", "constant")


def cao_factor(epoch: int, epochs: int, warmup: int) -> float:
    """The lr factor of 0-based `epoch` of `epochs` under Cao et al.'s schedule, kaidic/LDAM-DRW
    cifar_train.py `adjust_learning_rate` (`epoch = epoch + 1; if epoch <= 5: lr = args.lr * epoch / 5;
    elif epoch > 180: lr = args.lr * 0.0001; elif epoch > 160: lr = args.lr * 0.01`) with 5 = `warmup`,
    and 160 and 180 the 80% and 90% of `epochs` (200 there)."""
    epoch += 1
    if epoch <= warmup:
        return epoch / warmup
    if epoch > int(0.9 * epochs):
        return 1e-4
    if epoch > int(0.8 * epochs):
        return 1e-2
    return 1.0


@dataclass(frozen=True)
class ClassParams(OptimizerTerms, MethodParams):
    # medmnist: lr x0.1 at 50% and 75% of the epochs (the MedMNIST v2 recipe); cao: `cao_factor`; constant
    schedule: str = "medmnist"
    warmup_epochs: int = 0  # schedule cao: epochs of linear warm-up
    preset: str = ""  # a named published recipe (benchmarks/methods/presets.py CLASS_PRESETS); explicit values win

    def validate(self) -> None:
        super().validate()
        if self.schedule not in SCHEDULES:
            raise CritBenchError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.warmup_epochs < 0:
            raise CritBenchError(f"warmup_epochs must be >= 0, got {self.warmup_epochs}")


class MulticlassMethod(Method):
    """A K-way head trained on every label with Adam and the MedMNIST v2 step schedule; subclasses
    give `objective(outputs, targets)`. Targets are label indices `(B,)` (long), or for multi-label
    data findings `(B, K)` (float)."""

    tasks = ("multiclass",)
    Params = ClassParams
    score_is_probability_logit = True  # sigmoid(score) is the critical class's probability
    multilabel_support = True  # whether it trains multi-label data (ChestMNIST)
    search_space = OPTIMIZER_SPACE  # the binary loss methods' optimizer space (loss_methods.py)
    search_space_source = OPTIMIZER_SOURCE
    sigmoid_outputs = False  # outputs scored one by one by their sigmoid also on multi-class data

    @classmethod
    def skip(cls, config: RunConfig) -> str | None:
        if not cls.multilabel_support and get_dataset_entry(config.dataset).class_labels == "multi-label":
            return (f"--method {cls.name} is a softmax loss over one label per sample; {config.dataset} is multi-label: "
                    f"use ce, focal_ce, maucm or alm_ce")
        return super().skip(config)

    presets = tuple(CLASS_PRESETS)

    @classmethod
    def build_params(cls, values: dict) -> ClassParams:
        return parse_params(cls.Params, with_preset(values, class_preset))

    @classmethod
    def run_overrides(cls, params: dict) -> dict:
        return dict(CLASS_RUN.get(params.get("preset", ""), {}))

    def __init__(self, model: torch.nn.Module, params: ClassParams, ctx: ClassContext):
        super().__init__(model, params, ctx)
        self.optimizer = self.build_optimizer()
        self.scheduler = self.build_scheduler()

    def build_optimizer(self) -> torch.optim.Optimizer:
        return build_optimizer(self.model.parameters(), self.params, self.ctx)

    def build_scheduler(self) -> torch.optim.lr_scheduler.LRScheduler:
        """The lr schedule `params.schedule`, stepped after every epoch."""
        if self.params.schedule == "cao":
            factor = partial(cao_factor, epochs=self.ctx.epochs, warmup=self.params.warmup_epochs)
            return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        milestones = decay_epochs(self.ctx.epochs) if self.params.schedule == "medmnist" else []
        return torch.optim.lr_scheduler.MultiStepLR(self.optimizer, milestones, 0.1)

    @property
    def independent(self) -> bool:
        """Whether the outputs are scored one by one by their sigmoid (not by the softmax)."""
        return self.ctx.multilabel or self.sigmoid_outputs

    def score(self, outputs):
        return critical_logit(outputs, self.ctx.critical, self.independent)

    def probabilities(self, outputs: torch.Tensor) -> torch.Tensor:
        """Each class's probability (MedMNIST's evaluator scores these): softmax or sigmoid."""
        return torch.sigmoid(outputs) if self.independent else torch.softmax(outputs, 1)

    def loss(self, outputs, targets, index):
        return self.objective(outputs, targets)

    def objective(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def end_epoch(self, epoch, val_auc):
        self.scheduler.step()


@dataclass(frozen=True)
class DRWTerms:
    """Deferred re-weighting's switch for the softmax losses (a mixin before the method's params
    class): kaidic/LDAM-DRW cifar_train.py's `train_rule == 'DRW'` with `--epochs 200`."""

    drw: bool = False  # class-balanced weights from drw_start x epochs on (Cao et al. 2019)
    drw_start: float = 0.8  # cifar_train.py: `idx = epoch // 160` of 200 epochs; 0: from the start (its 'Reweight')

    def validate(self) -> None:
        super().validate()
        if not 0 <= self.drw_start <= 1:
            raise CritBenchError(f"drw_start must be in [0, 1] (a share of the epochs), got {self.drw_start}")


class DeferredReweighting:
    """DRW (a mixin before a softmax method's class, whose params have `DRWTerms`): from `drw_start`
    x epochs on (`drw_is_on`), the loss weighs class k by `drw_class_weights`, the binary LDAM's
    rule too; `class_weight` is what the objective passes as the loss's `weight`."""

    @classmethod
    def skip(cls, config: RunConfig) -> str | None:
        reason = super().skip(config)  # the method's own refusal first (ldam_ce on multi-label data)
        if reason is None and config.params.get("drw") and get_dataset_entry(config.dataset).class_labels == "multi-label":
            return (f"--param drw=true re-weights the softmax classes of one label per sample; {config.dataset} is "
                    f"multi-label: drop drw")
        return reason

    def __init__(self, model, params, ctx: ClassContext):
        super().__init__(model, params, ctx)
        self.drw_weights = class_tensor(drw_class_weights(ctx.class_sizes), ctx.device) if params.drw else None
        self.reweighting = self.reweighted_after(0)

    def reweighted_after(self, epochs_done: int) -> bool:
        return self.drw_weights is not None and drw_is_on(epochs_done, self.params.drw_start, self.ctx.epochs)

    @property
    def class_weight(self) -> torch.Tensor | None:
        return self.drw_weights if self.reweighting else None

    def end_epoch(self, epoch, val_auc):
        super().end_epoch(epoch, val_auc)
        self.reweighting = self.reweighted_after(epoch + 1)

    def state_summary(self):
        return {**super().state_summary(), **({"drw": self.reweighting} if self.drw_weights is not None else {})}

    def state_dict(self):
        return {**super().state_dict(), "reweighting": self.reweighting}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.reweighting = state["reweighting"]


@dataclass(frozen=True)
class CEParams(DRWTerms, ClassParams):
    """ce's: the class params and DRW's."""


@register_method("ce")
class CrossEntropy(DeferredReweighting, MulticlassMethod):
    """Softmax cross-entropy; on multi-label data BCE per output (MedMNIST v2, MedMNIST/experiments
    MedMNIST2D/train_and_eval_pytorch.py: `nn.CrossEntropyLoss()`, multi-label `nn.BCEWithLogitsLoss()`).
    With `drw`, CE-DRW: kaidic/LDAM-DRW cifar_train.py `nn.CrossEntropyLoss(weight=per_cls_weights)`."""

    description = ("softmax cross-entropy over every label (BCE per finding on multi-label data); MedMNIST v2 recipe "
                   "(Adam 1e-3, lr x0.1 at 50%/75%); --param drw=true for CE-DRW")
    Params = CEParams

    def objective(self, outputs, targets):
        if self.ctx.multilabel:
            return F.binary_cross_entropy_with_logits(outputs, targets)
        return F.cross_entropy(outputs, targets, weight=self.class_weight)


@dataclass(frozen=True)
class ClassBalancedParams(ClassParams):
    beta: float = 0.9999  # Cui et al.'s CIFAR choice (richardaecn/class-balanced-loss cifar_im_trainval_cb.sh)
    weighting: str = "ens"

    def validate(self) -> None:
        super().validate()
        class_weights(self.weighting, (1, 1), self.beta)


@register_method("cb_ce")
class ClassBalancedCE(MulticlassMethod):
    """Class-balanced softmax cross-entropy: mean over the batch of w_y CE (Cui et al. 2019).

    richardaecn/class-balanced-loss src/cifar_main.py: `tf.losses.softmax_cross_entropy(one_hot_labels,
    logits, weights=...)` with each sample's class weight, whose default reduction averages w_i CE_i
    over the samples (not over the weights, as `F.cross_entropy(weight=...)` would)."""

    description = "class-balanced softmax cross-entropy (Cui et al. 2019): weighting ens (beta), ins or isns"
    Params = ClassBalancedParams
    multilabel_support = False
    search_space = {**OPTIMIZER_SPACE, "beta": [0.99, 0.999, 0.9999], "weighting": ["ens", "ins", "isns"]}
    search_space_source = ("no reference grid: beta two to four nines up to the default 0.9999, and the three "
                           f"weightings; {OPTIMIZER_SOURCE}")

    def __init__(self, model, params: ClassBalancedParams, ctx: ClassContext):
        super().__init__(model, params, ctx)
        self.weights = class_tensor(class_weights(params.weighting, ctx.class_sizes, params.beta), ctx.device)

    def objective(self, outputs, targets):
        return (self.weights[targets] * F.cross_entropy(outputs, targets, reduction="none")).mean()


@dataclass(frozen=True)
class FocalParams(DRWTerms, ClassParams):
    gamma: float = 1.0  # kaidic/LDAM-DRW cifar_train.py: `FocalLoss(weight=per_cls_weights, gamma=1)`

    def validate(self) -> None:
        super().validate()
        if self.gamma < 0:
            raise CritBenchError(f"gamma must be >= 0, got {self.gamma}")


@register_method("focal_ce")
class FocalCE(DeferredReweighting, MulticlassMethod):
    """Softmax focal loss as kaidic/LDAM-DRW losses.py: mean of (1 - p_t)^gamma CE with p_t = exp(-CE);
    on multi-label data torchvision's sigmoid focal loss per output (no alpha). With `drw`, the
    reference's `FocalLoss(weight=per_cls_weights)`: the class weight inside the per-sample CE."""

    description = ("softmax focal loss (1 - p_t)^gamma CE (Lin et al. 2017, as kaidic/LDAM-DRW); sigmoid per finding on "
                   "multi-label data; --param drw=true for Focal-DRW")
    Params = FocalParams
    search_space = {**OPTIMIZER_SPACE, "gamma": "0.0..3.0"}
    search_space_source = f"no reference grid: kaidic/LDAM-DRW fixes gamma=1; gamma from 0 (CE) to 3; {OPTIMIZER_SOURCE}"

    def objective(self, outputs, targets):
        if self.ctx.multilabel:
            return sigmoid_focal_loss(outputs, targets, alpha=-1, gamma=self.params.gamma, reduction="mean")
        ce = F.cross_entropy(outputs, targets, weight=self.class_weight, reduction="none")
        return ((1 - torch.exp(-ce)) ** self.params.gamma * ce).mean()


@dataclass(frozen=True)
class LDAMParams(DRWTerms, ClassParams):
    max_margin: float = 0.5  # LDAMLoss(cls_num_list, max_m=0.5, weight=None, s=30)
    scale: float = 30.0

    def validate(self) -> None:
        super().validate()
        if not self.max_margin > 0 or not self.scale > 0:
            raise CritBenchError(f"ldam_ce needs max_margin > 0 and scale > 0; got {self.max_margin}, {self.scale}")


@register_method("ldam_ce")
class LDAMCE(DeferredReweighting, MulticlassMethod):
    """LDAM over K classes on a cosine head (Cao et al. 2019, kaidic/LDAM-DRW losses.py `LDAMLoss`):
    margins m_k = C n_k^(-1/4), the largest `max_margin`, subtracted from the true class's cosine,
    cross-entropy of `scale` x the cosines. The head outputs `scale` x cosine (models3d's cosine
    head), so the loss subtracts `scale` x m_y. With `drw`, LDAM-DRW (`DeferredReweighting`)."""

    description = "LDAM (Cao et al. 2019) over every label on a cosine head; --param drw=true for LDAM-DRW"
    Params = LDAMParams
    multilabel_support = False
    search_space = {**OPTIMIZER_SPACE, "max_margin": "0.1..1.0", "drw": [False, True]}
    search_space_source = ("no reference grid: kaidic/LDAM-DRW cifar_train.py fixes max_m=0.5 and compares train_rule "
                           f"None and DRW; max_margin 0.1..1.0 around 0.5, DRW off or on; {OPTIMIZER_SOURCE}")

    @classmethod
    def fixed_head(cls, params: dict) -> str | None:
        return "cosine"  # scaled by its own `scale`

    @classmethod
    def model_options(cls, params: dict) -> dict:
        return {**super().model_options(params), "head": cls.fixed_head(params), "head_scale": params["scale"]}

    def __init__(self, model, params: LDAMParams, ctx: ClassContext):
        super().__init__(model, params, ctx)
        margins = torch.tensor(ctx.class_sizes, dtype=torch.float64) ** -0.25
        self.margins = (margins * params.max_margin / margins.max()).float().to(ctx.device)

    def objective(self, outputs, targets):
        shifted = outputs - self.params.scale * F.one_hot(targets, outputs.shape[1]) * self.margins
        return F.cross_entropy(shifted, targets, weight=self.class_weight)


# LibAUC's ChestMNIST recipe, examples/trainer_recipes/image_trainer/config_auc_ChestMNIST.yaml:
# `loss: MultiLabelAUCMLoss`, `margin: 1.0`, `optimizer: PESG`, `lr: 0.1`, `weight_decay: 1.0e-5`,
# `epoch_decay: 3.0e-3`, `momentum: 0.9`, `decay_epochs: [0.5, 0.75]` (its 20% sampling rate is
# a multi-label DualSampler, not used here: the run's --sampler draws the batches).
@dataclass(frozen=True)
class MAUCMParams(MethodParams):
    """maucm's: PESG's own terms, no Adam/SGD choice, warm-up or preset (PESG has no published
    long-tailed recipe here)."""

    lr: float = 0.1
    weight_decay: float = 1e-5
    margin: float = 1.0
    epoch_decay: float = 3e-3
    momentum: float = 0.9
    # medmnist: PESG's lr / 10 and regularizer reset at 50% and 75% of the epochs; constant: none
    schedule: str = "medmnist"

    def validate(self) -> None:
        super().validate()
        if self.schedule not in PESG_SCHEDULES:
            raise CritBenchError(f"maucm's schedule must be one of {', '.join(PESG_SCHEDULES)} (LibAUC's PESG decays "
                                 f"its own lr), got {self.schedule!r}")


@register_method("maucm")
class MultiLabelAUCM(MulticlassMethod):
    """LibAUC's mAUCMLoss (one AUC-margin loss per class, one-vs-rest) on sigmoid outputs, optimized
    by PESG; multi-class labels become one-hot targets. lr / 10 and the regularizer's reference
    point reset at 50% and 75% of the epochs (`update_regularizer`), as LibAUC's recipes."""

    description = "LibAUC mAUCMLoss (one-vs-rest AUC margin per class) + PESG (lr 0.1), LibAUC's ChestMNIST recipe"
    Params = MAUCMParams
    presets = ()
    sigmoid_outputs = True
    search_space = AUCMMethod.search_space  # the binary aucm's, whose parameters mAUCM shares
    search_space_source = AUCMMethod.search_space_source

    def build_optimizer(self):
        self.aucm = mAUCMLoss(margin=self.params.margin, num_labels=len(self.ctx.class_sizes), device=self.ctx.device)
        # a, b and alpha are plain tensors, not in mAUCMLoss's state_dict: named here, a checkpoint keeps them
        self.loss_variables = (self.aucm.a, self.aucm.b, self.aucm.alpha)
        return PESG(self.model.parameters(), loss_fn=self.aucm, lr=self.params.lr, margin=self.params.margin,
                    epoch_decay=self.params.epoch_decay, weight_decay=self.params.weight_decay,
                    momentum=self.params.momentum, verbose=False, device=self.ctx.device)

    @classmethod
    def build_params(cls, values: dict) -> MAUCMParams:
        return parse_params(cls.Params, values)

    def __init__(self, model, params: MAUCMParams, ctx: ClassContext):
        super().__init__(model, params, ctx)
        self.decays = decay_epochs(ctx.epochs) if params.schedule == "medmnist" else []

    def build_scheduler(self):
        return None  # PESG decays its own lr with the regularizer reset (`end_epoch`)

    def objective(self, outputs, targets):
        if not self.ctx.multilabel:
            targets = F.one_hot(targets, outputs.shape[1]).float()
        return self.aucm(torch.sigmoid(outputs), targets)

    def end_epoch(self, epoch, val_auc):
        if epoch + 1 in self.decays:
            self.optimizer.update_regularizer(decay_factor=10)

    def state_dict(self):
        return {"loss_variables": [value.detach().clone() for value in self.loss_variables]}

    def load_state_dict(self, state):
        with torch.no_grad():  # in place: PESG holds these tensors
            for current, saved in zip(self.loss_variables, state["loss_variables"]):
                current.copy_(saved)


@dataclass(frozen=True)
class ALMCriticalParams(ALMTerms, CEParams):
    """alm_ce: ce's params (DRW's too) and the binary ALM's constraint params, defaults and cap."""


@register_method("alm_ce")
class ALMCritical(ALMConstraint, CrossEntropy):
    """CritBench's extension of the ALM constraint to the multi-class framing (not the ALM paper's
    own multi-class formulas): cross-entropy over every label (as `ce`) plus, on the critical
    class's score s = `critical_logit`, the binary ALM's ranking constraint: for each critical
    sample i of a batch, q_i = sum over the batch's other samples j of max(0, delta - (s_i - s_j)),
    added as (lambda_i q_i + mu/2 q_i^2) / (|critical| |other|), lambda_i += mu q_i after every step,
    mu on the binary ALM's schedule (`alm.MuSchedule`)."""

    description = ("CritBench's extension of ALM (Sangalli et al. 2021) to --task multiclass: cross-entropy plus the "
                   "ranking constraint on the critical class's score (every critical sample above every other by delta)")
    Params = ALMCriticalParams
    search_space = ALMMethod.search_space  # the binary alm's: lr, weight_decay, mu0, delta
    search_space_source = ALMMethod.search_space_source

    def loss(self, outputs, targets, index):
        score, members = self.score(outputs), critical_members(targets, self.ctx.critical, outputs.shape[1])
        q = ranking_violations(score, members, self.params.delta)
        return self.constrained(self.objective(outputs, targets), score, q, members, index)
