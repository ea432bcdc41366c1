"""CodecKeypointHead: the base of heads whose codec is chosen in the config, ``MODEL.KPEXT.TARGET``.

The Gaussian and hourglass heads build on it; :class:`KpextKRCNNHead` does not,
since it fixes Detectron2's one-hot codec and loss to stay identical to
Detectron2's head.
"""

from __future__ import annotations

from ..codecs import KeypointCodec, build_codec_from_cfg
from .base import KeypointHeadBase, common_head_args


class CodecKeypointHead(KeypointHeadBase):
    """A keypoint head trained and decoded with any registered codec: the one
    ``MODEL.KPEXT.TARGET.CODEC`` names, or any :class:`KeypointCodec` passed in.

    ``layers`` may return one or more stages of heatmaps, each supervised with the
    codec's loss and its own weight (intermediate supervision); the last stage is
    decoded. Subclasses build the network, then call :func:`init_heatmap_layers`
    with ``self.codec``; their ``from_config`` adds :meth:`common_args`.
    """

    def __init__(self, *, codec: KeypointCodec, soft_argmax_beta: float = 20.0, **kwargs):
        """See :class:`KeypointHeadBase`; only ``soft_argmax_beta``'s default differs (20: heatmap
        heights are about 0-1, so the soft-argmax needs a sharper softmax than on logits)."""
        super().__init__(codec=codec, soft_argmax_beta=soft_argmax_beta, **kwargs)

    @staticmethod
    def common_args(cfg, input_shape) -> dict:
        """Constructor arguments every codec head reads from the config: every kpext head's
        (:func:`~kpext.modeling.heads.base.common_head_args`: K, loss weight and normaliser,
        OKS loss, test-time decoder, facing branch on ``input_shape``'s channels), and the
        codec and soft-argmax from ``MODEL.KPEXT.TARGET``."""
        return {
            **common_head_args(cfg, input_shape),
            "codec": build_codec_from_cfg(cfg),
            "soft_argmax_beta": cfg.MODEL.KPEXT.TARGET.SOFT_ARGMAX_BETA,
        }
