"""kpext models: a ResNet-18/34 + FPN backbone at any width, codecs (targets <-> heatmaps),
losses, the test-time decoder every head shares and registered ROI keypoint heads."""

from . import backbone, codecs, decoding, losses
from .decoding import TestTimeDecoder
from .heads import KeypointHeadBase, KpextKRCNNHead

__all__ = [
    "backbone",
    "codecs",
    "decoding",
    "losses",
    "KeypointHeadBase",
    "KpextKRCNNHead",
    "TestTimeDecoder",
]
