"""Why a very short 3D run can score validation AUC < 0.5 (docs/failure-modes.md).

Trains ResNet-18 3D with BCE on 128 VesselMNIST3D train volumes for EPOCHS epochs (Adam 1e-3,
batch 32), then scores the validation split three ways with the same weights: eval mode with the
batch-norm running statistics (what CritBench reports), each batch's own statistics, and running
statistics re-estimated over the train split (cumulative average).

    CRITBENCH_DATA=../shared/data python docs/scripts/bn_short_run.py [EPOCHS] [WIDTH]
"""
import sys

import torch
from sklearn.metrics import roc_auc_score

from datasets import create_dataset
from models3d import create_model

BATCH = 32


def normalize(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255 - 0.5) / 0.5


def logits(model, x: torch.Tensor, train_mode: bool) -> torch.Tensor:
    model.train(train_mode)
    with torch.no_grad():
        return torch.cat([model(x[i:i + BATCH]).squeeze(1) for i in range(0, len(x), BATCH)])


def report(name: str, scores: torch.Tensor, y: torch.Tensor) -> None:
    print(f"{name:28s} val AUC {roc_auc_score(y.numpy(), scores.numpy()):.3f}  "
          f"logit mean {scores.mean():.2f} std {scores.std():.2f}")


def main(epochs: int, width: float) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    data = create_dataset("vesselmnist3d", size=28, seed=0, max_train_samples=128)
    model = create_model(3, 1, arch="resnet18", width=width)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = normalize(data.train.x), data.train.y.float()
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(y)).split(BATCH):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x[batch]).squeeze(1), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    val_x = normalize(data.val.x)
    report("running stats (reported)", logits(model, val_x, train_mode=False), data.val.y)
    report("batch stats", logits(model, val_x, train_mode=True), data.val.y)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the pass below
    logits(model, x, train_mode=True)
    report("re-estimated running stats", logits(model, val_x, train_mode=False), data.val.y)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1, float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
