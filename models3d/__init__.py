"""Backbones: MONAI's dimension-generic ResNet, one factory for 2D and 3D."""
from models3d.resnet import STEMS, create_model, list_models

__all__ = ["STEMS", "create_model", "list_models"]
