"""Where a run trains and in which precision: the device (`resolve_device`), the precision and why
(`precision_choice`: bf16 autocast where the device computes bf16 natively and every convolution's
feature map is large enough, else fp32), and how a record describes the device."""
from __future__ import annotations

import functools

import torch

from benchmarks.core.cli import counted
from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.machine import BF16_CPU_FLAGS, bf16_cpu_flags, cpu_model
from datasets import get_dataset_entry
from models3d import create_model

# oneDNN's bf16 convolution weight gradients on the CPU return garbage (values up to 1e38, NaN, a
# different result each call) for inputs whose spatial side is tiny: seen with torch 2.14.1 on an AMD
# EPYC (AVX512_BF16, no AMX) for 3D inputs of side 2 (stride 1) and 2D/3D inputs of side 1 (stride 2),
# 32 and 64 channels; sides >= 3 were exact and deterministic (docs/speed.md). So a CPU trains
# in bf16 only when every convolution sees a side of at least this; smaller feature maps train in fp32.
CPU_BF16_MIN_SIDE = 3
# oneDNN's bf16 backward of a 2D 1x1 stride-2 convolution (MONAI ResNets' downsampling shortcut) with
# 8 to 15 input channels aborts or segfaults the process at odd batch sizes with 2 threads (torch 2.14.1,
# AMD EPYC with AVX512_BF16; 2, 4 and >= 16 channels, one thread and 3D were fine: docs/speed.md). So a
# 2D backbone trains in bf16 on a CPU only when every convolution after the stem has at least this
# many input channels (MONAI ResNets at --width >= 0.25, ResNet-32 at width 1).
CPU_BF16_MIN_CHANNELS = 16


def resolve_device(name: str) -> torch.device:
    """`auto` is CUDA when available, else CPU; an explicit CUDA request must be satisfiable."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CritBenchError(f"--device {name} requested but CUDA is not available; use --device cpu or auto")
    return torch.device(name)


def cpu_has_bf16_units() -> bool:
    """True on CPUs with native bf16 (AMX, AVX512_BF16 or AVX-NE-CONVERT: machine.BF16_CPU_FLAGS),
    where oneDNN's bf16 convolutions with channels-last beat fp32 (AMX: docs/speed.md; AVX512_BF16
    without AMX: 2-3.7x per ResNet18 28 px step, issue 15); elsewhere bf16 on the CPU is emulated.
    Where /proc/cpuinfo cannot be read, torch's AMX check decides. Each record's env.cpu_bf16_flags
    says which flags were found."""
    flags = bf16_cpu_flags()
    return bool(flags) if flags is not None else bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)())


@functools.lru_cache(maxsize=None)
def smallest_conv_side(dims: int, size: int, arch: str, stem: str, width: float) -> int:
    """The smallest spatial side any convolution of the backbone sees on `size`-px inputs, traced
    on the meta device (no memory, no arithmetic)."""
    sides = []
    with torch.device("meta"):
        model = create_model(dims, 1, arch=arch, stem=stem, width=width)
        for module in model.modules():  # the model is thrown away: its hooks need no removal
            if isinstance(module, torch.nn.modules.conv._ConvNd):
                module.register_forward_pre_hook(lambda module, args: sides.append(min(args[0].shape[2:])))
        model(torch.empty((2, 1) + (size,) * dims))
    return min(sides)


@functools.lru_cache(maxsize=None)
def narrowest_conv_channels(dims: int, arch: str, stem: str, width: float) -> int:
    """The fewest input channels of any convolution after the stem (the first one, which reads the image)."""
    with torch.device("meta"):
        convs = [m for m in create_model(dims, 1, arch=arch, stem=stem, width=width).modules()
                 if isinstance(m, torch.nn.modules.conv._ConvNd)]
    return min(conv.in_channels for conv in convs[1:])


def precision_choice(config: RunConfig) -> tuple[str, str]:
    """The precision this machine chooses for `config` (its model and size resolved) and why (every
    record's env.precision_reason). Part of a run's identity: the same config on another machine
    class is another run.
    "bf16-autocast" where `amp` is on and the device computes bf16 natively (CUDA; CPUs with
    cpu_has_bf16_units whose convolutions all see sides >= CPU_BF16_MIN_SIDE and, in 2D, read at least
    CPU_BF16_MIN_CHANNELS after the stem, traced only on such a CPU), else "fp32"."""
    kind = ("cuda" if torch.cuda.is_available() else "cpu") if config.device == "auto" else config.device.split(":")[0]
    if not config.amp:
        return "fp32", "amp off (--no-amp)"
    if kind == "cuda":
        return "bf16-autocast", "CUDA"
    if not cpu_has_bf16_units():
        return "fp32", f"this CPU has no native bf16 (none of {', '.join(BF16_CPU_FLAGS)}; emulated bf16 is slower)"
    unsafe = cpu_bf16_hazard(config)
    if unsafe:
        return "fp32", unsafe
    return "bf16-autocast", f"CPU with native bf16 ({', '.join(bf16_cpu_flags() or ['AMX tiles'])})"


def cpu_bf16_hazard(config: RunConfig) -> str | None:
    """Why oneDNN's bf16 would train `config`'s backbone wrongly on a CPU (a feature map below
    CPU_BF16_MIN_SIDE, a 2D convolution below CPU_BF16_MIN_CHANNELS), None where it is safe."""
    dims = get_dataset_entry(config.dataset).dims
    side = smallest_conv_side(dims, config.size, config.model, config.stem, config.width)
    if side < CPU_BF16_MIN_SIDE:
        return (f"a convolution sees a {side}-px feature map, below CPU_BF16_MIN_SIDE={CPU_BF16_MIN_SIDE}: "
                f"oneDNN's bf16 weight gradients are wrong there (docs/speed.md)")
    channels = narrowest_conv_channels(dims, config.model, config.stem, config.width)
    if dims == 2 and channels < CPU_BF16_MIN_CHANNELS:
        return (f"a 2D convolution reads {channels} channels, below CPU_BF16_MIN_CHANNELS="
                f"{CPU_BF16_MIN_CHANNELS}: oneDNN's bf16 backward crashes there at odd batch sizes (docs/speed.md)")
    return None


def check_precision_here(config: RunConfig, device: torch.device) -> None:
    """Refuse a config resolved for bf16 elsewhere (a plan made on a GPU machine) that lands on a CPU
    where bf16 would train its backbone wrongly (`cpu_bf16_hazard`): the precision is part of the
    run's identity, so it is not silently changed."""
    hazard = cpu_bf16_hazard(config) if device.type == "cpu" and config.precision == "bf16-autocast" else None
    if hazard:
        raise CritBenchError(f"this run's config trains in bf16 (resolved on another machine: "
                             f"{config.precision}), but on this CPU {hazard}; run it on a GPU, or resolve it "
                             f"here (rerun the command on this machine, or pass --no-amp) to train in fp32")


def precision_reason(config: RunConfig) -> str:
    """Why a resolved `config` trains in `config.precision` (every record's env.precision_reason)."""
    precision, reason = precision_choice(config)
    return reason if precision == config.precision else f"given in the config, not chosen on this machine ({reason} -> {precision})"


def device_environment(device: torch.device) -> dict:
    """The record's description of the device a run trained on."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu ({cpu_model()}, {counted(torch.get_num_threads(), 'thread')})"
    return {"device": str(device), "device_name": name, "cuda": torch.version.cuda if device.type == "cuda" else None}
