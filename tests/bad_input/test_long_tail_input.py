"""`python -m benchmarks.run` on long-tailed CIFAR with --param values its adapter cannot train:
each refused in one line naming the value and the valid range, before any image is read (a rho
that left a class without images failed after loading, as "0 positives", or trained an empty class);
CIFAR-100 that is not there says how to get it."""
from __future__ import annotations

from urllib.error import URLError

import pytest

from benchmarks.run import main
from tests.bad_input.conftest import assert_refused, invoke

TINY = ["--task", "multiclass", "--method", "ce", "--epochs", "1", "--width", "0.125", "--device", "cpu", "--quiet"]

# (dataset, --param, what the one line names)
REFUSED = [
    ("cifar10_lt", "rho=1e9", "cifar10_lt: --param rho=1e+09 leaves 6 of 10 classes no training image (the first: 4 "
                              "'deer'); valid: 1 <= rho <= 5000"),
    ("cifar10_lt", "rho=5001", "cifar10_lt: --param rho=5001 leaves 1 of 10 classes no training image (the first: 9 "
                               "'truck'); valid: 1 <= rho <= 5000"),
    ("cifar100_lt", "rho=501", "cifar100_lt: --param rho=501 leaves 1 of 100 classes no training image (the first: 99 "
                               "'worm'); valid: 1 <= rho <= 500"),
    ("cifar10_lt", "rho=abc", "--param rho=abc is invalid; valid: a number >= 1 (1: balanced)"),
    ("cifar10_lt", "val_per_class=5000", "cifar10_lt: each class has 5000 train images, too few to hold out --param "
                                         "val_per_class=5000; valid: 1 <= val_per_class <= 4999"),
    ("cifar100_lt", "val_per_class=500", "cifar100_lt: each class has 500 train images, too few to hold out --param "
                                         "val_per_class=500; valid: 1 <= val_per_class <= 499"),
    ("cifar10_lt", "val_per_class=x", "--param val_per_class=x is invalid; valid: val_per_class >= 1 (an integer)"),
    ("cifar10_lt", "val_per_class=-3", "--param val_per_class=-3 is invalid; valid: val_per_class >= 1 (an integer)"),
    ("cifar10_lt", "subset_seed=x", "--param subset_seed=x is invalid; valid: subset_seed in [0, 2**32) (an integer)"),
    ("cifar10_lt", "subset_seed=-1", "--param subset_seed=-1 is invalid; valid: subset_seed in [0, 2**32) (an integer)"),
]


@pytest.mark.parametrize("dataset,param,names", REFUSED, ids=[case[1] for case in REFUSED])
def test_a_long_tail_param_is_refused_before_the_data_loads(dataset, param, names, tmp_path, capsys, trained,
                                                            monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the refusal")

    monkeypatch.setattr("benchmarks.engine.pipeline.load_dataset", no_data)
    argv = ["--dataset", dataset, "--param", param, *TINY, "--data-dir", tmp_path, "--out", tmp_path / "runs"]
    assert_refused(invoke(main, argv, capsys), names)
    assert trained == []


def test_cifar100_that_is_not_there_says_how_to_get_it(tmp_path, capsys, trained, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("Name or service not known")

    monkeypatch.setattr("datasets.cifar.CIFAR100", type("CIFAR100", (), {"__init__": offline}))
    argv = ["--dataset", "cifar100_lt", *TINY, "--data-dir", tmp_path / "data", "--out", tmp_path / "runs"]
    outcome = invoke(main, argv, capsys)
    assert_refused(outcome, f"cifar100 is not in {tmp_path / 'data'} and torchvision's download failed")
    assert "CIFAR100('DIR', download=True)" in outcome.err and "DIR/cifar100-jpg or DIR/cifar100" in outcome.err
    assert trained == []
