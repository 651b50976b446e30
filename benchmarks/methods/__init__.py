"""Training methods. Importing this package registers every method."""
from benchmarks.methods.base import Method, MethodParams, Stage, TrainContext
from benchmarks.methods.registry import (canonical_name, create_method, get_method, list_methods, register_method,
                                         resolve_params)
from benchmarks.methods import alm, aucm, loss_methods, rate_constrained  # noqa: F401  (registration)
from benchmarks.methods import autobalance  # noqa: F401  (registration)
from benchmarks.methods import libauc_pauc  # noqa: F401  (registration)
from benchmarks.methods import multiclass  # noqa: F401  (registration)

__all__ = [
    "Method", "MethodParams", "Stage", "TrainContext", "canonical_name", "create_method", "get_method", "list_methods",
    "register_method", "resolve_params",
]
