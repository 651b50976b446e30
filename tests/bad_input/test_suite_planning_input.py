"""Suite and planning inputs that used to crash or be silently accepted (issue 27 items 2, 3, 4, 6,
7, 10 and the half ones): each is refused by `python -m benchmarks.leaderboard` with one line (exit
2) before anything trains, and the finished record in `--out` is untouched."""
from __future__ import annotations

import time

import pytest

from benchmarks.leaderboard import main
from benchmarks.sweep.executors import RAY_OPTIONS, SLURM_OPTIONS, check_options
from benchmarks.sweep.suite import MAX_SEEDS, parse_seeds
from tests.bad_input.conftest import assert_refused, invoke, snapshot  # and the `out` fixture
from tests.conftest import TINY_SUITE, write_suite


def edit(old: str, new: str) -> str:
    assert old in TINY_SUITE
    return TINY_SUITE.replace(old, new, 1)


SLURM = TINY_SUITE + "\n[slurm]\n"
RAY = TINY_SUITE + "\n[ray]\n"

# (suite text, extra flags, what the one line names)
REFUSED = [
    ("extends = 5\n" + TINY_SUITE, [], "extends must be one suite's name or .toml path (a string), got 5"),
    ('extends = ["quick"]\n' + TINY_SUITE, [], "extends must be one suite's name or .toml path (a string)"),
    (edit('name = "synthetic2d"', 'name = "synthetic2d"\nmethods = []'), [],
     "methods must be a non-empty list of method names (leave it out to run all"),
    (SLURM + 'gpus = "two"', [], "slurm option gpus = 'two' must be an integer >= 0 (the suite's [slurm] table"),
    (SLURM + "gpus = 1.5", [], "slurm option gpus = 1.5 must be an integer >= 0"),
    (SLURM + "mem_gb = -4", [], "slurm option mem_gb = -4 must be a number > 0"),
    (SLURM + 'cluster = "lokal"', [], "slurm option cluster = 'lokal' must be one of slurm, local"),
    (SLURM + 'partiton = "gpu"', [], "unknown slurm option(s) partiton"),  # a typo, with the local executor
    (RAY + 'adress = "auto"', [], "unknown ray option(s) adress"),
    (RAY + "cpus = 0", [], "ray option cpus = 0 must be a number > 0"),
    (RAY + "gpus = -1", [], "ray option gpus = -1 must be a number >= 0"),
    (edit("epochs = 1", "epochs = 1\ndataset_params = { n_train = 64 }"), [],
     "suite tiny [run]: dataset_params is set per dataset: write params = {...} in each [[datasets]] table"),
    (TINY_SUITE, ["--slurm-gpus", "-1"], "slurm option gpus = -1 must be an integer >= 0 (the suite's [slurm] "
                                          "table or --slurm-gpus)"),
    (TINY_SUITE, ["--slurm-time", "0"], "or --slurm-time)"),
    (edit('name = "synthetic2d"', 'name = "synthetic2d"\nparams = { n_trian = 64 }'), [],
     "dataset synthetic2d has no --param n_trian; valid: n_train"),
    (TINY_SUITE, ["--methods", ","], "--methods ',' names nothing"),
    (TINY_SUITE, ["--datasets", " , "], "--datasets ' , ' names nothing"),
    (TINY_SUITE, ["--methods", ""], "--methods '' names nothing"),
    (TINY_SUITE.replace('name = "alm"', 'name = "aucm_ce"'), [],
     "--method aucm_ce trains in 2 stages (bce, aucm): needs --epochs >= 2, got 1"),
    (TINY_SUITE.replace('name = "alm"', 'name = "autobalance"'), [],
     "--method autobalance trains in 2 stages (search, retrain): needs --epochs >= 2, got 1"),
    (TINY_SUITE.replace('name = "alm"', 'name = "ldam"\nparams = { head = "cosine" }'), [],
     "--method ldam trains its own head (cosine_pair), which --param head=cosine would not change"),
]


@pytest.mark.parametrize("text,flags,names", REFUSED, ids=[f"case{index}" for index in range(len(REFUSED))])
def test_a_bad_suite_or_flag_is_refused_at_planning(text, flags, names, tmp_path, out, capsys, trained):
    before = snapshot(out)
    outcome = invoke(main, ["--suite", write_suite(tmp_path, text), "--out", out, "--dry-run", *flags], capsys)
    assert_refused(outcome, names)
    assert trained == [] and snapshot(out) == before


def test_a_huge_seed_range_is_refused_before_it_is_expanded(tmp_path, out, capsys):
    """`0-99999999999` took 5.6 GB and 33 s (or died) when the range was listed before the cap."""
    started = time.perf_counter()
    outcome = invoke(main, ["--suite", write_suite(tmp_path), "--out", out, "--dry-run", "--seeds", "0-99999999999"],
                     capsys)
    assert_refused(outcome, f"asks for 100000000000 seeds; at most {MAX_SEEDS} per suite")
    assert time.perf_counter() - started < 5
    with pytest.raises(Exception, match="asks for 1001 seeds"):
        parse_seeds(f"0-499,500-{MAX_SEEDS}")  # counted over the ranges, as they add up
    assert parse_seeds("3,0-2,2") == (3, 0, 1, 2)


def test_a_suite_file_with_a_byte_order_mark_reads(tmp_path, out, capsys):
    suite = tmp_path / "bom.toml"
    suite.write_bytes(b"\xef\xbb\xbf" + TINY_SUITE.encode())
    outcome = invoke(main, ["--suite", suite, "--out", out, "--dry-run"], capsys)
    assert outcome.code == 0 and "4 runs" in outcome.err, outcome.err


def test_whole_float_integer_options_reach_the_scheduler_as_integers_and_ray_may_ask_for_no_gpu():
    """sbatch refuses `--gpus-per-node=1.0`: TOML's `gpus = 1.0` is passed on as 1; Ray's
    `gpus = 0` (CPU-only tasks on a cluster with GPUs) is accepted."""
    slurm = check_options("slurm", {"gpus": 1.0, "time_min": 60.0, "mem_gb": 8}, SLURM_OPTIONS)
    assert slurm == {"gpus": 1, "time_min": 60, "mem_gb": 8} and type(slurm["gpus"]) is type(slurm["time_min"]) is int
    assert check_options("ray", {"gpus": 0, "cpus": 0.5}, RAY_OPTIONS) == {"gpus": 0, "cpus": 0.5}


def test_a_dry_run_writes_nothing_and_exits_1_when_data_is_unavailable(tmp_path, capsys):
    """It created --out, and said exit 0 over a plan whose every run was skipped for missing data."""
    out = tmp_path / "never"
    outcome = invoke(main, ["--suite", write_suite(tmp_path), "--out", out, "--dry-run"], capsys)
    assert outcome.code == 0 and "4 to run" in outcome.err and not out.exists()
    missing = write_suite(tmp_path, TINY_SUITE.replace('name = "synthetic2d"', 'name = "pneumoniamnist"')
                          .replace("size = 8", "size = 28"))
    outcome = invoke(main, ["--suite", missing, "--out", out, "--dry-run", "--data-dir", tmp_path], capsys)
    assert outcome.code == 1 and "skipping pneumoniamnist (4 runs), cannot load the data" in outcome.err
    assert not out.exists()
