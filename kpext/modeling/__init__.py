"""kpext models: codecs (targets <-> heatmaps), losses and registered ROI keypoint heads."""

from . import codecs, losses
from .heads import KeypointHeadBase, KpextKRCNNHead

__all__ = ["codecs", "losses", "KeypointHeadBase", "KpextKRCNNHead"]
