"""Every MedMNIST dataset in the binary framing: the critical class by default, by index, by name."""
import numpy as np
import pytest
from medmnist import INFO

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.identity import run_id
from benchmarks.engine.resolve import resolve_config
from datasets import create_dataset, get_dataset_entry, list_datasets
from datasets.critical import parse_labels
from datasets.medmnist_binary import CRITICAL_DEFAULTS, label_names, write_npz

NO_DEFAULT = ("organamnist", "organcmnist", "organsmnist", "organmnist3d", "tissuemnist", "bloodmnist", "chestmnist")


def stand_in(flag, folder, monkeypatch):
    path = write_npz(flag, folder)
    from datasets.base import file_md5
    monkeypatch.setitem(INFO[flag], "MD5", file_md5(path))
    return np.load(path)


def test_every_medmnist_dataset_is_registered_with_its_sizes():
    assert set(INFO) <= set(list_datasets()) and len(INFO) == 18
    assert get_dataset_entry("dermamnist").sizes == (28, 64, 128, 224)
    assert get_dataset_entry("fracturemnist3d").sizes == (28, 64)
    assert get_dataset_entry("fracturemnist3d").dims == 3


def test_defaults_exist_exactly_where_the_choice_is_unambiguous():
    assert set(CRITICAL_DEFAULTS) | set(NO_DEFAULT) == set(INFO)
    assert label_names("dermamnist")[CRITICAL_DEFAULTS["dermamnist"].labels[0]] == "melanoma"
    assert label_names("pathmnist")[CRITICAL_DEFAULTS["pathmnist"].labels[0]] == "colorectal adenocarcinoma epithelium"
    assert label_names("octmnist")[CRITICAL_DEFAULTS["octmnist"].labels[0]] == "choroidal neovascularization"
    assert label_names("fracturemnist3d")[CRITICAL_DEFAULTS["fracturemnist3d"].labels[0]] == "displaced rib fracture"
    assert label_names("breastmnist")[CRITICAL_DEFAULTS["breastmnist"].labels[0]] == "malignant"
    assert CRITICAL_DEFAULTS["retinamnist"].labels == (2, 3, 4)


def test_labels_parse_by_index_by_name_case_insensitively_and_joined():
    names = label_names("chestmnist")
    assert parse_labels("pneumothorax", names, "chestmnist") == (7,)
    assert parse_labels("Mass+NODULE", names, "chestmnist") == (4, 5)
    assert parse_labels("7", names, "chestmnist") == (7,)


@pytest.mark.parametrize("text,expected", [
    ("melanomas", "'melanomas' is not one of its labels; valid (index or name, several joined by '+'): 0 "),
    ("7", "'7' is not one of its labels"),
    ("0+1+2+3+4+5+6", "names every label, which leaves no other class"),
])
def test_a_bad_critical_class_lists_the_valid_labels(text, expected):
    with pytest.raises(CritBenchError, match="^dermamnist: --param critical=") as error:
        parse_labels(text, label_names("dermamnist"), "dermamnist")
    assert expected in str(error.value) and "4 'melanoma'" in str(error.value) or "every label" in expected


@pytest.mark.parametrize("flag", NO_DEFAULT)
def test_a_dataset_without_default_refuses_before_any_data_is_read(flag, tmp_path):
    config = RunConfig(dataset=flag, method="bce", data_dir=str(tmp_path / "absent"), device="cpu")
    with pytest.raises(CritBenchError, match=f"^{flag} has no default critical class .*--param critical=<index or name>: 0 "):
        resolve_config(config)


def test_an_unknown_critical_name_refuses_while_planning(tmp_path):
    config = RunConfig(dataset="dermamnist", method="bce", params={"critical": "melanom"}, data_dir=str(tmp_path))
    with pytest.raises(CritBenchError, match="'melanom' is not one of its labels"):
        resolve_config(config)


def test_dermamnist_default_is_melanoma_against_the_rest(tmp_path, monkeypatch):
    arrays = stand_in("dermamnist", tmp_path, monkeypatch)
    data = create_dataset("dermamnist", size=28, data_dir=tmp_path)
    assert (data.critical_class, data.negative_class) == ("melanoma", "the other 6 classes")
    assert data.train.x.shape[1:] == (3, 28, 28)  # RGB, channels first
    assert data.train.y.tolist() == (arrays["train_labels"].ravel() == 4).astype(int).tolist()
    assert data.record()["critical_labels"] == [4] and data.record()["critical_source"] == "default"


def test_retinamnist_default_is_referable_grade_two_and_up(tmp_path, monkeypatch):
    arrays = stand_in("retinamnist", tmp_path, monkeypatch)
    data = create_dataset("retinamnist", size=28, data_dir=tmp_path)
    assert data.critical_class == "referable retinopathy (grade >= 2)"
    assert data.test.y.tolist() == (arrays["test_labels"].ravel() >= 2).astype(int).tolist()


def test_chestmnist_critical_finding_is_one_column_of_the_multilabel_targets(tmp_path, monkeypatch):
    arrays = stand_in("chestmnist", tmp_path, monkeypatch)
    data = create_dataset("chestmnist", size=28, data_dir=tmp_path, params={"critical": "Pneumothorax"})
    assert data.critical_class == "pneumothorax" and data.negative_class == "the other 13 classes"
    assert data.val.y.tolist() == arrays["val_labels"][:, 7].tolist()
    both = create_dataset("chestmnist", size=28, data_dir=tmp_path, params={"critical": "mass+nodule"})
    assert both.val.y.tolist() == arrays["val_labels"][:, [4, 5]].any(1).astype(int).tolist()
    assert both.record()["critical_source"] == "--param critical"


def test_a_binary_dataset_can_make_its_other_label_critical(tmp_path, monkeypatch):
    arrays = stand_in("breastmnist", tmp_path, monkeypatch)
    data = create_dataset("breastmnist", size=28, data_dir=tmp_path, params={"critical": "normal, benign"})
    assert data.critical_class == "normal, benign" and data.record()["critical_label"] == 1
    assert data.train.y.tolist() == arrays["train_labels"].ravel().tolist()


def test_one_critical_class_written_three_ways_is_one_run(tmp_path):
    """A name in any case, or its index, is one training: one run id, one derived seed."""
    configs = [resolve_config(RunConfig(dataset="breastmnist", method="bce", params={"critical": text},
                                        data_dir=str(tmp_path), device="cpu"))
               for text in ("malignant", "MALIGNANT", "0")]
    assert {config.dataset_params["critical"] for config in configs} == {"0"}
    assert len({run_id(config, None) for config in configs}) == 1
    joined = resolve_config(RunConfig(dataset="chestmnist", method="bce", params={"critical": "nodule+Mass"},
                                      data_dir=str(tmp_path), device="cpu"))
    assert joined.dataset_params == {"critical": "4+5"}
