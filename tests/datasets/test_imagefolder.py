"""Image-folder adapter: layouts, classes, channels, resizing, held-out splits, bad inputs, and the
CIFAR-10 copy; CIFAR's own adapter reads through the same helper."""
import numpy as np
import pytest
from PIL import Image

import datasets.imagefolder as imagefolder
from benchmarks.core.errors import CritBenchError
from datasets import create_dataset, dataset_fingerprint
from datasets.base import SPLITS
from datasets.imagefolder import list_image_folder, read_image_folder
from tests.conftest import CIFAR10_DIR, needs


def write_images(root, split, cls, count, mode="L", shape=(20, 24), suffix=".png", seed=0):
    """`count` random images in `root/split/cls/`, different in every folder (exact copies are refused across splits)."""
    rng = np.random.default_rng([seed, *f"{split}/{cls}".encode()])
    folder = root / split / cls
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, shape + ((3,) if mode == "RGB" else ()), dtype=np.uint8)
        Image.fromarray(pixels, mode).save(folder / f"{cls}{i:03d}{suffix}")


def folder_of(root, counts, **kwargs):
    """`counts`: {split: {class: n}}."""
    for split, classes in counts.items():
        for cls, count in classes.items():
            write_images(root, split, cls, count, **kwargs)
    return root


def load(root, size=16, seed=0, **params):
    return create_dataset("imagefolder", size=size, data_dir=root, seed=seed, params=params)


def counts(dataset):
    return {split: (len(part), part.positives) for split, part in dataset.splits.items()}


def test_train_only_folder_holds_out_val_and_test_per_class_seeded_and_recorded(tmp_path):
    folder_of(tmp_path, {"train": {"healthy": 40, "tumor": 10}})
    a, b, c = load(tmp_path, positive="tumor"), load(tmp_path, positive="tumor"), load(tmp_path, seed=1, positive="tumor")
    assert counts(a) == {"train": (35, 7), "val": (5, 1), "test": (10, 2)}  # 70/10/20 per class
    assert a.train.x.shape[1:] == (1, 16, 16) and a.dims == 2 and a.critical_class == "tumor"
    held = a.notes["held_out_files"]
    assert len(held["val"]) == 5 and all(path.startswith("train/") for path in held["val"] + held["test"])
    assert held == b.notes["held_out_files"] != c.notes["held_out_files"]
    assert a.tensor_md5() == b.tensor_md5() and a.source_md5 == c.source_md5
    assert a.record()["split_source"]["val"] == "held out from train (seed 0)"


def test_given_val_and_test_folders_are_used_and_negatives_can_be_chosen(tmp_path):
    folder_of(tmp_path, {"train": {"a": 6, "b": 5, "c": 4}, "val": {"a": 2, "b": 1, "c": 3}, "test": {"a": 3, "b": 2}})
    dataset = load(tmp_path, positive="b", negative="a")
    assert counts(dataset) == {"train": (11, 5), "val": (3, 1), "test": (5, 2)}  # class c dropped
    assert dataset.negative_class == "a" and dataset.notes["split_source"] == {s: "folder" for s in SPLITS}
    assert counts(load(tmp_path, positive="b")) == {"train": (15, 5), "val": (6, 1), "test": (5, 2)}


def test_color_images_make_rgb_unless_channels_1_and_any_size_in_range(tmp_path):
    folder_of(tmp_path, {"train": {"0": 12, "1": 6}}, shape=(30, 20))
    write_images(tmp_path, "train", "1", 2, mode="RGB", suffix=".jpg", seed=1)
    dataset = load(tmp_path, size=20)
    assert dataset.in_channels == 3 and dataset.train.x.shape[1:] == (3, 20, 20) and dataset.mean == (0.5,) * 3
    gray = load(tmp_path, size=20, channels="1")
    assert gray.in_channels == 1 and gray.mean == (0.5,)
    with pytest.raises(CritBenchError, match=r"channels=2 is invalid"):
        load(tmp_path, channels="2")
    with pytest.raises(CritBenchError, match=r"--size 600 .* any side from 8 to 512"):
        load(tmp_path, size=600)


def test_16_bit_tiff_is_min_max_scaled_to_8_bits(tmp_path):
    from datasets.imagefolder import read_image

    pixels = np.zeros((8, 8), np.uint16)
    pixels[:, 4:] = 1000
    pixels[:, 6:] = 2000
    Image.fromarray(pixels).save(tmp_path / "deep.tif")
    assert Image.open(tmp_path / "deep.tif").mode.startswith("I;16")
    image = read_image(tmp_path / "deep.tif", channels=None, size=None)
    assert image.shape == (8, 8, 1) and image.dtype == np.uint8
    assert image[0, :, 0].tolist() == [0, 0, 0, 0, 128, 128, 255, 255]  # 1000 / 2000 * 255 = 127.5 -> 128


def test_imbalance_injection_works_on_an_image_folder(tmp_path):
    folder_of(tmp_path, {"train": {"0": 30, "1": 10}, "val": {"0": 2, "1": 2}, "test": {"0": 2, "1": 2}})
    dataset = create_dataset("imagefolder", size=8, data_dir=tmp_path, imbalance=10)
    assert counts(dataset) == {"train": (33, 3), "val": (4, 2), "test": (4, 2)}


@pytest.mark.parametrize("make, params, message", [
    (lambda root: None, {}, r"needs --data-dir DIR with DIR/train/<class>/ .*/train is missing"),
    (lambda root: folder_of(root, {"train": {"a": 4, "b": 4}}), {"positive": "c"},
     r"train \(class folders\): the critical class 'c' .* \(a, b\)"),
    (lambda root: folder_of(root, {"train": {"a": 4, "b": 4}}), {"positive": "a", "negative": "d"},
     r"--param negative names 'd'"),
    (lambda root: folder_of(root, {"train": {"a": 4}}), {"positive": "a"}, r"every sample has label 'a'"),
    (lambda root: (folder_of(root, {"train": {"a": 4, "b": 4}}), (root / "train" / "b" / "x.dcm").write_bytes(b"DICM"),
                   [p.unlink() for p in (root / "train" / "b").glob("*.png")]),
     {"positive": "a"}, r"train/b holds no images; accepted: .*DICOM is not supported"),
    (lambda root: (folder_of(root, {"train": {"a": 4, "b": 4}}), (root / "train" / "b" / "broken.png").write_bytes(b"\x89PNG junk")),
     {"positive": "a"}, r"cannot read image .*train/b/broken.png"),
    (lambda root: folder_of(root, {"train": {"a": 4, "b": 4}, "val": {"z": 2}}), {"positive": "a"},
     r"val has class folders that .*train lacks \(z\); a class must have training images"),
    (lambda root: folder_of(root, {"train": {"a": 2, "b": 4}}), {"positive": "a"},
     r"class 'a' has only 2 samples, too few to hold out val and test"),
])
def test_bad_inputs_are_named(tmp_path, make, params, message):
    make(tmp_path)
    with pytest.raises(CritBenchError, match=message):
        load(tmp_path, **params)


@pytest.mark.parametrize("name, split", [("valid", "val"), ("Validation", "val"), ("Test", "test"),
                                         ("testing", "test")])
def test_a_split_folder_under_another_name_is_refused(tmp_path, name, split):
    folder_of(tmp_path, {"train": {"a": 10, "b": 10}, name: {"a": 2, "b": 2}})
    message = rf"holds {name}/, which .* splits are train/, val/ and test/ .*rename {name}/ to {split}/"
    with pytest.raises(CritBenchError, match=message):
        load(tmp_path, positive="a")
    with pytest.raises(CritBenchError, match=message):
        dataset_fingerprint("imagefolder", size=16, data_dir=tmp_path, params={"positive": "a"})  # while planning
    (tmp_path / name).rename(tmp_path / split)
    assert load(tmp_path, positive="a").notes["split_source"][split] == "folder"


@pytest.mark.parametrize("split", ["train", "test"])
def test_class_folders_that_differ_only_in_case_are_refused(tmp_path, split):
    folder_of(tmp_path, {"train": {"normal": 6, "pneumonia": 6}, "test": {"normal": 2, "pneumonia": 2}})
    write_images(tmp_path, split, "Pneumonia ", 2)
    with pytest.raises(CritBenchError, match=rf"{split} has class folders 'Pneumonia ' and 'pneumonia', which differ "
                                             rf"only in case or spaces .*merge them"):
        load(tmp_path, positive="pneumonia")


def test_different_image_sizes_need_a_size(tmp_path):
    write_images(tmp_path, "train", "a", 2, shape=(8, 8))
    write_images(tmp_path, "train", "b", 2, shape=(9, 8))
    with pytest.raises(CritBenchError, match=r"different sizes \(8x8, 9x8\); pass --size"):
        read_image_folder(list_image_folder(tmp_path, "train", ("a", "b")))


@pytest.mark.parametrize("name, params", [("imagefolder", {"positive": "truck"}), ("cifar10", {"val_per_class": 2})])
def test_fingerprint_reads_bytes_without_decoding_images(tmp_path, monkeypatch, name, params):
    folder_of(tmp_path, {"train": {"automobile": 8, "truck": 8}, "test": {"automobile": 2, "truck": 2}},
              mode="RGB", shape=(32, 32))
    loaded = create_dataset(name, data_dir=tmp_path, params=params)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the fingerprint decoded an image")

    monkeypatch.setattr(imagefolder, "read_image", no_decoding)
    assert dataset_fingerprint(name, data_dir=tmp_path, params=params) == loaded.source_md5
    (tmp_path / "test" / "truck" / "truck000.png").write_bytes(b"changed")
    assert dataset_fingerprint(name, data_dir=tmp_path, params=params) != loaded.source_md5


def test_cifar10_adapter_reads_its_image_folder_through_the_shared_helper(tmp_path):
    folder_of(tmp_path, {"train": {"automobile": 12, "truck": 12}, "test": {"automobile": 3, "truck": 3}},
              mode="RGB", shape=(32, 32))
    dataset = create_dataset("cifar10", data_dir=tmp_path, imbalance=3, params={"val_per_class": 3})
    assert counts(dataset) == {"train": (12, 3), "val": (6, 3), "test": (6, 3)}
    assert dataset.train.x.shape[1:] == (3, 32, 32)


@needs(CIFAR10_DIR)
def test_cifar10_copy_as_an_image_folder():
    dataset = create_dataset("imagefolder", size=32, data_dir=CIFAR10_DIR, params={"positive": "truck", "negative": "automobile"})
    assert counts(dataset) == {"train": (9000, 4500), "val": (1000, 500), "test": (2000, 1000)}
    assert dataset.train.x.shape[1:] == (3, 32, 32) and dataset.negative_class == "automobile"
    assert dataset.notes["split_source"] == {"train": "folder", "val": "held out from train (seed 0)", "test": "folder"}
