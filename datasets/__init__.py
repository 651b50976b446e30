"""CritBench dataset adapters. Importing this package registers every adapter.

Note: this top-level package shadows Hugging Face's `datasets`; CritBench never uses that package.
"""
from datasets.base import BinaryDataset, Split
from datasets.loading import create_dataset, dataset_fingerprint, resolve_data_dir
from datasets.registry import LoadRequest, get_dataset_entry, list_datasets, register_dataset
from datasets.stand_in import StandIn
from datasets import cifar, cifar_lt, imagefolder, medmnist_binary, nifti, synthetic  # noqa: F401  (registration)

__all__ = [
    "BinaryDataset", "Split", "LoadRequest", "StandIn", "create_dataset", "dataset_fingerprint",
    "get_dataset_entry", "list_datasets", "register_dataset", "resolve_data_dir",
]
