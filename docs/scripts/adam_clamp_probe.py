"""Would LibAUC's Adam have stepped differently from torch's in a `bce` pre-training stage?
(docs/methods.md, "One deviation").

`libauc.optimizers.Adam` clamps every gradient element to [-1, 1] before the Adam step; CritBench's
`bce` stage of sopa_s, sota_s and soap steps with `torch.optim.Adam`. This script takes a run's
checkpoint (`<out>/checkpoints/<run_id>.pt`, written while a leaderboard or `--checkpoint-dir` run
trains), rebuilds the run, and takes STEPS BCE-stage steps from the initial weights and from the
checkpoint's, printing the largest gradient element and how many elements the clamp would change.

    python docs/scripts/adam_clamp_probe.py CHECKPOINT DATA_DIR [STEPS]
"""
import sys

import torch

from benchmarks.core.config import RunConfig
from benchmarks.engine.device import resolve_device
from benchmarks.engine.resolve import load_dataset, resolve_config
from benchmarks.engine.trainer import Trainer
from benchmarks.methods.sampling import epoch_order

CLIP_VALUE = 1.0  # libauc.optimizers.Adam's default


def probe(trainer: Trainer, steps: int) -> tuple[float, int, int]:
    """The largest |gradient element|, the elements above CLIP_VALUE and all elements over `steps` steps."""
    trainer.method.begin_stage(trainer.method.stages()[0], trainer.stage_epochs[0])
    trainer.model.train()
    seen, step = [], trainer.method.optimizer.step

    def step_and_record():
        grad = torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None]).abs()
        seen.append((float(grad.max()), int((grad > CLIP_VALUE).sum()), grad.numel()))
        step()

    trainer.method.optimizer.step = step_and_record
    size = trainer.config.batch_size
    order = epoch_order(trainer.method.sampling(trainer.config.sampler), trainer.data["train"].y, size, trainer.gen)
    for start in range(0, steps * size, size):
        trainer.train_step(order[start:start + size])
    return max(m for m, _, _ in seen), sum(c for _, c, _ in seen), sum(n for *_, n in seen)


def main(path: str, data_dir: str, steps: int = 40) -> None:
    checkpoint = torch.load(path, weights_only=False, map_location="cpu")
    fields = {**checkpoint["identity"], "device": "cpu", "data_dir": data_dir}
    config = resolve_config(RunConfig(**{k: v for k, v in fields.items() if k in RunConfig.__dataclass_fields__}))
    data = load_dataset(config)
    epochs = len(checkpoint["progress"]["history"])
    for label, weights in (("initialization", None), (f"after epoch {epochs}", checkpoint["model"])):
        trainer = Trainer(config, data, resolve_device("cpu"), progress=False)
        if weights is not None:
            trainer.model.load_state_dict(weights)
        largest, clamped, total = probe(trainer, steps)
        print(f"{label}: {steps} steps, largest |gradient element| {largest:.3g}, "
              f"{clamped} of {total} elements above {CLIP_VALUE}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:4]))
