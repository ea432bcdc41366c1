"""The interface every keypoint codec implements, and the registry a config picks codecs from.

A codec owns everything that depends on the target scheme, so that a head is a
network and nothing else (as MMPose's codecs, but with the loss and the output
activation included, and without ``nn.Module``: a codec holds no parameters):

* ``encode``: keypoints in RoIs -> training targets for an ``H x W`` heatmap;
* ``loss``: the raw head output against those targets (a pure function of
  :mod:`kpext.modeling.losses`);
* ``activation``: the raw head output -> the heatmaps ``decode`` reads and a
  head returns as ``pred_keypoint_heatmaps`` (e.g. a sigmoid for logits);
* ``decode``: heatmaps in RoIs -> keypoints and scores in image coordinates (a
  :class:`LocatingCodec` writes ``locate``, each map's peak in heatmap coordinates, and
  inherits ``decode``);
* ``predictor_bias`` and ``predictor_std``: how a head's heatmap predictor starts.

Codecs live in :data:`CODEC_REGISTRY`, a Detectron2 (fvcore) ``Registry`` as Detectron2 keeps
its heads in, keyed by each codec's ``name``. Register a new codec with :func:`register_codec`
(or ``@CODEC_REGISTRY.register()``); ``MODEL.KPEXT.TARGET.CODEC`` then selects it for every head
built through :class:`~kpext.modeling.heads.CodecKeypointHead`, with no edit to any head.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional, Tuple, Type

import torch

from detectron2.utils.registry import Registry

from .geometry import heatmap_to_image


class KeypointCodec(ABC):
    """Base of every codec. Subclasses set ``name`` and ``losses`` and implement the
    abstract methods; the targets ``encode`` returns may be any object with an
    R x K bool ``valid`` (which keypoints have a target)."""

    # The name MODEL.KPEXT.TARGET.CODEC uses.
    name: str = ""
    # The loss names the codec implements; the first one is its default.
    losses: Tuple[str, ...] = ()

    @property
    def double_move_cost(self) -> Optional[float]:
        """Person-level left/right decoding (``TEST.KPEXT.LEFT_RIGHT person``): the largest
        drop in map value at which a point of a double (both points of a pair on one spot)
        moves onto its map's second mode; None: doubles stay
        (:func:`~kpext.modeling.codecs.left_right.consistent_left_right`). Default 2.0, for
        logit maps: a second mode at least e^-2 as likely as the shared one."""
        return 2.0

    @property
    def predictor_bias(self) -> float:
        """Initial bias of the heatmap predictor (0: the activation starts at its midpoint)."""
        return 0.0

    @property
    def predictor_std(self) -> Optional[float]:
        """Standard deviation of the heatmap predictor's initial weights; None: the std of
        Detectron2's stock last layer (Kaiming normal, fan_out, of its 4 x 4 deconv to K maps).

        Why it is the codec's: a spatial softmax is invariant to the scale of its logits at the
        start, so it takes stock's start; a regressed heatmap (MSE) is read as it is, so it
        starts small, at the scale whose first gradients match stock's (see the codecs)."""
        return None

    @abstractmethod
    def encode(self, keypoints: torch.Tensor, boxes: torch.Tensor, size: Tuple[int, int]):
        """Training targets.

        Args:
            keypoints: R x K x 3 (x, y, v) in continuous image coordinates.
            boxes: R x 4 RoIs (x0, y0, x1, y1).
            size: (H, W) of the heatmap.
        Returns:
            the codec's targets, with an R x K bool ``valid``.
        """

    @abstractmethod
    def loss(self, raw: torch.Tensor, targets, normalizer: Optional[float] = None) -> torch.Tensor:
        """Scalar loss of the raw R x K x H x W head output against ``encode``'s targets.

        Args:
            normalizer: divide the summed loss by this; None divides by the number
                of valid targets (Detectron2's ``NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS``).
        Returns:
            a scalar, float32 or wider; ``0 * raw.sum()`` when no target is valid, so
            that every parameter stays in the graph (DistributedDataParallel needs that).
        """

    def activation(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw R x K x H x W head output -> the heatmaps :meth:`decode` reads (default: as is)."""
        return raw

    @abstractmethod
    def decode(self, heatmaps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """R x K x H x W heatmaps (after :meth:`activation`), R x 4 boxes (x0, y0, x1, y1)
        -> R x K x 3 (x, y, score) in continuous image coordinates."""

    @classmethod
    def from_config(cls, cfg) -> "KeypointCodec":
        """The codec as ``MODEL.KPEXT`` configures it (default: built without arguments)."""
        return cls()

    @classmethod
    def loss_from_config(cls, cfg) -> str:
        """``MODEL.KPEXT.TARGET.LOSS``, or the codec's default loss when it is empty.

        Raises:
            ValueError: the codec does not implement that loss; the message names the key.
        """
        loss = cfg.MODEL.KPEXT.TARGET.LOSS or cls.losses[0]
        if loss not in cls.losses:
            raise ValueError(
                f"MODEL.KPEXT.TARGET.LOSS must be one of {cls.losses} with the {cls.name!r} "
                f"codec, got {loss!r}"
            )
        return loss


class LocatingCodec(KeypointCodec):
    """A codec that decodes in two steps: :meth:`locate` finds each map's keypoint in
    continuous heatmap coordinates, with its score, and :meth:`decode` maps it into the RoI
    (:func:`~kpext.modeling.codecs.geometry.heatmap_to_image`), the step every such codec
    shares."""

    @abstractmethod
    def locate(self, heatmaps: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """R x K x H x W heatmaps (after :meth:`activation`) -> (R x K x 2 continuous heatmap
        (x, y), R x K score)."""

    def decode(self, heatmaps: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """:meth:`locate`'s positions mapped into the boxes: R x K x 3 (x, y, score) in
        continuous image coordinates."""
        h, w = heatmaps.shape[-2:]
        coords, score = self.locate(heatmaps)
        xy = heatmap_to_image(coords, boxes.detach().to(coords.dtype), (h, w))
        return torch.cat([xy, score[..., None]], dim=2)


def check_loss(codec: KeypointCodec, loss: str) -> None:
    """Raise ValueError unless ``codec`` implements the loss ``loss``."""
    if loss not in codec.losses:
        raise ValueError(
            f"loss must be one of {codec.losses} for the {codec.name!r} codec, got {loss!r}"
        )


class _CodecRegistry(Registry):
    """Detectron2's ``Registry`` keyed by each codec's ``name`` (the spelling
    ``MODEL.KPEXT.TARGET.CODEC`` uses) rather than its class name; ``register`` returns the
    class in both of its forms and refuses a nameless codec or a taken name with ValueError."""

    def register(self, obj: Any = None) -> Any:
        if obj is None:
            return self.register  # @CODEC_REGISTRY.register()
        if not getattr(obj, "name", ""):
            raise ValueError(f"{obj.__name__} needs a name to be registered")
        if obj.name in self:
            if self.get(obj.name) is obj:
                return obj
            raise ValueError(
                f"A codec named {obj.name!r} is already registered: {self.get(obj.name).__name__}"
            )
        self._do_register(obj.name, obj)
        return obj


CODEC_REGISTRY = _CodecRegistry("KEYPOINT_CODEC")
CODEC_REGISTRY.__doc__ = """
Registry for keypoint codecs (:class:`KeypointCodec` subclasses), by their ``name``:
``MODEL.KPEXT.TARGET.CODEC`` picks one.
"""


def register_codec(cls: Type[KeypointCodec]) -> Type[KeypointCodec]:
    """Class decorator: make ``cls`` selectable by its ``name`` (``MODEL.KPEXT.TARGET.CODEC``)
    in :data:`CODEC_REGISTRY`."""
    return CODEC_REGISTRY.register(cls)


def codec_class(name: str) -> Type[KeypointCodec]:
    """The registered codec class called ``name``.

    Raises:
        ValueError: for an unknown name; the message names the key and lists the known ones.
    """
    if name not in CODEC_REGISTRY:
        known = ", ".join(sorted(n for n, _ in CODEC_REGISTRY))
        raise ValueError(
            f"Unknown keypoint codec {name!r} (MODEL.KPEXT.TARGET.CODEC); known codecs: {known}"
        )
    return CODEC_REGISTRY.get(name)


def build_codec(name: str, **kwargs) -> KeypointCodec:
    """A codec by name (``"onehot"``, ``"gaussian"`` or a registered one), built with ``kwargs``."""
    return codec_class(name)(**kwargs)


def build_codec_from_cfg(cfg) -> KeypointCodec:
    """The codec ``MODEL.KPEXT.TARGET.CODEC`` names, configured by its ``from_config``."""
    return codec_class(cfg.MODEL.KPEXT.TARGET.CODEC).from_config(cfg)
