"""THE BASELINE that `python -m benchmarks.speed` compares CritBench against.

A training and evaluation pipeline written the way the MedMNIST v2 baseline scripts
(MedMNIST/experiments, `train_and_eval_pytorch.py`; recipes.md) do it: a torch `Dataset` holding
numpy uint8 images that returns one sample per `__getitem__` (a PIL image in 2D, a float volume in
3D), per-sample torchvision-style transforms (`ToTensor` + `Normalize(0.5, 0.5)`), a `DataLoader`
that collates the samples (here with worker processes and pinned memory on CUDA, which the
original scripts do not even use), an fp32 model, one `loss.item()` per step, Adam 1e-3.

This is deliberately *not* how CritBench trains; it is the thing being measured against.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms


class VolumeToTensor:
    """`ToTensor` for a uint8 `(C, D, H, W)` volume: float32 scaled to [0, 1] (MedMNIST3D's `img / 255.`)."""

    def __call__(self, volume: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((volume / 255.0).astype(np.float32))


class PerSampleDataset(Dataset):
    """MedMNIST-style dataset: uint8 arrays `(N, C, *spatial)`, one transformed sample per item."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels
        self.dims = images.ndim - 2
        to_tensor = transforms.ToTensor() if self.dims == 2 else VolumeToTensor()
        self.transform = transforms.Compose([to_tensor, transforms.Normalize(mean=[0.5], std=[0.5])])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = self.images[index]
        if self.dims == 2:  # medmnist hands the transform a PIL image
            image = Image.fromarray(image[0]) if image.shape[0] == 1 else Image.fromarray(image.transpose(1, 2, 0))
        return self.transform(image), np.float32(self.labels[index])


class ReferencePipeline:
    """The baseline's model, optimizer and loaders; `train_epoch()` and `predict()` as the scripts do."""

    def __init__(self, model: torch.nn.Module, train: tuple[np.ndarray, np.ndarray],
                 evaluate: tuple[np.ndarray, np.ndarray], batch_size: int, device: torch.device, workers: int):
        self.model, self.device = model.to(device), device
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        self.criterion = torch.nn.BCEWithLogitsLoss()
        options = dict(batch_size=batch_size, num_workers=workers, persistent_workers=workers > 0,
                       pin_memory=device.type == "cuda")
        self.train_loader = DataLoader(PerSampleDataset(*train), shuffle=True, **options)
        self.eval_loader = DataLoader(PerSampleDataset(*evaluate), shuffle=False, **options)

    def train_epoch(self) -> float:
        self.model.train()
        losses = []
        for inputs, targets in self.train_loader:
            self.optimizer.zero_grad()
            outputs = self.model(inputs.to(self.device))
            loss = self.criterion(outputs.squeeze(1), targets.to(self.device))
            losses.append(loss.item())
            loss.backward()
            self.optimizer.step()
        return float(np.mean(losses))

    def predict(self) -> np.ndarray:
        self.model.eval()
        scores = torch.tensor([], device=self.device)
        with torch.no_grad():
            for inputs, _ in self.eval_loader:
                outputs = self.model(inputs.to(self.device)).squeeze(1).sigmoid()
                scores = torch.cat((scores, outputs), 0)
        return scores.cpu().numpy()
