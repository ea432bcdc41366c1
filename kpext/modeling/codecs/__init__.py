"""Target encoding and decoding schemes, kept apart from the networks."""
from .gaussian import GaussianCodec, GaussianTargets
from .geometry import heatmap_to_image, image_to_heatmap
from .onehot import OneHotCodec, OneHotTargets

CODECS = {OneHotCodec.name: OneHotCodec, GaussianCodec.name: GaussianCodec}


def build_codec(name: str, **kwargs):
    """A codec by name (``"onehot"`` or ``"gaussian"``), built with ``kwargs``.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    if name not in CODECS:
        raise ValueError(f"Unknown keypoint codec {name!r}; known codecs: {', '.join(sorted(CODECS))}")
    return CODECS[name](**kwargs)


__all__ = [
    "OneHotCodec",
    "OneHotTargets",
    "GaussianCodec",
    "GaussianTargets",
    "build_codec",
    "image_to_heatmap",
    "heatmap_to_image",
]
