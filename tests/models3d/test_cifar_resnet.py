"""Conformance of `--model resnet32` with kaidic/LDAM-DRW's `models/resnet_cifar.py` (`resnet32`)."""
import math

import pytest
import torch
import torch.nn.functional as F

from benchmarks.core.errors import CritBenchError
from benchmarks.engine.device import smallest_conv_side
from models3d import check_backbone, create_model, list_models
from models3d.cifar_resnet import OptionAShortcut


@pytest.fixture
def resnet32():
    torch.manual_seed(0)
    return create_model(2, 3, arch="resnet32", num_outputs=10)


def test_parameter_count_is_the_reference_table(resnet32):
    """Reference table: `ResNet32  |    32  | 0.46M`. Exactly 464,154 (hand count: stem 432 + 32,
    stage 1 23,360, stage 2 88,192, stage 3 351,488, fc 64 x 10 + 10 = 650)."""
    count = sum(p.numel() for p in resnet32.parameters())
    print(f"ResNet32 parameters: {count}")
    assert count == 464_154 and round(count / 1e6, 2) == 0.46


def test_layer_count_is_32(resnet32):
    """Reference `test()`: `len(list(filter(lambda p: p.requires_grad and len(p.data.size())>1,
    net.parameters())))` prints 32 for resnet32: 31 convolutions (stem + 15 blocks x 2) and `linear`."""
    weights = [p for p in resnet32.parameters() if p.requires_grad and p.ndim > 1]
    assert len(weights) == 32 and sum(w.ndim == 4 for w in weights) == 31


def test_stage_shapes(resnet32):
    """Reference: `conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)`, then
    `_make_layer(block, 16, num_blocks[0], stride=1)`, `(block, 32, ..., stride=2)`, `(block, 64, ..., stride=2)`."""
    shapes = {}
    for name in ("bn1", "layer1", "layer2", "layer3"):
        getattr(resnet32, name).register_forward_hook(lambda m, i, out, name=name: shapes.update({name: out.shape[1:]}))
    assert resnet32.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert shapes == {"bn1": (16, 32, 32), "layer1": (16, 32, 32), "layer2": (32, 16, 16), "layer3": (64, 8, 8)}
    assert resnet32.fc.in_features == 64 and resnet32.fc.out_features == 10  # `nn.Linear(64, num_classes)`


def test_option_a_shortcut_is_the_subsampled_input_zero_padded():
    """Reference: `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes//4, planes//4), "constant", 0)`; with
    other widths the channel difference is split the same way (an odd one puts the extra channel last)."""
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    out = OptionAShortcut(16, 32, 2)(x)
    zeros = torch.zeros(2, 8, 4, 4)
    assert torch.equal(out, torch.cat([zeros, x[:, :, ::2, ::2], zeros], dim=1))
    out.sum().backward()  # gradient flows through the shortcut (MONAI's shortcut_type "A" detaches it)
    assert x.grad[:, :, ::2, ::2].eq(1).all() and x.grad.sum() == x.grad[:, :, ::2, ::2].sum()
    odd = OptionAShortcut(3, 6, 2)(x[:, :3].detach())
    assert odd.shape == (2, 6, 4, 4) and torch.equal(odd[:, 1:4], x[:, :3, ::2, ::2].detach())
    assert not odd[:, [0, 4, 5]].any()


def test_kaiming_normal_init(resnet32):
    """Reference `_weights_init`: `if isinstance(m, nn.Linear) or isinstance(m, nn.Conv2d):
    init.kaiming_normal_(m.weight)` (fan_in, gain sqrt(2)): std sqrt(2 / fan_in), also for the
    stage-entry convolutions whose fan_out differs (MONAI's init uses fan_out)."""
    layers = [m for m in resnet32.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    for layer in layers:
        weight = layer.weight.detach()
        fan_in = weight[0].numel()
        tolerance = 5 / math.sqrt(weight.numel())  # 5 standard errors of a sample std (about 1 / sqrt(2n))
        assert float(weight.std()) == pytest.approx(math.sqrt(2 / fan_in), rel=tolerance)
        assert abs(float(weight.mean())) < 5 * math.sqrt(2 / fan_in / weight.numel())


def test_cosine_head_is_normed_linear_times_scale():
    """Reference `NormedLinear`: `F.normalize(x, dim=1).mm(F.normalize(self.weight, dim=0))` with
    weight (64, num_classes); LDAM's loss multiplies by s=30 (`head="cosine", head_scale=30`)."""
    torch.manual_seed(0)
    model = create_model(2, 3, arch="resnet32", num_outputs=10, head="cosine", head_scale=30.0).eval()
    features = {}
    model.fc.register_forward_hook(lambda m, inputs, out: features.update(x=inputs[0]))
    logits = model(torch.randn(4, 3, 32, 32)).detach()
    reference = F.normalize(features["x"], dim=1).mm(F.normalize(model.fc.weight.t(), dim=0)).detach()
    assert torch.allclose(logits, 30 * reference, atol=1e-5)
    assert logits.abs().max() <= 30 + 1e-4


def test_cosine_head_init_is_normed_linears():
    """Reference `NormedLinear.__init__`: `self.weight = Parameter(torch.Tensor(in_features,
    out_features))`, `self.weight.data.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)` (kaidic/LDAM-DRW
    models/resnet_cifar.py; alm-dnn models/resnet.py alike): each class's weight U(-1, 1) per feature,
    scaled to norm 1, and kept by `self.apply(_weights_init)` (not an nn.Linear). Its norm sets the
    head's effective learning rate (PyTorch's Linear init gave rows of norm ~0.58, 3x the rate)."""
    torch.manual_seed(0)
    model = create_model(2, 3, arch="resnet32", num_outputs=10, head="cosine", head_scale=30.0)
    weight = model.fc.weight.detach()
    assert torch.allclose(weight.norm(dim=1), torch.ones(10), atol=1e-6)
    torch.manual_seed(1)
    model.fc.reset_parameters()  # a fresh head (reset_head) draws the same way
    torch.manual_seed(1)
    expected = F.normalize(torch.empty(10, 64).uniform_(-1, 1), dim=1)  # one class per row here
    assert torch.allclose(model.fc.weight.detach(), expected, atol=1e-6)


def test_shared_head_logic_and_state_dict_round_trip():
    """MaxNorm and the head reset are `ClassifierHead`'s (shared with MONAI's backbones); a fresh head
    is re-initialized as the reference initializes it (kaiming normal); a checkpoint's state_dict
    restores the model exactly."""
    torch.manual_seed(0)
    model = create_model(2, 1, arch="resnet32", num_outputs=10, max_norm=0.5)
    with torch.no_grad():
        model.fc.weight.mul_(100)
    model.constrain_head()
    assert model.fc.weight.norm(dim=1).max() <= 0.5 + 1e-6
    model.reset_head()
    std = float(model.fc.weight.detach().std())
    assert std == pytest.approx(math.sqrt(2 / 64), rel=0.15)  # kaiming normal on fan_in 64 (nn.Linear's own: 0.072)
    copy = create_model(2, 1, arch="resnet32", num_outputs=10)
    copy.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(copy.eval()(x), model.eval()(x))


@pytest.mark.parametrize("width,channels", [(0.1, (1, 3, 6)), (1 / 64, (1, 1, 1)), (0.125, (2, 4, 8))])
def test_any_width_and_grayscale(width, channels):
    model = create_model(2, 1, arch="resnet32", width=width, num_outputs=2).eval()
    assert (model.layer1[0].conv1.out_channels, model.layer2[0].conv1.out_channels,
            model.layer3[0].conv1.out_channels) == channels
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 2)


def test_refusals_and_listing():
    assert "resnet32" in list_models()
    check_backbone("resnet32", "medmnist", 1.0)  # the default stem is the same 3x3 stride-1 stem
    with pytest.raises(CritBenchError, match="--stem standard applies to resnet10, resnet18, resnet34 only"):
        create_model(2, 3, arch="resnet32", stem="standard")
    with pytest.raises(CritBenchError, match="--model resnet32 is a 2D network; for 3D data use resnet10"):
        create_model(3, 1, arch="resnet32")


def test_smallest_conv_side_traces_it():
    """The precision rule's meta-device trace: 28 -> 14 -> 7 px at stride 2, 8 -> 4 -> 2."""
    assert smallest_conv_side(2, 28, "resnet32", "medmnist", 1.0) == 7
    assert smallest_conv_side(2, 8, "resnet32", "medmnist", 0.125) == 2
