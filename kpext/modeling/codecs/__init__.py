"""Target encoding and decoding schemes, kept apart from the networks.

Every codec implements :class:`KeypointCodec` (encode, loss, activation, decode);
``MODEL.KPEXT.TARGET.CODEC`` picks a registered one by name.
"""

from .base import (
    CODEC_REGISTRY,
    KeypointCodec,
    build_codec,
    build_codec_from_cfg,
    codec_class,
    register_codec,
)
from .gaussian import GaussianCodec, GaussianTargets
from .geometry import heatmap_to_image, image_to_heatmap
from .onehot import OneHotCodec, OneHotTargets
from .softmax_gaussian import SoftmaxGaussianCodec

__all__ = [
    "CODEC_REGISTRY",
    "KeypointCodec",
    "register_codec",
    "codec_class",
    "build_codec",
    "build_codec_from_cfg",
    "OneHotCodec",
    "OneHotTargets",
    "GaussianCodec",
    "GaussianTargets",
    "SoftmaxGaussianCodec",
    "image_to_heatmap",
    "heatmap_to_image",
]
