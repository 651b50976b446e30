"""What a MedMNIST run feeds its network is what MedMNIST/experiments feeds: the same tensors and
labels, read through medmnist's own Dataset classes with the reference scripts' transforms."""
from __future__ import annotations

import medmnist
import numpy as np
import pytest
import torch
import torchvision.transforms as transforms
from medmnist import INFO

from benchmarks.engine.augment import create_augmentation, normalize
from benchmarks.core.errors import CritBenchError
from datasets import create_dataset
from datasets.base import file_md5
from datasets.medmnist_binary import write_npz


def reference_inputs(flag: str, folder, transform) -> tuple[torch.Tensor, np.ndarray]:
    """The test split as the reference's loader yields it, stacked: medmnist's Dataset class (its
    `__len__` asserts the official split size, so the stand-in is indexed by hand)."""
    reference = getattr(medmnist, INFO[flag]["python_class"])(split="test", root=str(folder), transform=transform)
    samples = [reference[index] for index in range(reference.imgs.shape[0])]
    return torch.stack([torch.as_tensor(image) for image, _ in samples]), np.stack([label for _, label in samples])


@pytest.mark.parametrize("flag", ["pathmnist", "organamnist", "chestmnist", "organmnist3d", "fracturemnist3d"])
def test_inputs_and_labels_are_the_reference_scripts(flag, tmp_path, monkeypatch):
    """2D, MedMNIST2D/train_and_eval_pytorch.py: `transforms.Compose([transforms.ToTensor(),
    transforms.Normalize(mean=[.5], std=[.5])])`; 3D, MedMNIST3D/train_and_eval_pytorch.py
    `Transform3D()`, which only casts medmnist's `img / 255.0` (`return voxel.astype(np.float32)`):
    3D volumes enter in [0, 1], not normalized to [-1, 1]. Labels: `torch.squeeze(targets, 1)`
    (multi-class), the findings as they are (multi-label)."""
    monkeypatch.setitem(INFO[flag], "MD5", file_md5(write_npz(flag, tmp_path, n=12)))
    dataset = create_dataset(flag, data_dir=tmp_path, params={"critical": "1"}, task="multiclass")
    three_d = flag.endswith("3d")
    transform = (lambda voxel: voxel.astype(np.float32)) if three_d else transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize(mean=[.5], std=[.5])])
    images, labels = reference_inputs(flag, tmp_path, transform)
    ours = normalize(dataset.test.x, torch.tensor(dataset.mean), torch.tensor(dataset.std))
    torch.testing.assert_close(ours, images.float(), atol=1e-6, rtol=0)
    assert (0 <= float(ours.min()) and float(ours.max()) <= 1) if three_d else float(ours.min()) < 0
    expected = labels if dataset.multilabel else labels.squeeze(1)
    assert dataset.test.classes.numpy().tolist() == expected.tolist()


def test_the_shape_transform_at_evaluation_is_the_references(tmp_path, monkeypatch):
    """MedMNIST3D/train_and_eval_pytorch.py with `--shape_transform`: `eval_transform =
    Transform3D(mul='0.5')`, whose `voxel = voxel * 0.5` scales medmnist's `img / 255.0`; here
    `--augment scale` in evaluation."""
    flag = "adrenalmnist3d"
    monkeypatch.setitem(INFO[flag], "MD5", file_md5(write_npz(flag, tmp_path, n=8)))
    dataset = create_dataset(flag, data_dir=tmp_path)
    images, _ = reference_inputs(flag, tmp_path, lambda voxel: (voxel * 0.5).astype(np.float32))
    scaled = create_augmentation("scale", 3)(dataset.test.x, torch.Generator(), train=False)
    torch.testing.assert_close(normalize(scaled, torch.tensor(dataset.mean), torch.tensor(dataset.std)), images,
                               atol=1e-6, rtol=0)


def test_a_data_dir_that_does_not_exist_is_named_and_not_created(tmp_path):
    """A typo in --data-dir: one message saying so, and no folder of that name left behind (the
    download attempt created it)."""
    missing = tmp_path / "typo"
    with pytest.raises(CritBenchError, match=r"--data-dir .*typo does not exist \(a typo\?\); pneumoniamnist \(size 28\) "
                                             r"needs pneumoniamnist.npz"):
        create_dataset("pneumoniamnist", data_dir=missing)
    assert not missing.exists()
