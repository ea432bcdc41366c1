"""ROI keypoint heads; importing this module registers them in ROI_KEYPOINT_HEAD_REGISTRY."""

from .base import KeypointHeadBase, init_heatmap_layers
from .codec_head import CodecKeypointHead
from .gaussian import GaussianKeypointHead
from .hourglass import HourglassKeypointHead
from .krcnn import KpextKRCNNHead, KRCNNCodecKeypointHead
from .simcc import SimCCKeypointHead

__all__ = [
    "KeypointHeadBase",
    "CodecKeypointHead",
    "KpextKRCNNHead",
    "KRCNNCodecKeypointHead",
    "GaussianKeypointHead",
    "HourglassKeypointHead",
    "SimCCKeypointHead",
    "init_heatmap_layers",
]
