"""kpext models: a ResNet-18/34 + FPN backbone at any width, codecs (targets <-> heatmaps),
losses and registered ROI keypoint heads."""

from . import backbone, codecs, losses
from .heads import KeypointHeadBase, KpextKRCNNHead

__all__ = ["backbone", "codecs", "losses", "KeypointHeadBase", "KpextKRCNNHead"]
