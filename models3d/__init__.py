"""Backbones: MONAI's dimension-generic ResNet, one factory for 2D and 3D."""
from models3d.resnet import STEMS, Backbone, check_backbone, create_model, list_models

__all__ = ["STEMS", "Backbone", "check_backbone", "create_model", "list_models"]
