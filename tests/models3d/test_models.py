import pytest
import torch
import torchvision

from benchmarks.core.errors import CritBenchError
from models3d import create_model


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_2d_resnet18_matches_torchvision_with_the_medmnist_stem():
    reference = torchvision.models.resnet18(num_classes=1)
    reference.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)  # MedMNIST 28-px stem
    assert n_params(create_model(2, 3)) == n_params(reference) == 11_169_345


def test_3d_resnet18_parameter_count():
    # 2D count with every k x k kernel weight becoming k x k x k (hand-checked: 33,140,289).
    assert n_params(create_model(3, 1)) == 33_140_289


@pytest.mark.parametrize("dims,size", [(2, 28), (2, 64), (3, 28), (3, 64)])
def test_single_logit_output(dims, size):
    model = create_model(dims, 1, width=0.125).eval()
    assert model(torch.zeros((2, 1) + (size,) * dims)).shape == (2, 1)


def test_stems_differ_only_in_the_first_layer_and_resolution():
    medmnist = create_model(2, 1, width=0.125)
    standard = create_model(2, 1, width=0.125, stem="standard")
    assert medmnist.conv1.stride == (1, 1) and standard.conv1.stride == (2, 2)
    assert medmnist.no_max_pool and not standard.no_max_pool
    features = {}

    def keep(name):
        def hook(module, inputs, output):
            features[name] = output.shape
        return hook

    medmnist.layer4.register_forward_hook(keep("medmnist"))
    standard.layer4.register_forward_hook(keep("standard"))
    x = torch.zeros(2, 1, 28, 28)
    medmnist.eval()(x), standard.eval()(x)
    assert features["medmnist"][-1] == 4 and features["standard"][-1] == 1


def test_bad_arguments_are_user_errors():
    with pytest.raises(CritBenchError, match="valid: resnet10, resnet18, resnet32, resnet34"):
        create_model(2, 1, arch="vgg")
    with pytest.raises(CritBenchError, match="stem"):
        create_model(2, 1, stem="big")
    with pytest.raises(CritBenchError, match="dims"):
        create_model(4, 1)
