"""Claims on runs, so that leaderboards sharing one output folder train each run once.

A run is claimed by creating `<out>/.claims/<run_id>.json` exclusively (O_EXCL, atomic on local
and NFSv3+ file systems). The claimant refreshes the file's mtime every `HEARTBEAT_S` seconds while
it trains. A claim is stale, and taken over, when its process is gone (same host) or when its
heartbeat stopped more than `STALE_S` ago (a dead node, a process killed by the scheduler).
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
from benchmarks.core.storage import write_text_atomic

CLAIMS_DIR = ".claims"
HEARTBEAT_S = 30.0
STALE_S = 300.0  # ten missed heartbeats
TAKEOVER_SETTLE_S = 0.2  # after replacing a stale claim, wait for a rival taker to show before reading back


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


def is_stale(path: Path, holder: dict) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    same_host = holder.get("host") == socket.gethostname()
    return age > STALE_S or (same_host and isinstance(holder.get("pid"), int) and not _alive(holder["pid"]))


def create_exclusive(path: Path) -> int:
    """Create `path` exclusively (O_EXCL), and its folder, again if a releasing claim removed the
    (then empty) folder between the two."""
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileNotFoundError:
            continue


def claim_run(out_dir, identity: str) -> tuple[Claim | None, dict]:
    """(Claim, {}) when this process may train run `identity`; (None, holder) while another live
    process holds it. A stale claim is taken over."""
    path = claim_path(out_dir, identity)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex, "claimed_at": utc_now()}
    text = json.dumps(owner)
    try:
        handle = create_exclusive(path)
    except FileExistsError:
        holder = read_claim(path)
        if not is_stale(path, holder):
            return None, holder
        write_text_atomic(path, text)  # take the stale claim over
        time.sleep(TAKEOVER_SETTLE_S)
        holder = read_claim(path)
        if holder.get("token") != owner["token"]:  # a rival took it over at the same moment
            return None, holder
        return Claim(path, owner), {}
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    return Claim(path, owner), {}
