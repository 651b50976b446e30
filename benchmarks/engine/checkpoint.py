"""End-of-epoch checkpoints, so that a run killed mid-training (a preempted job) resumes from its
last epoch to the record an uninterrupted run writes (on the CPU bitwise; on CUDA up to cuDNN's
and atomic scatters' non-determinism, docs/failure-modes.md).

One file per run, `<checkpoint_dir>/<run_id>.pt`, replaced atomically after every epoch and read
back only when it was written by the same run (run id, config identity, device type, format). The
caller deletes it with `remove_checkpoint` once the run's record is saved.
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

from benchmarks.core.outputs import check_writable_dir
from benchmarks.core.phases import timed
from benchmarks.core.storage import write_atomic

CHECKPOINT_FORMAT = 1
SCALARS = (bool, int, float, str, type(None), torch.device, torch.dtype)


def run_checkpoint_dir(out_dir) -> Path:
    """Where the commands keep the checkpoints of the runs whose records go to `out_dir`."""
    return Path(out_dir) / "checkpoints"


def checkpoint_path(checkpoint_dir, run_id: str) -> Path:
    return Path(checkpoint_dir) / f"{run_id}.pt"


def save_atomic(path: Path, payload: dict) -> None:
    """`torch.save`, atomically: a kill at any moment leaves the previous file or the new one.
    Readable by the group, like the records. A write the file system refuses (a full disk, a
    file-size limit) raises its OSError (`write_atomic`)."""
    write_atomic(path, lambda stream: torch.save(payload, stream))


def prepare_checkpoint_dir(checkpoint_dir) -> None:
    """Create the folder; CritBenchError when it cannot hold checkpoints (a file, read-only, full),
    so a run is refused before it loads data or trains."""
    check_writable_dir(checkpoint_dir, "the checkpoint folder")


def remove_checkpoint(checkpoint_dir, run_id: str) -> None:
    """Delete run `run_id`'s checkpoint and the temporary files of writers killed mid-write, then
    the folder if nothing else is in it (a run training beside it keeps it: write_atomic recreates it)."""
    path = checkpoint_path(checkpoint_dir, run_id)
    for file in [path, *path.parent.glob(f".{path.name}.*.tmp")]:
        file.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:  # not empty, or already gone
        pass


def attribute_state(owner, skip: tuple[str, ...] = ()) -> dict:
    """The state of each of `owner`'s attributes but `skip` (`state_of`)."""
    return {name: state_of(value) for name, value in vars(owner).items() if name not in skip}


def state_of(value):
    """What a checkpoint keeps of `value`: the `state_dict()` of what has one (optimizers, LR
    schedulers, modules), tensors and plain values as they are, lists and dicts element by element,
    any other object (a loss with a flag) attribute by attribute; a function keeps nothing. It
    references live tensors: save it at once."""
    if hasattr(value, "state_dict"):
        return value.state_dict()
    if isinstance(value, (list, tuple)):
        return [state_of(item) for item in value]
    if isinstance(value, dict):
        return {key: state_of(item) for key, item in value.items()}
    if isinstance(value, (torch.Tensor, *SCALARS)):
        return value
    return attribute_state(value)


def load_attribute_state(owner, state: dict, device: torch.device | None = None) -> None:
    """Restore what `attribute_state` returned into `owner`'s attributes (`restored`)."""
    for name, saved in state.items():
        setattr(owner, name, restored(getattr(owner, name), saved, device))


def on_device(saved, device: torch.device | None):
    """`saved` with its tensors (in lists, tuples and dicts too) moved to `device` (None: as they are)."""
    if device is None:
        return saved
    if isinstance(saved, torch.Tensor):
        return saved.to(device)
    if isinstance(saved, (list, tuple)):
        return type(saved)(on_device(item, device) for item in saved)
    if isinstance(saved, dict):
        return {key: on_device(item, device) for key, item in saved.items()}
    return saved


def restored(current, saved, device: torch.device | None = None):
    """`current` with the `saved` state (`state_of`): loaded into what has `load_state_dict`; a
    tensor keeps its identity (whatever else holds it sees the saved values) and takes the saved
    memory layout (PESG's steps rebind weights to tensors of other strides, and a convolution's
    rounding depends on its weight's strides); lists and dicts are restored in place element by
    element, other objects attribute by attribute; scalars, and containers whose length changed,
    are replaced, their tensors moved to `device` (checkpoints load on the CPU: a tensor the
    method holds where a fresh run holds None, as pdsca's `alpha_grad`, goes back to the run's device)."""
    if hasattr(current, "load_state_dict"):
        current.load_state_dict(saved)
    elif isinstance(current, torch.Tensor):
        current.data = saved.to(current.device)
    elif isinstance(current, dict) and current.keys() == saved.keys():
        current.update({key: restored(current[key], item, device) for key, item in saved.items()})
    elif isinstance(current, (list, tuple)) and len(current) == len(saved):
        items = [restored(item, value, device) for item, value in zip(current, saved)]
        if isinstance(current, tuple):
            return tuple(items)
        current[:] = items
    elif isinstance(current, (*SCALARS, list, tuple, dict)):
        return on_device(saved, device)
    else:
        load_attribute_state(current, saved, device)
    return current


class RunCheckpoint:
    """The checkpoint file of one run, stamped with what identifies the run."""

    def __init__(self, checkpoint_dir, run_id: str, identity: dict, device: torch.device):
        self.path = checkpoint_path(checkpoint_dir, run_id)
        self.stamp = {"format": CHECKPOINT_FORMAT, "run_id": run_id, "identity": identity, "device": device.type}
        self.enabled = True

    @timed("checkpoint")
    def save(self, state: dict) -> None:
        """Replace the checkpoint by `state` with the stamp (`save_atomic`). A failed write (a full
        disk) is said once on stderr and ends checkpointing, not the run."""
        if not self.enabled:
            return
        try:
            save_atomic(self.path, {**self.stamp, **state})
        except OSError as error:
            self.enabled = False
            print(f"warning: cannot write checkpoint {self.path} ({error.strerror or error}); "
                  f"the run goes on without checkpoints", file=sys.stderr)

    def load(self) -> dict | None:
        """The saved state, or None when there is none; a checkpoint that cannot be read or belongs
        to another run is ignored (said on stderr), and the run starts from its first epoch."""
        if not self.path.exists():
            return None
        try:
            with warnings.catch_warnings():  # torch's warnings about a corrupt file: the line below says it
                warnings.simplefilter("ignore")
                saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:  # a truncated file, a foreign pickle, a folder: anything but a checkpoint
            reason = next(iter(str(error).splitlines()), "")
            return self._ignore(f"it cannot be read ({type(error).__name__}: {reason})")
        differ = [key for key, value in self.stamp.items() if not isinstance(saved, dict) or saved.get(key) != value]
        if differ:
            return self._ignore(f"it was written by another run (differs in: {', '.join(differ)})")
        return saved

    def _ignore(self, why: str) -> None:
        print(f"warning: ignoring checkpoint {self.path}: {why}; training from the first epoch "
              f"(it is overwritten after that epoch)", file=sys.stderr)
        return None
