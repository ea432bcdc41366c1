"""Target encoding and decoding schemes, kept apart from the networks."""
from .geometry import heatmap_to_image, image_to_heatmap
from .onehot import OneHotCodec, OneHotTargets

__all__ = ["OneHotCodec", "OneHotTargets", "image_to_heatmap", "heatmap_to_image"]
