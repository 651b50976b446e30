"""From a config to what a run trains: the recipe's defaults filled in and every name checked
against its registry (before any data is loaded), then the dataset."""
from __future__ import annotations

import dataclasses

from benchmarks.core.config import BATCH_SIZE, MODEL, RunConfig, check_values
from benchmarks.core.errors import CritBenchError, UnknownParameter
from benchmarks.engine.augment import create_augmentation
from benchmarks.engine.device import precision_choice
from benchmarks.methods import canonical_name, get_method, resolve_params
from benchmarks.methods.sampling import SAMPLERS
from datasets import BinaryDataset, create_dataset, get_dataset_entry, list_datasets
from models3d import check_backbone


def resolve_config(config: RunConfig) -> RunConfig:
    """Fill every default (model, batch size, size, hyperparameters) and validate, so the record is
    complete. The model and batch size are the user's, else the method preset's, else the recipe's.
    The precision is decided here, once, from `amp` and the device (`device.precision_choice`), and
    enters the run's identity. A run resolves its config once, where it is made (a command, a
    suite's plan, a search's trial); `run_benchmark` takes it resolved.

    The method gets its canonical name (`canonical_name`: one training, one name and one run id).
    `params` may mix dataset and method keys (one `--param` flag); the dataset's keys are moved to
    `dataset_params` here, the only place they are told apart."""
    check_values(config)
    entry = get_dataset_entry(config.dataset)
    if config.sampler not in SAMPLERS:
        raise CritBenchError(f"unknown --sampler {config.sampler!r}; valid: {', '.join(SAMPLERS)}")
    create_augmentation(config.augment, entry.dims)  # validates the name
    to_data, method_values = split_params(config, entry)
    dataset_params = entry.validate_params({**config.dataset_params, **to_data})  # e.g. an unknown critical class,
    # before any data is read
    if config.task == "multiclass" and entry.class_labels is None:
        raise CritBenchError(f"dataset {config.dataset} has no class labels beyond its binary task; --task multiclass "
                             f"needs one that has: {', '.join(multiclass_datasets())}")
    method = canonical_name(config.method, method_values)
    variant = get_method(method).multiclass_variant
    if config.task == "multiclass" and variant and "+" not in method:  # alm+<base> has no multi-class form
        method = variant  # `--method alm --task multiclass` trains alm_ce: one training, one name
    method_class = get_method(method)
    if entry.preset in method_class.presets and "preset" not in method_values:
        method_values["preset"] = entry.preset  # the dataset's protocol (long-tailed CIFAR: Cao et al.'s recipe)
    try:
        params = resolve_params(method, method_values)
    except UnknownParameter as error:  # a --param is either the method's or the dataset's: name both
        raise UnknownParameter(f"{error} for method {method}, and "
                               f"{', '.join(sorted(entry.params)) or 'none'} for dataset {config.dataset}") from None
    recipe = method_class.run_overrides(params)  # a preset's model and batch size
    reason = method_class.skip(dataclasses.replace(config, params=params))  # e.g. --compile with double
    # backward, or too few --epochs for its stages
    if reason:
        raise CritBenchError(reason)
    model = config.model or recipe.get("model", MODEL)
    check_backbone(model, config.stem, config.width, entry.dims)
    resolved = dataclasses.replace(
        config,
        method=method,
        model=model,
        batch_size=config.batch_size or recipe.get("batch_size") or BATCH_SIZE[entry.dims],
        size=entry.check_size(config.size),
        imbalance=default_imbalance(config.imbalance, entry),
        augment=None if config.augment == (entry.augment or "none") else config.augment,  # the dataset's own:
        # one training, one run id, as when left out (the record's dataset.augment names it)
        patience=entry.patience if config.patience is None else config.patience,
        params=params,
        dataset_params=dataset_params,
    )
    return dataclasses.replace(resolved, precision=config.precision or precision_choice(resolved)[0])


def default_imbalance(imbalance: float | None, entry) -> float | None:
    """The ratio the data will have: the user's, else the dataset's default (CIFAR-10's 1:100), as a
    float, so `imbalance` left out and written out give one seed, one run id and one report column."""
    ratio = imbalance if imbalance is not None else entry.default_imbalance
    return None if ratio is None else float(ratio)


def split_params(config: RunConfig, entry) -> tuple[dict, dict]:
    """`config.params` split into the dataset's and the method's. A key only one of them declares
    goes to it; `data.KEY` and `method.KEY` name the owner. A key both declare (ALM's `rho`, the
    penalty growth, and long-tailed CIFAR's `rho`, the imbalance ratio) is refused unprefixed on a
    config the user wrote, and stays the method's on a resolved config, whose `params` are all its
    method's (a tuning trial resolves its config again: the data must not change under it)."""
    try:
        method_keys = set(resolve_params(canonical_name(config.method, {}), {}))
    except CritBenchError:  # an unknown method: refused below with its list
        method_keys = set()
    to_data, method_values = {}, {}
    for key, value in config.params.items():
        owner, dot, name = key.partition(".")
        if dot and owner in ("data", "method"):
            owners = {"data": (entry.params, f"dataset {config.dataset}"), "method": (method_keys, f"method {config.method}")}
            (declared, named), (elsewhere, other) = owners.pop(owner), owners.popitem()[1]
            if name not in declared and name in elsewhere:  # the prefix names the other owner: say whose it is
                raise CritBenchError(f"--param {key}: {name} is {other}'s parameter, not {named}'s; write "
                                     f"--param {name}={value}")
            (to_data if owner == "data" else method_values)[name] = value
        elif key in entry.params and key in method_keys and not is_resolved(config):
            raise CritBenchError(f"--param {key} is both a parameter of method {config.method} and of dataset "
                                 f"{config.dataset}; say which: --param method.{key}={value} or --param data.{key}={value}")
        elif key in entry.params and key not in method_keys:
            to_data[key] = value
        else:
            method_values[key] = value
    return to_data, method_values


def multiclass_datasets() -> list[str]:
    """The registered datasets with class labels for --task multiclass."""
    return [name for name in list_datasets() if get_dataset_entry(name).class_labels is not None]


def is_resolved(config: RunConfig) -> bool:
    """Whether `config` went through resolve_config: the defaults it fills (model, batch size,
    patience, precision) are all set."""
    return None not in (config.model, config.batch_size, config.patience, config.precision)


def load_dataset(config: RunConfig) -> BinaryDataset:
    """The dataset of a resolved config, with its train-only imbalance and subsetting applied, in the
    config's task framing (`BinaryDataset.framed`)."""
    return create_dataset(config.dataset, size=config.size, data_dir=config.data_dir, seed=config.seed,
                          imbalance=config.imbalance, max_train_samples=config.max_train_samples,
                          params=config.dataset_params, task=config.task)
