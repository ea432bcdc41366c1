"""ROI keypoint heads; importing this module registers them in ROI_KEYPOINT_HEAD_REGISTRY."""
from .base import KeypointHeadBase
from .gaussian import GaussianKeypointHead
from .heatmap import HeatmapKeypointHead
from .hourglass import HourglassKeypointHead
from .krcnn import KpextKRCNNHead

__all__ = [
    "KeypointHeadBase",
    "HeatmapKeypointHead",
    "KpextKRCNNHead",
    "GaussianKeypointHead",
    "HourglassKeypointHead",
]
