"""The fast training path computes what a plain fp32 loop computes, and the speed benchmark runs.

No timings are asserted here: speed is measured by `python -m benchmarks.speed` (docs/speed.md)."""
from __future__ import annotations

import copy
import json

import pytest
import torch

import benchmarks.engine.device as device_module
from benchmarks import speed
from benchmarks.core.config import RunConfig
from benchmarks.engine.device import resolve_device
from benchmarks.engine.resolve import resolve_config
from benchmarks.engine.trainer import Trainer
from benchmarks.sweep.suite import load_suite
from datasets import create_dataset
from tests.conftest import TINY_SUITE, write_suite

STEPS, BATCH = 4, 32
BF16_SIZE = 28  # feature maps of side >= device.CPU_BF16_MIN_SIDE, so a bf16 CPU trains in bf16 (8 px would not)
BF16_WIDTH = 0.25  # >= device.CPU_BF16_MIN_CHANNELS (16) after the stem, which a 2D bf16 CPU needs too


def fast_and_plain_losses(dims: int, monkeypatch) -> tuple[list[float], list[float], Trainer]:
    """Losses of `STEPS` Trainer steps on the fast path (bf16 autocast + channels-last, forced on
    even where the CPU lacks AMX) and of a plain fp32 loop from the same weights and batches."""
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: True)
    dataset = create_dataset(f"synthetic{dims}d", size=BF16_SIZE)
    config = resolve_config(RunConfig(dataset=f"synthetic{dims}d", method="bce", batch_size=BATCH, size=BF16_SIZE,
                                      width=BF16_WIDTH, device="cpu", epochs=10))
    trainer = Trainer(config, dataset, resolve_device(config.device), progress=False)
    model = copy.deepcopy(trainer.model).to(memory_format=torch.contiguous_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)  # the bce recipe: Adam 1e-3, no decay
    train = trainer.data["train"]
    fast, plain = [], []
    trainer.model.train()
    model.train()
    for step in range(STEPS):
        index = torch.arange(step * BATCH, (step + 1) * BATCH)
        fast.append(float(trainer.train_step(index)))
        x = (train.x[index].float() / 255 - 0.5) / 0.5
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(1), train.y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        plain.append(float(loss.detach()))
    return fast, plain, trainer


@pytest.mark.parametrize("dims", [2, 3])
def test_fast_path_matches_plain_fp32_loop(dims, monkeypatch):
    fast, plain, trainer = fast_and_plain_losses(dims, monkeypatch)
    assert trainer.memory_format == (torch.channels_last if dims == 2 else torch.channels_last_3d)
    with trainer.autocast():  # the fast path really is bf16
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    # the first loss is a pure forward pass: bf16 rounding (8 mantissa bits) moves it well under 1%
    assert fast[0] == pytest.approx(plain[0], rel=0.01)
    # later steps compound the rounding through the updates; the trajectories still agree
    assert fast == pytest.approx(plain, rel=0.05)
    assert plain[0] != pytest.approx(plain[-1], rel=1e-3)  # the steps did change the model


def test_no_amp_is_plain_fp32(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: True)
    config = resolve_config(RunConfig(dataset="synthetic2d", method="bce", size=8, width=0.125, device="cpu", amp=False))
    trainer = Trainer(config, create_dataset("synthetic2d", size=8), resolve_device(config.device), progress=False)
    assert trainer.memory_format == torch.contiguous_format
    with trainer.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_speed_script_writes_table_and_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: True)  # a bf16 CPU: 8 px still trains fp32
    out = tmp_path / "speed.json"
    code = speed.main(["--device", "cpu", "--cases", "2d-28", "3d-28", "--steps", "1", "--repeats", "2",
                       "--warmup", "0", "--width", "0.125", "--size", "8", "--batch-size", "4",
                       "--workers", "1", "--json", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    assert "2d-28" in table and "3d-28" in table and "ratio" in table
    assert "critbench precision: fp32 |" in table  # as the Trainer resolved it, not as the CPU could
    report = json.loads(out.read_text())
    assert [case["case"] for case in report["cases"]] == ["2d-28", "3d-28"]
    for case in report["cases"]:
        assert case["batch"] == 4 and case["size"] == 8 and case["critbench_precision"] == "fp32"
        # training = forward + backward (about twice the forward), counted once per sample
        assert 2 < case["flops_per_sample"]["train"] / case["flops_per_sample"]["eval"] < 3.5
        for pipeline in ("critbench", "reference"):
            for phase in ("train", "eval"):
                entry = case[pipeline][phase]
                assert len(entry["windows"]) == 2 and entry["min"] <= entry["samples_per_s"] <= entry["max"]
                assert entry["tflops"] > 0 and entry["bf16_peak_fraction"] is None  # no peak on the CPU
        ratio = case["critbench"]["train"]["samples_per_s"] / case["reference"]["train"]["samples_per_s"]
        assert case["ratio_train"] == pytest.approx(ratio)


def test_the_header_names_each_cases_precision_when_they_differ():
    cases = [{"case": "2d-28", "critbench_precision": "fp32"},
             {"case": "3d-28", "critbench_precision": "bf16 autocast, channels-last"}]
    assert speed.precision_summary(cases) == "2d-28 fp32; 3d-28 bf16 autocast, channels-last"
    assert speed.precision_summary(cases[1:] * 2) == "bf16 autocast, channels-last"


def test_speed_script_rejects_unknown_case(capsys):
    assert speed.main(["--device", "cpu", "--cases", "4d-28"]) == 2
    assert "unknown case '4d-28'; valid: 2d-28, 3d-28, 3d-64" in capsys.readouterr().err


@pytest.mark.parametrize("name, peak", [("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0),
                                        ("NVIDIA H200", 989.0), ("NVIDIA A100-SXM4-80GB", 312.0),
                                        ("Tesla T4", None)])
def test_bf16_peaks_by_device_name(name, peak):
    assert speed.bf16_peak_tflops(name) == peak


def test_evaluation_logits_are_fp32_on_the_bf16_path(monkeypatch):
    """Validation and test logits come from an fp32 forward pass even when training uses bf16
    autocast: bf16 keeps 8 significant bits, so a bf16 head collapses distinct samples onto ties
    (624 PneumoniaMNIST test logits gave ~495 distinct values) and AUC would rank rounded scores."""
    monkeypatch.setattr(device_module, "cpu_has_bf16_units", lambda: True)
    config = resolve_config(RunConfig(dataset="synthetic2d", method="bce", size=BF16_SIZE, width=BF16_WIDTH, device="cpu"))
    trainer = Trainer(config, create_dataset("synthetic2d", size=BF16_SIZE), resolve_device(config.device), progress=False)
    assert trainer.precision == "bf16-autocast"
    scores = trainer.predict("test")
    trainer.model.eval()
    with torch.no_grad():
        x = trainer.batch(trainer.data["test"].x, train=False)
        fp32 = trainer.model(x).squeeze(1).double().numpy()
        with trainer.autocast():
            bf16 = trainer.model(x).squeeze(1).float().double().numpy()
    assert scores == pytest.approx(fp32, rel=1e-5, abs=1e-6)
    assert not bf16 == pytest.approx(fp32, rel=1e-5, abs=1e-6)  # the bf16 pass really differs


def test_suite_timing_phases_add_up_to_the_total(tmp_path, capsys):
    """`--suite`: one tiny run through the leaderboard; the table's phases add up to its total and the
    JSON has every phase, what was run and the load."""
    suite = write_suite(tmp_path, TINY_SUITE.replace("seeds = [0, 1]", "seeds = [0]"))
    out = tmp_path / "speed.json"
    assert speed.main(["--suite", str(suite), "--methods", "bce", "--json", str(out), "--out", str(tmp_path / "runs")]) == 0
    table = capsys.readouterr().out
    rows = {line[:42].strip(): line[42:].split() for line in table.splitlines() if line.endswith("%")}
    assert set(rows) == set(speed.SUITE_PHASES.values()) | {"total (process start to finished report)"}
    total = float(rows.pop("total (process start to finished report)")[0])
    assert sum(float(seconds) for seconds, _ in rows.values()) == pytest.approx(total, abs=0.01 * len(rows))
    report = json.loads(out.read_text())
    assert set(report["phases"]) == set(speed.SUITE_PHASES)
    seconds = {name: phase["seconds"] for name, phase in report["phases"].items()}
    assert sum(seconds.values()) == pytest.approx(report["total_seconds"])
    assert all(seconds[name] > 0 for name in ("imports", "plan", "load", "setup", "train", "eval", "checkpoint",
                                              "record", "report"))
    assert seconds["other"] > -1e-6  # a phase counted twice would make it negative
    assert report["runs"] == {"trained": 1, "complete": 1, "failed": 0, "by_dataset": {"synthetic2d": {"bce": 1}}}
    assert report["leaderboard_exit_code"] == 0 and "--methods bce" in report["leaderboard_command"]
    assert set(report["env"]["load_average"]) == {"start", "end"} and report["env"]["threads"] >= 1
    assert (tmp_path / "runs" / "report.html").is_file()


def test_suite_timing_with_runs_per_device_times_the_suite_and_leaves_run_phases_to_the_workers(tmp_path, capsys):
    """`--runs-per-device 2` (issue 15: suite throughput per N): both runs train in worker processes,
    so their phases are not in this process; the total and runs per minute are, and the rest adds up."""
    suite = write_suite(tmp_path, TINY_SUITE)
    out = tmp_path / "speed.json"
    assert speed.main(["--suite", str(suite), "--methods", "bce", "--runs-per-device", "2", "--device", "cpu",
                       "--json", str(out), "--out", str(tmp_path / "runs")]) == 0
    table = capsys.readouterr().out
    assert "2 run(s) at once per device" in table and "in workers" in table
    report = json.loads(out.read_text())
    assert report["runs_per_device"] == 2 and report["runs_in_worker_processes"]
    assert report["runs"]["complete"] == 2 and report["runs_per_minute"] == pytest.approx(120 / report["total_seconds"])
    seconds = {name: phase["seconds"] for name, phase in report["phases"].items()}
    assert all(seconds[name] is None for name in speed.RUN_PHASES)
    assert sum(value for value in seconds.values() if value is not None) == pytest.approx(report["total_seconds"])
    assert report["phases"]["other"]["label"] == "runs in worker processes + other"
    assert "--runs-per-device 2" in report["leaderboard_command"]


def test_no_cache_suite_turns_off_the_caches_only(tmp_path):
    """`--no-cache` runs a copy of the suite with `cache_dir = none` on the datasets that cache (CIFAR
    here; NIfTI when --datasets adds it); everything else is the suite as it was."""
    path = speed.suite_without_cache("quick", ["nifti"], tmp_path)
    copy, original = load_suite(str(path)), load_suite("quick")
    assert copy.name == "quick" and copy.run == original.run and copy.methods == original.methods
    params = {setting.label: setting.params for setting in copy.datasets}
    assert params["cifar10 1:100"] == {"cache_dir": "none"} and params["nifti"] == {"cache_dir": "none"}
    assert params["pneumoniamnist"] == {}
    assert [setting.recipes for setting in copy.datasets[:-1]] == [setting.recipes for setting in original.datasets]


@pytest.mark.parametrize("argv, message", [
    (["--suite", "nope"], "unknown suite 'nope'"),
    (["--suite", "nope", "--no-cache"], "unknown suite 'nope'"),
    (["--suite", "quick", "--cases", "2d-28"], "--cases times the training step, not a suite"),
    (["--datasets", "cifar10"], "--datasets needs --suite NAME|FILE"),
])
def test_suite_timing_bad_input_is_one_line(argv, message, tmp_path, capsys):
    assert speed.main([*argv, "--json", str(tmp_path / "speed.json")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "speed.json").exists()


def test_suite_timing_refuses_a_folder_with_records(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "old.json").write_text("{}")
    assert speed.main(["--suite", "quick", "--out", str(tmp_path / "runs"), "--json", str(tmp_path / "s.json")]) == 2
    assert "is not empty: its complete runs would be skipped" in capsys.readouterr().err
