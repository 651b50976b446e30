"""Resolving a config: recipe defaults filled in, a method preset's run settings, registry checks."""
import collections
import dataclasses
import re
import sys

import pytest
import torch

from benchmarks import leaderboard, run
from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.identity import run_id
from benchmarks.core.machine import BF16_CPU_FLAGS, base_environment
from benchmarks.engine import device as device_module
from benchmarks.engine.device import check_precision_here, precision_reason, resolve_device
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine import resolve
from benchmarks.engine.resolve import resolve_config
from benchmarks.engine.trainer import Trainer
from benchmarks.sweep.suite import derive_seed
from datasets import create_dataset
from tests.conftest import TINY


def test_the_recipe_defaults_are_filled_in():
    config = resolve_config(RunConfig(dataset="synthetic3d", method="bce"))
    assert (config.model, config.batch_size, config.size) == ("resnet18", 32, 16)


def test_an_alm_paper_preset_brings_its_model_and_batch_size_unless_given():
    """The ALM paper's recipe (recipes.md: "Training: ResNet10, single logit, ... batch 64") is a whole
    recipe: `--param preset=c10_1to100` alone trains ResNet10 with batch 64."""
    preset = {"preset": "c10_1to100"}
    config = resolve_config(RunConfig(dataset="synthetic2d", method="alm", params=preset))
    assert (config.model, config.batch_size) == ("resnet10", 64)
    mine = resolve_config(RunConfig(dataset="synthetic2d", method="alm", params=preset, model="resnet34", batch_size=16))
    assert (mine.model, mine.batch_size) == ("resnet34", 16)


@pytest.mark.parametrize("change, message", [
    ({"model": "vgg"}, "unknown --model 'vgg'; valid: resnet10, resnet18, resnet32, resnet34"),
    ({"stem": "tiny"}, "unknown --stem 'tiny'"),
    ({"sampler": "smote"}, "unknown --sampler 'smote'"),
    ({"augment": "mixup"}, "unknown 2D augmentation 'mixup'"),
    ({"epochs": 0}, "--epochs must be >= 1, got 0"),
    ({"width": float("nan")}, "--width must be a positive finite number, got nan"),
    ({"patience": -1}, "--patience must be >= 0"),
    ({"device": "tpu"}, "unknown --device 'tpu'"),
])
def test_bad_values_are_refused_by_name(change, message):
    with pytest.raises(CritBenchError, match=message.replace("(", r"\(")):
        resolve_config(RunConfig(dataset="synthetic2d", method="bce", **change))


def test_a_local_leaderboard_refuses_a_missing_device_once_before_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    code = leaderboard.main(["--suite", "quick", "--device", "cuda", "--out", str(tmp_path), "--datasets", "synthetic2d"])
    err = capsys.readouterr().err
    assert code == 2 and "CUDA is not available" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("dataset, expected", [("pneumoniamnist", 0), ("vesselmnist3d", 0), ("synthetic2d", 0),
                                               ("cifar10", 30), ("cifar100", 30)])
def test_early_stopping_is_the_datasets_protocol_unless_given(dataset, expected):
    """MedMNIST v2 trains all 100 epochs and keeps the best validation checkpoint (recipes.md:
    "Model selection: best validation AUC (a deep copy)"), so no early stopping; CIFAR follows the
    ALM paper (alm-dnn main.py: `"--patience_early_stopping", type=int, default=30`)."""
    assert resolve_config(RunConfig(dataset=dataset, method="bce")).patience == expected
    assert resolve_config(RunConfig(dataset=dataset, method="bce", patience=5)).patience == 5


def test_the_precision_is_decided_once_and_is_part_of_the_run_identity(monkeypatch):
    """The same config trained in fp32 (a CPU without native bf16, or --no-amp) and under bf16
    autocast (CUDA, an AMX CPU) are two runs with two ids; a resolved config keeps its precision
    wherever it is re-resolved (a worker of another machine class trains what was planned)."""
    config = RunConfig(dataset="synthetic2d", method="bce", device="cpu", size=28)
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: True)
    bf16 = resolve_config(config)
    assert bf16.precision == "bf16-autocast" and resolve_config(dataclasses.replace(config, amp=False)).precision == "fp32"
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: False)
    fp32 = resolve_config(config)
    assert fp32.precision == "fp32" and run_id(fp32, "m") != run_id(bf16, "m")
    assert resolve_config(bf16).precision == "bf16-autocast"  # planned elsewhere: kept
    assert resolve_config(dataclasses.replace(config, device="cuda")).precision == "bf16-autocast"
    trained = Trainer(resolve_config(bf16), create_dataset("synthetic2d", size=8), resolve_device("cpu"), progress=False)
    assert trained.precision == "bf16-autocast"  # honoured although this "CPU" has no bf16 units
    with pytest.raises(CritBenchError, match="unknown precision 'fp16'"):
        resolve_config(dataclasses.replace(config, precision="fp16"))


@pytest.mark.parametrize("flags,expected", [
    (["amx_bf16", "avx512_bf16"], "bf16-autocast"),  # Intel Sapphire Rapids and later
    (["avx512_bf16"], "bf16-autocast"),  # AMD EPYC Zen 4 and later: AVX512_BF16, no AMX
    (["avx_ne_convert"], "bf16-autocast"),  # Intel Sierra Forest
    ([], "fp32"),  # emulated bf16 would be slower than fp32
])
def test_bf16_on_every_cpu_with_native_bf16(flags, expected, monkeypatch):
    """Issue 15: a CPU with AVX512_BF16 and no AMX trains in bf16 autocast (+ channels-last) like an
    AMX CPU; the flags found are in every record's env.cpu_bf16_flags."""
    monkeypatch.setattr(device_module, "bf16_cpu_flags", lambda: flags)
    assert resolve_config(RunConfig(dataset="synthetic2d", method="bce", device="cpu", size=28)).precision == expected


def test_without_cpu_flags_torchs_amx_check_decides(monkeypatch):
    monkeypatch.setattr(device_module, "bf16_cpu_flags", lambda: None)
    for amx in (True, False):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
        assert device_module.cpu_has_bf16_units() is amx


def test_every_record_names_the_bf16_flags_of_its_cpu():
    flags = base_environment()["cpu_bf16_flags"]
    assert flags is None or set(flags) <= set(BF16_CPU_FLAGS)


@pytest.mark.parametrize("dims, size, stem, side", [
    (2, 28, "medmnist", 4), (3, 28, "medmnist", 4), (3, 64, "medmnist", 8),  # the MedMNIST recipes: 28 -> 14 -> 7 -> 4
    (2, 28, "standard", 1), (3, 28, "standard", 1),  # 28 -> 14 -> 7 (max-pool) -> 4 -> 2 -> 1
    (2, 8, "medmnist", 1),  # the tests' tiny config: 8 -> 4 -> 2 -> 1
])
def test_smallest_conv_side_is_traced_from_the_backbone(dims, size, stem, side):
    assert device_module.smallest_conv_side(dims, size, "resnet18", stem, 0.125) == side


def test_cpu_bf16_only_where_every_convolution_sees_a_side_of_3(monkeypatch):
    """oneDNN's bf16 weight gradients are garbage for tiny feature maps on AVX512_BF16 CPUs
    (docs/speed.md): on a CPU, such configs train in fp32; the recipes (28 px, MedMNIST stem)
    keep bf16, and CUDA is not affected."""
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: True)

    def precision(**fields):
        return resolve_config(RunConfig(dataset="synthetic3d", method="bce", width=0.125, **fields)).precision

    assert precision(size=28, device="cpu") == "bf16-autocast"
    assert precision(size=28, stem="standard", device="cpu") == "fp32"
    assert precision(size=8, device="cpu") == "fp32"
    assert precision(size=8, device="cuda") == "bf16-autocast"
    cpu = resolve_config(RunConfig(dataset="synthetic3d", method="bce", width=0.125, size=28, device="cpu"))
    for side, expected in ((device_module.CPU_BF16_MIN_SIDE, "bf16-autocast"), (device_module.CPU_BF16_MIN_SIDE - 1, "fp32")):
        monkeypatch.setattr(device_module, "smallest_conv_side", lambda *backbone: side)
        assert device_module.precision_choice(cpu)[0] == expected


def test_cpu_bf16_in_2d_only_where_every_convolution_after_the_stem_reads_16_channels(monkeypatch):
    """oneDNN's bf16 backward of a 2D 1x1 stride-2 convolution with 8-15 input channels crashes the
    process at odd batch sizes with two threads (device.CPU_BF16_MIN_CHANNELS): MONAI ResNets below
    width 0.25 train in fp32 on a CPU; 3D, ResNet-32 at width 1 and CUDA keep bf16."""
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: True)

    def precision(dataset="synthetic2d", **fields):
        return resolve_config(RunConfig(dataset=dataset, method="bce", size=28, **{"device": "cpu", **fields})).precision

    assert device_module.narrowest_conv_channels(2, "resnet18", "medmnist", 0.125) == 8
    assert precision(width=0.125) == "fp32" and precision(width=0.25) == "bf16-autocast"
    assert precision(width=0.1875) == "fp32"  # 12 channels
    assert precision(dataset="synthetic3d", width=0.125) == "bf16-autocast"
    assert precision(model="resnet32") == "bf16-autocast" and precision(model="resnet32", width=0.5) == "fp32"
    assert precision(width=0.125, device="cuda") == "bf16-autocast"


@pytest.mark.parametrize("flags, fields, expected", [
    (["avx512_bf16"], dict(size=28), ("bf16-autocast", r"CPU with native bf16 \(avx512_bf16\)")),
    (["avx512_bf16"], dict(size=28, width=0.125), ("fp32", r"a 2D convolution reads 8 channels, below CPU_BF16_MIN_CHANNELS=16")),
    (["avx512_bf16"], dict(size=8), ("fp32", r"a convolution sees a 1-px feature map, below CPU_BF16_MIN_SIDE=3")),
    ([], dict(size=28), ("fp32", r"this CPU has no native bf16 \(none of amx_bf16, avx512_bf16, avx_ne_convert")),
    (["amx_bf16"], dict(size=28, amp=False), ("fp32", r"amp off \(--no-amp\)")),
    ([], dict(size=8, device="cuda"), ("bf16-autocast", r"CUDA")),
])
def test_every_record_says_why_it_trained_in_its_precision(flags, fields, expected, monkeypatch):
    """Issue 15: where a CPU keeps fp32, the record says why (env.precision_reason)."""
    monkeypatch.setattr(device_module, "bf16_cpu_flags", lambda: flags)
    config = resolve_config(RunConfig(dataset="synthetic2d", method="bce", **{"device": "cpu", "width": 0.25, **fields}))
    assert config.precision == expected[0] and re.fullmatch(expected[1] + ".*", precision_reason(config))


def test_a_precision_given_in_the_config_is_reported_as_given(monkeypatch):
    monkeypatch.setattr(device_module, "bf16_cpu_flags", lambda: [])
    config = resolve_config(RunConfig(dataset="synthetic2d", method="bce", device="cpu", size=28, precision="bf16-autocast"))
    assert precision_reason(config).startswith("given in the config, not chosen on this machine (this CPU has no native bf16")


def test_the_reason_is_in_the_record(monkeypatch):
    monkeypatch.setattr(device_module, "bf16_cpu_flags", lambda: [])
    config = resolve_config(RunConfig(dataset="synthetic2d", method="bce", device="cpu", size=8, width=0.125, epochs=1))
    record = run_benchmark(config, progress=False)
    assert record["env"]["precision"] == "fp32" and record["env"]["precision_reason"].startswith("this CPU has no native bf16")


def test_one_run_resolves_its_config_and_its_device_once(tmp_path, monkeypatch):
    """`python -m benchmarks.run`: the command resolves the config, the pipeline the device, once
    each; `run_benchmark` and the trainer take them resolved. Every module holding either function
    gets the counting one, so a second call from anywhere is seen."""
    calls = collections.Counter()

    def counted(function):
        def call(*args, **kwargs):
            calls[function.__name__] += 1
            return function(*args, **kwargs)
        return call

    functions = (resolve.resolve_config, device_module.resolve_device)
    for module in [module for name, module in sys.modules.items() if name.startswith("benchmarks")]:
        for function in functions:
            if getattr(module, function.__name__, None) is function:
                monkeypatch.setattr(module, function.__name__, counted(function))
    argv = ["--dataset", "synthetic2d", "--method", "alm", "--epochs", "1", "--width", "0.125", "--size", "8",
            "--device", "cpu", "--quiet", "--out", str(tmp_path)]
    assert run.main(argv) == 0
    assert calls == {"resolve_config": 1, "resolve_device": 1}


def test_run_benchmark_takes_a_resolved_config():
    with pytest.raises(ValueError, match="resolved config"):
        run_benchmark(RunConfig(dataset="synthetic2d", method="bce", **TINY), progress=False)


def test_a_bf16_config_made_on_a_gpu_machine_is_refused_on_a_cpu_where_bf16_trains_wrongly():
    """A suite's plan resolved where CUDA is (bf16) can run on a CPU-only worker: where oneDNN's bf16
    would train that backbone wrongly (a 1-px feature map at 8 px), the run is refused before any
    data loads, with what to do; a backbone that is safe in bf16 on a CPU passes."""
    planned = resolve_config(RunConfig(dataset="synthetic2d", method="bce", device="cuda", size=8, width=0.25, epochs=1))
    assert planned.precision == "bf16-autocast"
    landed = dataclasses.replace(planned, device="cpu")
    with pytest.raises(CritBenchError, match=r"trains in bf16 \(resolved on another machine.*CPU_BF16_MIN_SIDE=3.*--no-amp"):
        run_benchmark(landed, progress=False)
    safe = dataclasses.replace(resolve_config(RunConfig(dataset="synthetic2d", method="bce", device="cuda", size=28,
                                                        width=0.25)), device="cpu")
    check_precision_here(safe, torch.device("cpu"))  # no hazard: trains as planned


def test_a_key_both_the_method_and_the_dataset_declare_is_refused_unless_its_owner_is_named():
    """ALM's rho (penalty growth) and long-tailed CIFAR's rho (imbalance ratio): `--param rho=4`
    is refused with the two spellings that say which; `method.rho` / `data.rho` set each."""
    with pytest.raises(CritBenchError, match=r"--param rho is both a parameter of method alm and of dataset "
                                             r"cifar10_lt; say which: --param method.rho=4 or --param data.rho=4"):
        resolve_config(RunConfig(dataset="cifar10_lt", method="alm", params={"rho": 4}))
    config = resolve_config(RunConfig(dataset="cifar10_lt", method="alm", params={"method.rho": 4, "data.rho": 10}))
    assert config.params["rho"] == 4 and config.dataset_params["rho"] == 10


def test_resolving_a_resolved_config_again_changes_nothing():
    """A tuning trial resolves its base config again with the trial's values: ALM's default rho
    (2.0) in the resolved params must not become the long-tailed data's imbalance ratio."""
    once = resolve_config(RunConfig(dataset="cifar10_lt", method="alm"))
    assert once.params["rho"] == 2.0 and "rho" not in once.dataset_params
    assert resolve_config(once) == once
    trial = resolve_config(dataclasses.replace(once, params={**once.params, "mu0": 1e-4}))
    assert trial.dataset_params == once.dataset_params and trial.params["mu0"] == 1e-4


def test_the_datasets_default_imbalance_is_filled_in_so_left_out_and_written_out_are_one_run():
    """CIFAR-10 trains at 1:100 with `imbalance` left out (`datasets/loading.py`: `imbalance if
    imbalance is not None else entry.default_imbalance`); the resolved config says so, so a tune
    command without --imbalance gets the leaderboard's seeds and run ids (`derive_seed` and the
    identity hash `imbalance`)."""
    implicit = resolve_config(RunConfig(dataset="cifar10", method="bce"))
    explicit = resolve_config(RunConfig(dataset="cifar10", method="bce", imbalance=100))
    assert implicit.imbalance == 100.0 and implicit == explicit
    assert implicit.identity() == explicit.identity() and derive_seed(implicit, 0) == derive_seed(explicit, 0)
    assert resolve_config(RunConfig(dataset="cifar10", method="bce", imbalance=50)).imbalance == 50.0
    assert resolve_config(RunConfig(dataset="synthetic2d", method="bce")).imbalance is None  # no default: as loaded


def test_naming_the_datasets_own_augmentation_is_the_same_run_as_leaving_it_out():
    """CIFAR trains with crop_flip unless told otherwise, synthetic data with none: spelling that out
    gave another run id for the same training (and a fake sweep row in the report)."""
    for dataset, own in (("cifar10", "crop_flip"), ("cifar10_lt", "crop_flip"), ("synthetic2d", "none")):
        left_out = resolve_config(RunConfig(dataset=dataset, method="bce"))
        assert resolve_config(RunConfig(dataset=dataset, method="bce", augment=own)) == left_out
        assert left_out.augment is None
    assert resolve_config(RunConfig(dataset="cifar10", method="bce", augment="none")).augment == "none"  # switched off


def test_a_prefix_naming_the_wrong_owner_says_whose_parameter_it_is():
    """`method.n_train` was 'unknown parameter n_train; valid: ... and n_train for dataset synthetic2d'."""
    with pytest.raises(CritBenchError, match=r"--param method.n_train: n_train is dataset synthetic2d's parameter, "
                                             r"not method bce's; write --param n_train=10"):
        resolve_config(RunConfig(dataset="synthetic2d", method="bce", params={"method.n_train": 10}))
    with pytest.raises(CritBenchError, match=r"--param data.lr: lr is method bce's parameter, not dataset synthetic2d's"):
        resolve_config(RunConfig(dataset="synthetic2d", method="bce", params={"data.lr": 0.1}))
