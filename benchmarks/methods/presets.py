"""Published hyperparameters as named presets (`--param preset=NAME`), each with its source.

Values are the sources' own, not tuned by CritBench. Source for every value below:
../shared/reference/recipes.md (development workspace), which cites the papers and repositories.
"""
from __future__ import annotations

from benchmarks.core.errors import CritBenchError

# ALM paper (Sangalli et al., NeurIPS 2021; repo salusanga/alm-dnn README), CIFAR-10/100 at 1:100
# and 1:200. Column order of every tuple below follows ALM_SETTINGS.
ALM_SETTINGS = ("c10_1to100", "c10_1to200", "c100_1to100", "c100_1to200")
# Training recipe: ResNet10, batch 64, SGD momentum 0.9, weight decay 2e-4, lr 1e-2 (CIFAR-10) /
# 1e-3 (CIFAR-100), kept constant (alm-dnn `lr_decrease = 0`).
ALM_RECIPE = {
    "c10": {"optimizer": "sgd", "lr": 1e-2, "weight_decay": 2e-4, "lr_decay": False},
    "c100": {"optimizer": "sgd", "lr": 1e-3, "weight_decay": 2e-4, "lr_decay": False},
}
ALM_RUN = {"model": "resnet10", "batch_size": 64}  # run settings of the recipe (RunConfig fields)
# Base-loss hyperparameters the paper used per setting.
ALM_BASE = {
    "s_lm": ("margin", (0.5, 0.5, 0.5, 2.0)),
    "s_fl": ("gamma", (0.5, 0.5, 2.0, 2.0)),
    "a_lm": ("margin", (0.5, 0.5, 2.0, 4.0)),
    "a_fl": ("gamma", (1.0, 0.5, 2.0, 2.0)),
    "cb_bce": ("beta", (0.99, 0.99, 0.99, 0.99)),
    "wbce": ("c", (1 / 3, 1 / 3, 1.0, 1.0)),
}
# ALM configuration per base loss: (k, delta) with mu0 = 10^-k (config ALM_1k).
ALM_CONFIGS = {
    "bce": ((7, 0.25), (5, 0.5), (3, 0.1), (3, 0.1)),
    "s_lm": ((6, 0.1), (9, 0.0), (3, 1.0), (4, 0.5)),
    "s_fl": ((6, 0.5), (7, 0.0), (5, 0.25), (3, 0.1)),
    "a_lm": ((7, 0.25), (9, 0.0), (3, 0.5), (3, 0.5)),
    "a_fl": ((5, 0.25), (7, 1.0), (4, 0.1), (3, 0.25)),
    "cb_bce": ((4, 0.5), (4, 0.1), (2, 0.25), (3, 1.0)),
    "wbce": ((7, 1.0), (7, 0.1), (7, 1.0), (6, 1.0)),
    "ldam": ((6, 1.0), (8, 0.25), (7, 0.5), (3, 0.25)),
}

# PESG settings of the DAM-on-MedMNIST study (AUCM + PESG, ResNet18): the study's values, chosen
# by its authors (on test), not tuned by CritBench. Epoch decay for Pneumonia is not reported:
# libauc's default stays.
_NODULE = {"momentum": 0.7, "margin": 1.0, "epoch_decay": 2e-3, "lr": 0.1, "weight_decay": 1e-4}
AUCM_PRESETS = {
    "pneumoniamnist": {"momentum": 0.8, "margin": 1.0, "lr": 0.1, "weight_decay": 1e-3},
    "nodulemnist3d": _NODULE,
    "vesselmnist3d": _NODULE,
    "adrenalmnist3d": {**_NODULE, "epoch_decay": 0.05},
    "synapsemnist3d": _NODULE,  # "Synapse as Nodule"
}


def loss_preset(name: str, base: str, alm: bool) -> dict:
    """Hyperparameters of preset `name` for base loss `base`, with ALM's mu0 and delta if `alm`."""
    if name not in ALM_SETTINGS:
        raise CritBenchError(f"unknown preset {name!r} for loss methods; valid: {', '.join(ALM_SETTINGS)}")
    column = ALM_SETTINGS.index(name)
    values = dict(ALM_RECIPE[name.split("_")[0]])
    if base in ALM_BASE:
        key, row = ALM_BASE[base]
        values[key] = row[column]
    if base == "cb_bce":  # alm-dnn's ClassBalancedBCE uses the raw effective-number weights
        values["normalize"] = False
    if alm:
        if base not in ALM_CONFIGS:
            raise CritBenchError(f"the ALM paper has no {name} configuration for base {base!r}; "
                                 f"it has: {', '.join(ALM_CONFIGS)}")
        k, delta = ALM_CONFIGS[base][column]
        values.update(mu0=10.0 ** -k, delta=delta)
    return values


def aucm_preset(name: str) -> dict:
    """PESG hyperparameters of the DAM-on-MedMNIST study for dataset `name`."""
    if name not in AUCM_PRESETS:
        raise CritBenchError(f"unknown preset {name!r} for AUCM; valid: {', '.join(AUCM_PRESETS)}")
    return dict(AUCM_PRESETS[name])


# Long-tailed CIFAR (Cao et al., NeurIPS 2019), kaidic/LDAM-DRW cifar_train.py: `resnet32`, `--batch-size
# 128`, `torch.optim.SGD(..., args.lr, momentum=args.momentum, weight_decay=args.weight_decay)` with lr 0.1,
# momentum 0.9, weight decay 2e-4, `--epochs 200`, and `adjust_learning_rate`: linear warm-up over the first
# 5 epochs, lr x0.01 after epoch 160 and x0.0001 after 180 (the multi-class methods' schedule "cao").
CLASS_PRESETS = {
    "cifar_lt": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 2e-4, "schedule": "cao",
                 "warmup_epochs": 5},
}
CLASS_RUN = {"cifar_lt": {"model": "resnet32", "batch_size": 128}}  # run settings of the recipe


def class_preset(name: str) -> dict:
    """Optimizer and schedule of multi-class preset `name`."""
    if name not in CLASS_PRESETS:
        raise CritBenchError(f"unknown preset {name!r} for multi-class methods; valid: {', '.join(CLASS_PRESETS)}")
    return dict(CLASS_PRESETS[name])
