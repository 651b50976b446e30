"""One training run: the whole dataset on the device, batches by indexing, the method's training
stages one after another with early stopping on validation AUC within each, the best checkpoint
(of the stages that may supply it) scored once on test. With a `RunCheckpoint`, the run's whole
state is saved after every epoch and a killed run resumes from it to the same result (on the CPU
bitwise; on CUDA up to its non-determinism: docs/failure-modes.md)."""
from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks.engine.augment import create_augmentation, normalize
from benchmarks.engine.checkpoint import RunCheckpoint, attribute_state, load_attribute_state, restored
from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError, DivergedError
from benchmarks.core.phases import timed
from benchmarks.core.records import FitResult
from benchmarks.methods import Stage, TrainContext, create_method, get_method
from benchmarks.core.metrics import (
    binary_metrics,
    calibration,
    class_metrics,
    confusion,
    group_accuracies,
    medmnist_acc,
    medmnist_auc,
    operating_points,
    shot_groups,
)
from benchmarks.methods.multiclass import ClassContext
from benchmarks.methods.sampling import epoch_order
from datasets import BinaryDataset
from models3d import create_model

# Evaluation batch = training batch x this factor. 4x on CUDA fills the GPU; 1x on the CPU, where a
# larger batch overflows the caches: fp32 channels-last ResNet18 28 px on a 2-core AMD EPYC (2 MiB L2
# per core) ran 251 img/s at batch 128 and 210 at batch 512 (docs/speed.md).
EVAL_BATCH_FACTOR = {"cuda": 4, "cpu": 1}
METHOD_INPUTS = ("model", "params", "ctx")  # a method's attributes the trainer builds it from, not its state


@dataclass
class EarlyStopping:
    """Tracks the best validation AUC (mode max); NaN is never an improvement.

    The ALM paper's rule (alm-dnn `utils/train_test_CIFAR.py`: `if epoch - epoch_last_auc_max >
    patience_early_stopping`): `should_stop` once more than `patience` epochs have passed since the
    best one, i.e. after `patience + 1` epochs without improvement; 0 means never stop."""

    patience: int
    best: float = -math.inf
    stale: int = 0

    def update(self, value: float) -> bool:
        """Record one epoch's value; True when it is a new best."""
        if value > self.best:
            self.best, self.stale = value, 0
            return True
        self.stale += 1
        return False

    @property
    def should_stop(self) -> bool:
        return bool(self.patience) and self.stale > self.patience


@dataclass
class TrainingCursor:
    """Where a run stands between two epochs; with the model's, the method's and the random
    generators' states, what a checkpoint holds."""

    selection: EarlyStopping  # the best val AUC over the selectable stages
    stopper: EarlyStopping  # patience within the current stage
    stage: int = 0  # the current stage's index in the method's stages
    stage_epoch: int = 0  # its epochs done
    history: list = field(default_factory=list)
    best: dict | None = None  # the snapshot of the selected epoch so far

    def state_dict(self) -> dict:
        return {**vars(self), "selection": vars(self.selection), "stopper": vars(self.stopper)}

    def next_stage(self, patience: int) -> None:
        self.stage, self.stage_epoch, self.stopper = self.stage + 1, 0, EarlyStopping(patience)

    @classmethod
    def from_state(cls, state: dict) -> "TrainingCursor":
        return cls(**{**state, "selection": EarlyStopping(**state["selection"]),
                      "stopper": EarlyStopping(**state["stopper"])})


class DeviceSplit:
    """A split resident on the training device: uint8 images, float binary labels, and the targets
    the method trains on: the binary labels, or with class labels (`--task multiclass`) the label
    indices (long) or multi-label findings (float)."""

    def __init__(self, split, device: torch.device):
        self.x = split.x.to(device)
        self.y = split.y.to(device=device, dtype=torch.float32)
        self.y_numpy = split.y.numpy().astype(np.int64)
        self.classes = None if split.classes is None else split.classes.numpy().astype(np.int64)
        if split.classes is None:
            self.targets = self.y
        else:
            self.targets = split.classes.to(device=device, dtype=torch.float32 if split.classes.ndim == 2 else torch.long)

    def __len__(self) -> int:
        return len(self.y)


class Trainer:
    """Holds a run's model, method and device data; `fit()` trains, `score()` evaluates."""

    def __init__(self, config: RunConfig, dataset: BinaryDataset, device: torch.device, progress: bool = True,
                 on_epoch=None):
        """`config` resolved (`resolve_config`), `device` resolved from it (`device.resolve_device`)."""
        self.config, self.dataset, self.device, self.progress = config, dataset, device, progress
        self.on_epoch = on_epoch  # called as on_epoch(epoch, val_auc) after each epoch (a tuning pruner)
        torch.manual_seed(config.seed)
        self.gen = torch.Generator(self.device).manual_seed(config.seed)
        self.data = {name: DeviceSplit(split, self.device) for name, split in dataset.splits.items()}
        self.mean = torch.tensor(dataset.mean, device=self.device)
        self.std = torch.tensor(dataset.std, device=self.device)
        self.augment = create_augmentation(config.augment or dataset.augment, dataset.dims)
        cuda = self.device.type == "cuda"
        bf16 = config.precision == "bf16-autocast"  # decided once, by resolve_config
        if cuda:  # shapes are fixed within a run: let cuDNN pick its fastest convolution algorithms
            torch.backends.cudnn.benchmark = True
        # channels-last feeds cuDNN's and oneDNN's (AMX) fastest convolutions (docs/speed.md)
        self.memory_format = (torch.channels_last if dataset.dims == 2 else torch.channels_last_3d) if cuda or bf16 else torch.contiguous_format
        outputs = {} if dataset.num_classes is None else {"num_outputs": dataset.num_classes}  # a K-way head
        self.model = create_model(dataset.dims, dataset.in_channels, arch=config.model, stem=config.stem,
                                  width=config.width, **outputs, **get_method(config.method).model_options(config.params),
                                  ).to(self.device, memory_format=self.memory_format)
        train = self.data["train"]
        ctx = TrainContext(dims=dataset.dims, epochs=config.epochs, device=self.device, n_train=len(train),
                           train_positive_rate=float(train.y.mean()), batch_size=config.batch_size)
        if dataset.num_classes is not None:
            ctx = ClassContext(**vars(ctx), class_sizes=tuple(dataset.train.summary(dataset.num_classes)["class_counts"]),
                               critical=dataset.critical_labels, multilabel=dataset.multilabel)
        self.method = create_method(config.method, self.model, config.params, ctx)
        self.stage_epochs = self.method.stage_epochs()  # fails early when --epochs is too small
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
        self.precision = config.precision
        # the compiled module shares the model's parameters; checkpoints keep using self.model
        self.forward = torch.compile(self.model) if config.compile else self.model

    def batch(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        if self.augment is not None:
            x = self.augment(x, self.gen, train)
        return normalize(x, self.mean, self.std).contiguous(memory_format=self.memory_format)

    @timed("train")
    def train_epoch(self) -> float:
        self.model.train()
        train, size = self.data["train"], self.config.batch_size
        order = epoch_order(self.method.sampling(self.config.sampler), train.y, size, self.gen)
        total, trained = torch.zeros((), device=self.device), len(order) - (len(order) % size == 1)
        for start in range(0, len(order), size):
            index = order[start:start + size]
            if len(index) < 2:  # BatchNorm cannot train on a single sample
                continue
            total += self.train_step(index) * len(index)
        return float(total) / trained  # the mean over the samples trained on; one host sync per epoch

    def train_step(self, index: torch.Tensor) -> torch.Tensor:
        """One optimizer step on the training samples `index`; the batch loss, left on the device."""
        train = self.data["train"]
        batch = self.batch(train.x[index], train=True)  # augmented in fp32: autocast is for the network
        with self.autocast():
            outputs = self.forward(batch).squeeze(1)
        loss = self.method.loss(outputs.float(), train.targets[index], index)
        self.method.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.method.optimizer.step()
        self.model.constrain_head()
        self.method.after_step()
        return loss.detach()

    def predict(self, split: str) -> np.ndarray:
        """The method's score (`Method.score`: the logit, LDAM's cos_1, the critical class's log-odds)
        of every sample of `split`, as float64 on the CPU."""
        return self.predict_classes(split, classes=False)[0]

    @torch.inference_mode()
    def predict_classes(self, split: str, classes: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """`predict`'s scores, and where `classes` is asked and the data has class labels each class's
        probability (`(N, K)` float32; else None), from the same forward pass.

        Always in fp32, also when training uses bf16 autocast: bf16 logits keep 8 significant bits,
        so distinct samples tie and AUC (early stopping included) would be computed on rounded scores."""
        self.model.eval()
        data, size = self.data[split], self.config.batch_size * EVAL_BATCH_FACTOR.get(self.device.type, 1)
        outputs, probabilities = [], []
        for start in range(0, len(data), size):
            batch_outputs = self.forward(self.batch(data.x[start:start + size], train=False)).squeeze(1).float()
            outputs.append(self.method.score(batch_outputs))
            if classes and data.classes is not None:
                probabilities.append(self.method.probabilities(batch_outputs))
        scores = torch.cat(outputs).cpu().numpy().astype(np.float64)
        return scores, torch.cat(probabilities).cpu().numpy() if probabilities else None

    @timed("eval")
    def score(self, split: str, classes: bool = False) -> tuple[dict, np.ndarray, np.ndarray | None]:
        """The binary metrics of `split`, its scores and, with `classes`, its class probabilities
        (`predict_classes`)."""
        scores, probabilities = self.predict_classes(split, classes)
        return binary_metrics(self.data[split].y_numpy, scores), scores, probabilities

    def snapshot(self, epoch: int, stage: str) -> dict:
        """A copy (not an alias) of the model weights and the method's state."""
        return {
            "epoch": epoch,
            "stage": stage,
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "method": copy.deepcopy(self.method.state_dict()),
        }

    def restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.method.load_state_dict(checkpoint["method"])

    def checkpoint_state(self, progress: TrainingCursor) -> dict:
        """Everything a resumed run needs: its progress, the weights, every attribute of the method
        (optimizers, LR schedules, multipliers, flags), the random generators' states."""
        return {
            "progress": progress.state_dict(),
            "model": self.model.state_dict(),
            "method": attribute_state(self.method, skip=METHOD_INPUTS),
            "rng": {"torch": torch.get_rng_state(), "run": self.gen.get_state(),
                    "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None},
        }

    def load_checkpoint_state(self, state: dict, path) -> None:
        """Restore `checkpoint_state`'s weights, method and generators from the file `path`, once
        the stage it was taken in has begun (the stage builds the optimizer it is loaded into)."""
        try:
            self.model.load_state_dict(state["model"])  # checks the names and shapes
            for name, tensor in self.model.state_dict(keep_vars=True).items():
                restored(tensor, state["model"][name])  # and takes the saved memory layouts
            load_attribute_state(self.method, state["method"], self.device)
            torch.set_rng_state(state["rng"]["torch"])
            self.gen.set_state(state["rng"]["run"])
            if state["rng"]["cuda"] is not None:
                torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        except Exception as error:  # written by other code of the same run
            raise CritBenchError(f"checkpoint {path} does not fit this code's model or method "
                                 f"({type(error).__name__}: {error}); delete it to train from the start") from error

    def begin_stage(self, stage: Stage, epochs: int) -> None:
        if stage.reset_head:
            self.model.reset_head()
        self.method.begin_stage(stage, epochs)

    def train_stage(self, stage: Stage, epochs: int, progress: TrainingCursor, bar, checkpoint: RunCheckpoint | None) -> None:
        """The epochs of `stage` from `progress.stage_epoch` up to `epochs` or until patience runs
        out, appended to the history; a selectable epoch that beats the best so far becomes
        `progress.best`. `checkpoint`, when given, is saved after every epoch."""
        while progress.stage_epoch < epochs and not progress.stopper.should_stop:
            start = time.perf_counter()
            lr = self.method.lr()
            train_loss = self.train_epoch()
            epoch = len(progress.history) + 1
            if not math.isfinite(train_loss):
                raise DivergedError(f"training loss became {train_loss} in epoch {epoch}; {self.method.divergence_hint()}",
                                    progress.history)
            val_metrics, _, val_probabilities = self.score("val", classes=self.multiclass)
            val_auc = val_metrics["auc"]
            summary = self.method.state_summary()
            if val_probabilities is not None:  # MedMNIST v2's all-label metrics, for the run page's curves
                classes, multilabel = self.data["val"].classes, self.dataset.multilabel
                summary["val_acc"] = medmnist_acc(classes, val_probabilities, multilabel)
                summary["val_class_auc"] = medmnist_auc(classes, val_probabilities, multilabel)
            selected_auc = summary["val_class_auc"] if self.config.select_on == "all_classes" else val_auc
            self.method.end_epoch(progress.stage_epoch, val_auc)
            progress.history.append({"epoch": epoch, "stage": stage.name, "train_loss": train_loss, "val_auc": val_auc,
                                     "lr": lr, **summary, "seconds": time.perf_counter() - start})
            progress.stage_epoch += 1
            progress.stopper.update(selected_auc)
            if stage.selectable and progress.selection.update(selected_auc):
                progress.best = self.snapshot(epoch, stage.name)
            if checkpoint is not None:
                checkpoint.save(self.checkpoint_state(progress))
            if self.on_epoch is not None:
                self.on_epoch(epoch, selected_auc)
            bar.update()
            bar.set_postfix(stage=stage.name, loss=f"{train_loss:.4f}", val_auc=f"{selected_auc:.4f}",
                            best=f"{progress.selection.best:.4f}")

    def resume(self, checkpoint: RunCheckpoint | None) -> tuple[TrainingCursor, dict | None]:
        """The progress to start from and the checkpoint's state to load: a new run's, or the
        checkpoint's when it holds one of this run."""
        saved = checkpoint.load() if checkpoint is not None else None
        if saved is None:
            return TrainingCursor(EarlyStopping(0), EarlyStopping(self.config.patience)), None
        print(f"resuming {checkpoint.path.stem} after epoch {len(saved['progress']['history'])} "
              f"from {checkpoint.path}", file=sys.stderr)
        return TrainingCursor.from_state(saved["progress"]), saved

    def fit(self, checkpoint: RunCheckpoint | None = None) -> FitResult:
        """Train the method's stages with early stopping on the validation AUC `config.select_on` names
        (the critical class's, or every label's); returns history (each entry with
        its stage and the method's state summary), the selected epoch and stage, val/test results,
        and the epoch a checkpoint resumed the run from (None: trained from the start).

        The test split is predicted once, after training, with the selected checkpoint. Its
        `operating_points` are thresholds chosen on validation alone, with the validation and test
        TPR and FPR at them; `calibration` (val and test) is there when the method's score is a
        probability logit (`Method.score_is_probability_logit`), else None."""
        config = self.config
        progress, saved = self.resume(checkpoint)
        resumed_from_epoch = len(progress.history) if saved is not None else None
        stages = list(zip(self.method.stages(), self.stage_epochs))
        with tqdm(total=config.epochs, initial=len(progress.history), desc=f"{config.dataset}/{config.method}",
                  unit="epoch", disable=not self.progress, file=sys.stderr, dynamic_ncols=True) as bar:
            while progress.stage < len(stages):
                stage, epochs = stages[progress.stage]
                self.begin_stage(stage, epochs)
                if saved is not None:  # taken within this stage, whose optimizer exists now
                    self.load_checkpoint_state(saved, checkpoint.path)
                    saved = None
                self.train_stage(stage, epochs, progress, bar, checkpoint)
                progress.next_stage(config.patience)
        best = progress.best
        if best is None:
            raise DivergedError("validation AUC was never finite: the model's outputs are NaN or infinite",
                                progress.history)
        last = None
        if self.multiclass and best["epoch"] != len(progress.history):
            last = self.class_results(self.score("val", classes=True)[2], self.score("test", classes=True)[2],
                                      with_confusion=False)
        self.restore(best)
        val_metrics, val_scores, val_probabilities = self.score("val", classes=self.multiclass)
        test_metrics, test_scores, test_probabilities = self.score("test", classes=self.multiclass)
        val_y, test_y = self.data["val"].y_numpy, self.data["test"].y_numpy
        classes = {}
        if self.multiclass:
            selected = self.class_results(val_probabilities, test_probabilities)
            last = selected if last is None else last
            classes = {"multiclass": {**selected, "last_epoch": {"epoch": len(progress.history),
                                                                 **{key: last[key] for key in ("val", "test")}}}}
        return FitResult(
            history=progress.history,
            best_epoch=best["epoch"],
            best_stage=best["stage"],
            stopped_early=len(progress.history) < config.epochs,
            resumed_from_epoch=resumed_from_epoch,
            val=val_metrics,
            test=test_metrics,
            operating_points=operating_points(val_y, val_scores, test_y, test_scores),
            calibration={"val": calibration(val_y, val_scores), "test": calibration(test_y, test_scores)}
            if self.method.score_is_probability_logit else None,
            test_scores={"y_true": test_y.tolist(), "y_score": test_scores.tolist()},
            **classes,
            **self.method.report({"val": (val_y, val_scores), "test": (test_y, test_scores)}),
        )

    @property
    def multiclass(self) -> bool:
        """Whether the run trains on class labels (`--task multiclass`)."""
        return self.dataset.num_classes is not None

    def class_results(self, val_probabilities: np.ndarray, test_probabilities: np.ndarray,
                      with_confusion: bool = True) -> dict:
        """What MedMNIST v2 reports (ACC, AUC) with balanced accuracy and per-class recall on val and
        test, on long-tailed data each split's many-/medium-/few-shot group accuracies
        (`shot_groups`), and, `with_confusion`, the test confusion matrix (multi-class data), from
        class probabilities."""
        results = {split: class_metrics(self.data[split].classes, probabilities, self.dataset.multilabel)
                   for split, probabilities in (("val", val_probabilities), ("test", test_probabilities))}
        if self.dataset.shot_thresholds is not None:
            groups = shot_groups(self.dataset.train.class_counts(), self.dataset.shot_thresholds)
            for split in ("val", "test"):
                results[split]["groups"] = group_accuracies(results[split]["recall"], groups)
        if with_confusion:
            results["confusion_matrix"] = (None if self.dataset.multilabel
                                           else confusion(self.data["test"].classes, test_probabilities))
        return results
