"""The method registry: `@register_method`, `list_methods()`, `create_method()`."""
from __future__ import annotations

import dataclasses
from functools import lru_cache

import torch

from benchmarks.core.errors import CritBenchError
from benchmarks.methods.losses import get_loss
from benchmarks.methods.base import Method, TrainContext
from benchmarks.core.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")


def register_method(name: str):
    """Class decorator registering a Method subclass under `name`, which becomes its `cls.name`."""
    def add(cls: type[Method]) -> type[Method]:
        cls.name = name
        return METHODS.register(name)(cls)
    return add


def list_methods() -> list[str]:
    return METHODS.names()


@lru_cache(maxsize=None)
def _wrapped(cls: type[Method], base: str) -> type[Method]:
    """The wrapping method `cls` with `base` as its default base loss (one class per pair)."""
    return type(f"{cls.__name__}_{base}", (cls,), {"name": f"{cls.name}+{base}", "default_base": base,
                                                   "description": f"{cls.name} over base loss {base}"})


def get_method(name: str) -> type[Method]:
    """The method class of `name`; `wrapper+base` (e.g. `alm+s_fl`) wraps base loss `base`."""
    wrapper, sep, base = name.partition("+")
    if not sep:
        return METHODS.get(name)
    cls = METHODS.get(wrapper)
    if not cls.wraps_base:
        wrappers = [n for n in METHODS.names() if METHODS.get(n).wraps_base]
        raise CritBenchError(f"method {wrapper!r} does not wrap a base loss; NAME+BASE works for: {', '.join(wrappers)}")
    return _wrapped(cls, get_loss(base, asked_by=name).name)


def canonical_name(name: str, values: dict) -> str:
    """The one name of what method `name` trains with the user's `values`, so one training has one
    run id and one report row: `alm --param base=s_fl` is `alm+s_fl`, `alm+bce` is `alm`. A name
    that fixes the base loss (`alm+s_fl`, `focal`) refuses a `base` parameter that contradicts it."""
    cls = get_method(name)
    implied = cls.default_base
    if implied is None:  # the method has no base loss
        return name
    base = str(values.get("base", implied))
    wrapper, sep, _ = name.partition("+")
    fixed = sep or not cls.wraps_base  # the name itself says which base loss
    if fixed and base != implied:
        raise CritBenchError(f"--method {name} trains base loss {implied}, but --param base={base} asks for {base}; "
                             f"give the base loss once, e.g. --method {wrapper + '+' + base if sep else base}")
    if not cls.wraps_base:
        return name
    return wrapper if base == METHODS.get(wrapper).default_base else f"{wrapper}+{base}"


def resolve_params(name: str, values: dict) -> dict:
    """Every hyperparameter of method `name`, defaults filled in, as a plain dict."""
    return dataclasses.asdict(get_method(name).build_params(values))


def create_method(name: str, model: torch.nn.Module, values: dict, ctx: TrainContext) -> Method:
    cls = get_method(name)
    return cls(model, cls.build_params(values), ctx)
