"""Backbones: MONAI's dimension-generic ResNet, one factory for 2D and 3D, and the 2D CIFAR ResNet-32."""
from models3d.cifar_resnet import CifarResNet
from models3d.heads import ClassifierHead, CosineHead
from models3d.resnet import STEMS, Backbone, check_backbone, create_model, list_models

__all__ = ["STEMS", "Backbone", "CifarResNet", "ClassifierHead", "CosineHead", "check_backbone", "create_model",
           "list_models"]
