"""Claims on runs, so that leaderboards sharing one output folder train each run once.

A run is claimed by creating `<out>/.claims/<run_id>.json` exclusively (O_EXCL, atomic on local
and NFSv3+ file systems). The claimant refreshes the file's mtime every `HEARTBEAT_S` seconds while
it trains. A claim is stale, and taken over, when its process is gone (same host) or when its
heartbeat stopped more than `STALE_S` ago (a dead node, a process killed by the scheduler), or
when it carries the claimant's own `driver` token: then it is an earlier attempt of the same task
of the same planning invocation (a Ray retry on another node, whose dead attempt's claim would
otherwise look alive for `STALE_S`). A stale claim is taken over by renaming it aside: only one of
several takers can move that file, and one that moved a rival's fresh claim instead puts it back.
Hand-written: no well-kept library does heartbeat-based claims in a shared folder without a server.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from benchmarks.core.machine import utc_now

CLAIMS_DIR = ".claims"
HEARTBEAT_S = 30.0
STALE_S = 300.0  # ten missed heartbeats


def claim_path(out_dir, identity: str) -> Path:
    return Path(out_dir) / CLAIMS_DIR / f"{identity}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's live process
        return True
    return True


def describe(holder: dict) -> str:
    return f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('claimed_at')}"


class Claim:
    """This process's claim on one run; `release()` (or leaving the `with` block) gives it up."""

    def __init__(self, path: Path, owner: dict):
        self.path, self.owner = path, owner
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name=f"claim {path.stem}", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except OSError:  # removed or unreachable: the run goes on; a rival may take it over
                pass

    def release(self) -> None:
        """Give up the claim; the claims folder goes too once it holds no other claim."""
        self._stop.set()
        if read_claim(self.path).get("token") == self.owner["token"]:
            self.path.unlink(missing_ok=True)
        try:
            self.path.parent.rmdir()
        except OSError:  # another run's claim is in it, or it is gone
            pass

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read_claim(path: Path) -> dict:
    """The claim file's holder, or {} when it is missing or unreadable (half-written)."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def is_stale(path: Path, holder: dict, driver: str = "") -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    same_host = holder.get("host") == socket.gethostname()
    return (age > STALE_S or bool(driver) and holder.get("driver") == driver
            or same_host and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]))


def take_over(path: Path, stale: tuple[int, dict], token: str) -> bool:
    """Move the stale claim at `path` (its inode and holder as judged) aside and delete it; False
    when a rival taker got there first: the file is gone, or `path` is already the rival's fresh
    claim (another holder, or another inode; an inode number alone can be reused at once), put back."""
    aside = path.with_name(f"{path.name}.stale-{token}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    if (os.stat(aside).st_ino, read_claim(aside)) != stale:  # a rival's new claim: give it back, unless a
        try:  # third process claimed the run meanwhile
            os.link(aside, path)
        except FileExistsError:
            pass
        aside.unlink()
        return False
    aside.unlink()
    return True


def create_exclusive(path: Path) -> int:
    """Create `path` exclusively (O_EXCL), and its folder, again if a releasing claim removed the
    (then empty) folder between the two."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileNotFoundError:
            continue


def claim_run(out_dir, identity: str, driver: str = "") -> tuple[Claim | None, dict]:
    """(Claim, {}) when this process may train run `identity`; (None, holder) while another live
    process holds it. A stale claim, or one of an earlier attempt under the same `driver` token, is
    taken over."""
    path = claim_path(out_dir, identity)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex, "claimed_at": utc_now(),
             "driver": driver}
    try:
        handle = create_exclusive(path)
    except FileExistsError:
        try:
            inode = path.stat().st_ino
        except FileNotFoundError:  # released meanwhile: claim it afresh
            return claim_run(out_dir, identity, driver)
        holder = read_claim(path)
        if not is_stale(path, holder, driver):
            return None, holder
        if not take_over(path, (inode, holder), owner["token"]):  # a rival took it over first
            return (None, read_claim(path)) if path.exists() else claim_run(out_dir, identity, driver)
        try:
            handle = create_exclusive(path)
        except FileExistsError:  # a rival claimed it between the two
            return None, read_claim(path)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(json.dumps(owner))
    return Claim(path, owner), {}
