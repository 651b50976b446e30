"""The method registry: `@register_method`, `list_methods()`, `create_method()`."""
from __future__ import annotations

import dataclasses

import torch

from benchmarks.methods.base import Method, TrainContext, parse_params
from benchmarks.registry import Registry

METHODS: Registry[type[Method]] = Registry("method")


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator registering a Method subclass under its `name`."""
    return METHODS.register(cls.name)(cls)


def list_methods() -> list[str]:
    return METHODS.names()


def get_method(name: str) -> type[Method]:
    return METHODS.get(name)


def resolve_params(name: str, values: dict) -> dict:
    """Every hyperparameter of method `name`, defaults filled in, as a plain dict."""
    return dataclasses.asdict(parse_params(get_method(name).Params, values))


def create_method(name: str, model: torch.nn.Module, values: dict, ctx: TrainContext) -> Method:
    cls = get_method(name)
    return cls(model, parse_params(cls.Params, values), ctx)
