"""Claims on runs (benchmarks/sweep/claims.py): who may train a run when several processes share
one output folder."""
from __future__ import annotations

import json
import os

from benchmarks.sweep import claims
from benchmarks.sweep.claims import claim_path, claim_run, create_exclusive, take_over


def write_claim(path, **holder) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": "another-node", "pid": 1, "token": "rival", "claimed_at": "now", **holder}))


def test_a_live_claim_on_another_node_is_respected_unless_it_is_an_earlier_attempt_of_the_same_driver(tmp_path):
    """A Ray retry on another node finds its dead attempt's claim, whose heartbeat looks alive for
    STALE_S: with the planning invocation's own driver token it is taken over, with another's it is not."""
    path = claim_path(tmp_path, "run-a")
    write_claim(path, driver="planner-1")
    claim, holder = claim_run(tmp_path, "run-a", driver="planner-2")
    assert claim is None and holder["token"] == "rival"
    claim, holder = claim_run(tmp_path, "run-a", driver="planner-1")
    assert claim is not None and holder == {}
    assert json.loads(path.read_text())["token"] == claim.owner["token"]
    claim.release()
    assert not path.exists()


def test_only_one_of_two_takers_of_a_stale_claim_gets_it(tmp_path, monkeypatch):
    """A rival takes the stale claim over between this process's staleness check and its own
    takeover: this process must not overwrite the rival's fresh claim and train the run too."""
    path = claim_path(tmp_path, "run-b")
    write_claim(path, host=os.uname().nodename, pid=2**22 + 7)  # no such process: stale
    judged = claims.is_stale

    def rival_takes_over_meanwhile(claim_file, holder, driver=""):
        stale = judged(claim_file, holder, driver)
        assert stale and take_over(claim_file, (claim_file.stat().st_ino, holder), "rival-2")
        with os.fdopen(create_exclusive(claim_file), "w") as stream:
            stream.write(json.dumps({"host": "another-node", "pid": 3, "token": "rival-2"}))
        return stale

    monkeypatch.setattr(claims, "is_stale", rival_takes_over_meanwhile)
    claim, holder = claim_run(tmp_path, "run-b")
    assert claim is None and holder["token"] == "rival-2"
    assert json.loads(path.read_text())["token"] == "rival-2"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # nothing left aside


def test_take_over_moves_only_the_stale_file_it_judged(tmp_path):
    path = claim_path(tmp_path, "run-c")
    write_claim(path)
    stale = (path.stat().st_ino, claims.read_claim(path))
    assert take_over(path, stale, "mine") and not path.exists()
    assert not take_over(path, stale, "late")  # gone: another taker moved it
    write_claim(path, token="fresh")  # may reuse the stale file's inode number
    assert not take_over(path, stale, "late")  # a fresh claim in its place is put back
    assert json.loads(path.read_text())["token"] == "fresh" and len(list(path.parent.iterdir())) == 1
