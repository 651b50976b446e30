"""`python -m datasets.export --dataset D --split S --to DIR`: a dataset's images as NIfTI files.

Writes `DIR/<split>/<index>.nii.gz` (uint8, identity affine: array axes are the canonical RAS+
axes) and, last and atomically, `DIR/labels.csv` (`path,label,split`, label 1 = the critical
class; a folder without it holds no finished export, and a rerun replaces its files), to open the
volumes in ITK-SNAP or 3D Slicer, or to train on them with `--dataset nifti --data-dir DIR`,
which gives the same tensors (its default min-max scaling is exact for volumes spanning 0..255,
as VesselMNIST3D's do; `--param normalize=none` is exact for any uint8 data) and, for MedMNIST
data, the same network input (3D in [0, 1], 2D in [-1, 1]). The dataset is
exported as its adapter loads it: no imbalance injection or subsetting.
"""
from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.core.cli import ArgumentParser, fail, parse_key_values
from benchmarks.core.errors import CritBenchError
from datasets import list_datasets
from datasets.base import SPLITS
from datasets.loading import load_request
from datasets.nifti import check_export_target, export_nifti

__all__ = ["export_nifti", "main"]


def build_parser() -> ArgumentParser:
    """The flags of `python -m datasets.export`."""
    parser = ArgumentParser(prog="python -m datasets.export", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help=f"one of {', '.join(list_datasets())}")
    parser.add_argument("--split", default="all", choices=SPLITS + ("all",), help="which split (default all)")
    parser.add_argument("--to", required=True, help="output folder")
    parser.add_argument("--size", type=int, help="image side (default: the dataset's)")
    parser.add_argument("--data-dir", help="where the dataset lives (default $CRITBENCH_DATA, else its default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of datasets whose splits are drawn (default 0)")
    parser.add_argument("--param", action="append", metavar="KEY=VALUE", help="dataset parameter; repeatable")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing labels.csv")
    return parser


def main(argv=None) -> int:
    """Export a dataset's splits as NIfTI files plus `labels.csv`; the exit code (2: bad input, 130: Ctrl-C)."""
    args = build_parser().parse_args(argv)
    folder = Path(args.to).expanduser()
    splits = SPLITS if args.split == "all" else (args.split,)
    try:
        if args.dataset not in list_datasets():
            raise CritBenchError(f"unknown --dataset {args.dataset!r}; valid: {', '.join(list_datasets())}")
        entry, request = load_request(args.dataset, size=args.size, data_dir=args.data_dir, seed=args.seed,
                                      params=parse_key_values(args.param))
        check_export_target(folder, splits, args.overwrite)  # before the data is loaded
        dataset = entry.loader(request)
        table = export_nifti(dataset, splits, folder, args.overwrite)
    except (CritBenchError, ValueError) as error:
        return fail(str(error))
    except KeyboardInterrupt:
        return fail(f"interrupted; {folder / 'labels.csv'} was not written, so {folder} holds no finished export: "
                    f"rerun the command", code=130)
    count = sum(len(dataset.splits[split]) for split in splits)
    print(f"wrote {count} files and {table} (label 1 = {dataset.critical_class}, 0 = {dataset.negative_class})",
          file=sys.stderr)
    print(table.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
