"""`python -m benchmarks.run` with a --sampler that a method drawing LibAUC's DualSampler batches
would not apply (sopa, sopa_s, sota_s, soap, pdsca, aucm, aucm_ce): refused before the data loads
in one line naming the method's rates and what to do (it crashed in the first epoch, after the
data loaded, and for sopa suggested a --param that crashed the next stage); and the LibAUC
methods' pre-training params named with their value when refused."""
from __future__ import annotations

import pytest

from benchmarks.run import main
from tests.bad_input.conftest import assert_refused, invoke

TINY = ["--dataset", "synthetic2d", "--epochs", "2", "--size", "8", "--width", "0.125", "--device", "cpu", "--quiet"]
NO_ZERO = "drop --sampler (its sampling_rate must stay in (0, 1))"

# (method, extra flags, what the one line names)
REFUSED = [
    ("sopa", ["--sampler", "weighted"], "--method sopa composes its batches itself (LibAUC's DualSampler, "
                                        f"sampling_rate=0.5), which --sampler weighted would not change: {NO_ZERO}"),
    ("sopa", ["--sampler", "oversample", "--param", "pretrain_sampling_rate=0"],
     f"(LibAUC's DualSampler, sampling_rate=0.5), which --sampler oversample would not change: {NO_ZERO}"),
    ("sopa_s", ["--sampler", "undersample"], "--method sopa_s composes its batches itself (LibAUC's DualSampler, "
                                             "pretrain_sampling_rate=0.5, sampling_rate=0.5)"),
    ("sota_s", ["--sampler", "weighted"], f"sampling_rate=0.5), which --sampler weighted would not change: {NO_ZERO}"),
    ("soap", ["--sampler", "weighted", "--param", "pretrain_sampling_rate=0"],
     f"--method soap composes its batches itself (LibAUC's DualSampler, sampling_rate=0.5), which --sampler "
     f"weighted would not change: {NO_ZERO}"),
    ("pdsca", ["--sampler", "weighted"], f"--method pdsca composes its batches itself (LibAUC's DualSampler, "
                                         f"sampling_rate=0.2), which --sampler weighted would not change: {NO_ZERO}"),
    ("aucm", ["--sampler", "weighted"], "--method aucm composes its batches itself (LibAUC's DualSampler, "
                                        "sampling_rate=0.2), which --sampler weighted would not change: pass --param "
                                        "sampling_rate=0 to train with --sampler weighted, or drop --sampler"),
    ("aucm_ce", ["--sampler", "oversample"], "(LibAUC's DualSampler, pretrain_sampling_rate=0.5, sampling_rate=0.2), "
                                             "which --sampler oversample would not change: pass --param "
                                             "pretrain_sampling_rate=0 --param sampling_rate=0 to train with"),
    ("sopa", ["--param", "pretrain_fraction=1"], "pretrain_fraction must be in (0, 1) (the share of --epochs "
                                                 "pre-training on BCE), got 1.0"),
    ("soap", ["--param", "pretrain_lr=0"], "pretrain_lr must be positive, got 0.0"),
    ("sota_s", ["--param", "pretrain_weight_decay=-1"], "pretrain_weight_decay must be >= 0, got -1.0"),
]


@pytest.mark.parametrize("method,flags,names", REFUSED, ids=[f"{case[0]}-{index}" for index, case in enumerate(REFUSED)])
def test_a_sampler_the_method_would_not_apply_is_refused_before_the_data_loads(method, flags, names, tmp_path, capsys,
                                                                              trained, monkeypatch):
    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the refusal")

    monkeypatch.setattr("benchmarks.engine.pipeline.load_dataset", no_data)
    argv = ["--method", method, *flags, *TINY, "--out", tmp_path / "runs"]
    assert_refused(invoke(main, argv, capsys), names)
    assert trained == [] and not (tmp_path / "runs").exists()


def test_with_its_rates_at_0_aucm_trains_with_the_sampler(tmp_path, capsys, trained):
    argv = ["--method", "aucm", "--sampler", "weighted", "--param", "sampling_rate=0", *TINY, "--out", tmp_path]
    outcome = invoke(main, argv, capsys)
    assert outcome.code == 0 and len(trained) == 1 and trained[0].sampler == "weighted", outcome.err
