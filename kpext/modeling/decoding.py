"""Test-time decoding, one object every kpext head shares: the flip test and the decode.

A head is a network plus a codec; what it does at test time beyond its network's single pass
is chosen by ``TEST.KPEXT`` and applies to any head alike, so it lives here, in
:class:`TestTimeDecoder`, built by ``TestTimeDecoder.from_config(cfg)``:

* the flip test (``TEST.KPEXT.FLIP``): the network also sees the mirrored RoI features, its
  heatmaps are mirrored back with their left/right channels exchanged (the training sets' flip
  map) and averaged with the plain pass's (:meth:`TestTimeDecoder.heatmaps`);
* the decode (:meth:`TestTimeDecoder.decode`): the codec's, keypoint by keypoint, then with
  ``TEST.KPEXT.LEFT_RIGHT`` "person" one left/right orientation per person
  (:func:`~kpext.modeling.codecs.left_right.consistent_left_right`), helped, when the head has
  a facing branch, by its probabilities (:func:`orientation_costs`, weighted by
  ``MODEL.KPEXT.FACING.DECODE_WEIGHT``).

The decoder holds no parameters, only non-persistent buffers (so checkpoints do not change),
and stays traceable: no host reads, no Python branch on a tensor's values, no select between
boolean tensors (onnxruntime has no boolean Where kernel; see ``codecs/left_right.py``).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import nn

from detectron2.data.detection_utils import create_keypoint_hflip_indices

from ..data.facing import FACING_CLASSES
from .codecs import KeypointCodec
from .codecs.left_right import consistent_left_right, left_right_pairs_of

__all__ = [
    "LEFT_RIGHT_MODES",
    "TestTimeDecoder",
    "average_with_mirrored",
    "decode_traceable",
    "orientation_costs",
    "training_flip_indices",
]

LEFT_RIGHT_MODES = ("keypoint", "person")


def training_flip_indices(cfg, needed_by: str) -> List[int]:
    """K indices, the keypoint each one becomes in a mirrored image, from the training
    datasets' flip map (Detectron2's ``create_keypoint_hflip_indices``); ``needed_by`` names
    the option in the error when the config has no training set to read it from."""
    if not cfg.DATASETS.TRAIN:
        raise ValueError(f"{needed_by} needs DATASETS.TRAIN to read the keypoint flip map from")
    return [int(i) for i in create_keypoint_hflip_indices(cfg.DATASETS.TRAIN)]


def flip_test_indices(cfg) -> Optional[List[int]]:
    """The flip test's K indices when ``TEST.KPEXT.FLIP`` is on, else None (no flip test)."""
    if not cfg.TEST.KPEXT.FLIP:
        return None
    return training_flip_indices(cfg, "TEST.KPEXT.FLIP")


def person_left_right_pairs(cfg) -> Tuple[Tuple[int, int], ...]:
    """The training sets' (left, right) pairs when ``TEST.KPEXT.LEFT_RIGHT`` is "person", else
    none (keypoint-wise decoding); another mode is refused, naming the key."""
    mode = cfg.TEST.KPEXT.LEFT_RIGHT
    if mode not in LEFT_RIGHT_MODES:
        raise ValueError(f"TEST.KPEXT.LEFT_RIGHT must be one of {LEFT_RIGHT_MODES}, got {mode!r}")
    if mode == "keypoint":
        return ()
    return left_right_pairs_of(training_flip_indices(cfg, "TEST.KPEXT.LEFT_RIGHT person"))


def average_with_mirrored(
    heatmaps: torch.Tensor, mirrored: torch.Tensor, flip_index: torch.Tensor
) -> torch.Tensor:
    """The flip test's average: R x K x H x W ``heatmaps`` of the plain input and
    ``mirrored``, those of its horizontal mirror, mirrored back with their channels permuted
    by ``flip_index`` (K, a left keypoint of the mirror is the right one of the input)."""
    return (heatmaps + mirrored.flip(-1).index_select(1, flip_index)) / 2


def orientation_costs(probabilities: torch.Tensor, weight: float) -> torch.Tensor:
    """R x 2 costs, for the left/right decoder, of orientation +1 (left points at larger x: a
    front view) and -1 (a back view): ``weight`` times the probability of the other view, from
    R x 4 facing probabilities (:data:`~kpext.data.facing.FACING_CLASSES` order). Profile
    probability costs neither."""
    front = probabilities[:, FACING_CLASSES.index("front")]
    back = probabilities[:, FACING_CLASSES.index("back")]
    return weight * torch.stack([back, front], dim=1)


def decode_traceable(
    decode, heatmaps: torch.Tensor, boxes: torch.Tensor, *per_roi: Optional[torch.Tensor]
) -> torch.Tensor:
    """``decode(heatmaps, boxes, *per_roi)``; while tracing, with one dummy RoI appended (to
    the heatmaps, boxes and every per-RoI tensor) and its row dropped: a trace replays the
    decoders' ``reshape(r, k, -1)`` on zero RoIs, where -1 is undefined (the eager decoders
    return early for R = 0, a branch a trace cannot keep)."""
    if not torch.jit.is_tracing():
        return decode(heatmaps, boxes, *per_roi)
    dummy_map = heatmaps.new_zeros((1,) + tuple(heatmaps.shape[1:]))
    dummy_box = boxes.new_tensor([[0.0, 0.0, 1.0, 1.0]])
    extras = [
        None if t is None else torch.cat([t, t.new_zeros((1,) + tuple(t.shape[1:]))])
        for t in per_roi
    ]
    return decode(torch.cat([heatmaps, dummy_map]), torch.cat([boxes, dummy_box]), *extras)[:-1]


class TestTimeDecoder(nn.Module):
    """The test-time choices every kpext head shares: flip test and left/right decoding.

    ``heatmaps(run, x)``: R x C x S x S features -> R x K x H x W inference heatmaps,
    flip-averaged when ``flip_indices`` is set. ``decode(codec, heatmaps, boxes, facing)``:
    -> R x K x 3 (x, y, score) image keypoints, one orientation per person when
    ``left_right_pairs`` is set.
    """

    # pytest would collect a class named Test*; this is no test.
    __test__ = False

    def __init__(
        self,
        *,
        num_keypoints: int,
        flip_indices: Optional[Sequence[int]] = None,
        left_right_pairs: Sequence[Tuple[int, int]] = (),
        facing_decode_weight: float = 0.0,
    ):
        """
        Args:
            num_keypoints: K.
            flip_indices: K indices, the keypoint each one becomes in a mirrored image
                (``TEST.KPEXT.FLIP``); None disables the flip test.
            left_right_pairs: (left, right) keypoint index pairs decoded with one side
                assignment per person (``TEST.KPEXT.LEFT_RIGHT`` "person"); () decodes each
                keypoint on its own.
            facing_decode_weight: with facing probabilities and ``left_right_pairs``, the cost
                (in heatmap units) of a person orientation times the probability of the other
                view (:func:`orientation_costs`; ``MODEL.KPEXT.FACING.DECODE_WEIGHT``).
        """
        super().__init__()
        self.num_keypoints = num_keypoints
        self.facing_decode_weight = facing_decode_weight
        # Buffers, not Python lists: on the head's device, never copied there per forward;
        # non-persistent: test-time choices stay out of checkpoints.
        self.register_buffer(
            "left_right_pairs",
            torch.tensor(list(left_right_pairs), dtype=torch.long).reshape(-1, 2),
            persistent=False,
        )
        self.flip_indices = flip_indices

    @classmethod
    def from_config(cls, cfg) -> "TestTimeDecoder":
        """``TEST.KPEXT.FLIP`` and ``LEFT_RIGHT`` (the flip map and pairs of the training sets)
        and ``MODEL.KPEXT.FACING.DECODE_WEIGHT``, for ``MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS``."""
        return cls(
            num_keypoints=cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS,
            flip_indices=flip_test_indices(cfg),
            left_right_pairs=person_left_right_pairs(cfg),
            facing_decode_weight=cfg.MODEL.KPEXT.FACING.DECODE_WEIGHT,
        )

    @property
    def flip_indices(self) -> Optional[List[int]]:
        """K indices, the keypoint each one becomes in a mirrored image; None: no flip test."""
        return self._flip_indices

    @flip_indices.setter
    def flip_indices(self, indices: Optional[Sequence[int]]) -> None:
        if indices is not None and sorted(indices) != list(range(self.num_keypoints)):
            raise ValueError(
                f"flip_indices must be a permutation of {self.num_keypoints} keypoints, "
                f"got {list(indices)}"
            )
        self._flip_indices = None if indices is None else [int(i) for i in indices]
        index = None
        if indices is not None:
            device = self.left_right_pairs.device
            index = torch.tensor(self._flip_indices, dtype=torch.long, device=device)
        self.register_buffer("flip_index", index, persistent=False)

    def heatmaps(
        self, run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor
    ) -> torch.Tensor:
        """R x K x H x W inference heatmaps of R x C x S x S features: ``run(x)`` (the network's
        last stage under the codec's activation), averaged with the mirrored features' when
        the flip test is on (:func:`average_with_mirrored`)."""
        heatmaps = run(x)
        if self.flip_index is None:
            return heatmaps
        return average_with_mirrored(heatmaps, run(x.flip(-1)), self.flip_index)

    def decode(
        self,
        codec: KeypointCodec,
        heatmaps: torch.Tensor,
        boxes: torch.Tensor,
        facing: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """R x K x H x W heatmaps (the codec's activation), R x 4 boxes -> R x K x 3 (x, y,
        score): the codec's decode; then, with ``left_right_pairs``, one orientation per
        person, helped by the R x 4 ``facing`` probabilities when given."""
        keypoints = codec.decode(heatmaps, boxes)
        if self.left_right_pairs.numel() == 0:
            return keypoints
        prior = None if facing is None else orientation_costs(facing, self.facing_decode_weight)
        return consistent_left_right(
            keypoints,
            heatmaps,
            boxes,
            self.left_right_pairs,
            orientation_cost=prior,
            max_move_cost=codec.double_move_cost,
        )

    def extra_repr(self) -> str:
        pairs = self.left_right_pairs.shape[0]
        return f"flip_test={self.flip_index is not None}, left_right_pairs={pairs}"
