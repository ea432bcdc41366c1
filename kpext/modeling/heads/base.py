"""The part every kpext keypoint head shares: targets, loss and decoding around a network.

A head turns pooled RoI features into heatmaps (``layers``); pooling and routing
stay in Detectron2's ROI heads. Targets, loss, output activation and decoding come
from a codec (:class:`~kpext.modeling.codecs.KeypointCodec`), so the same network
can be trained with another scheme and a new scheme serves every head. Also here:
the config readers and the weight initialisation the heads share.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from detectron2.data.detection_utils import create_keypoint_hflip_indices
from detectron2.structures import Instances
from detectron2.utils.events import get_event_storage

from ...data import dataset_oks_sigmas
from ..codecs import KeypointCodec
from ..codecs.geometry import heatmap_to_image
from ..codecs.left_right import consistent_left_right, left_right_pairs_of
from ..losses import facing_loss, oks_loss, soft_argmax_2d
from .facing import FacingBranch, orientation_costs


def gather_keypoint_targets(instances: List[Instances]):
    """Concatenate training RoIs and their ground-truth keypoints over images.

    Returns:
        (R x K x 3 keypoints in continuous image coordinates, R x 4 proposal boxes).
    """
    keypoints = [i.gt_keypoints.tensor for i in instances if len(i)]
    boxes = [i.proposal_boxes.tensor for i in instances if len(i)]
    if not keypoints:
        return None, None
    return torch.cat(keypoints), torch.cat(boxes)


def instance_count(instances: Instances) -> Union[int, torch.Tensor]:
    """The number of predictions of one image, read from its boxes' tensor shape: while tracing
    that is a traced size, so an exported model splits by each image's own count (``len()``
    returns a Python int, which tracing would freeze into a constant)."""
    if instances.has("pred_boxes"):
        return instances.pred_boxes.tensor.shape[0]
    return len(instances)


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


def attach_predictions(
    instances: List[Instances],
    keypoints: torch.Tensor,
    heatmaps: torch.Tensor,
    facing: Optional[torch.Tensor] = None,
) -> None:
    """Split R x K x 3 keypoints, R x K x H x W heatmaps and, when given, R x 4 facing
    probabilities (``pred_facing``) back onto each image's instances."""
    counts = [instance_count(i) for i in instances]
    for inst, kp, hm in zip(instances, keypoints.split(counts), heatmaps.split(counts)):
        inst.pred_keypoints = kp
        inst.pred_keypoint_heatmaps = hm
    if facing is not None:
        for inst, probabilities in zip(instances, facing.split(counts)):
            inst.pred_facing = probabilities


def keypoint_loss_normalizer(cfg, num_keypoints: int) -> Union[str, float]:
    """Detectron2's keypoint loss normaliser, for every kpext head:
    ``MODEL.ROI_KEYPOINT_HEAD.NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS`` -> "visible" (divide by the
    number of keypoints with a target), else a constant per image, K x RoIs x positive fraction."""
    if cfg.MODEL.ROI_KEYPOINT_HEAD.NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS:
        return "visible"
    roi_heads = cfg.MODEL.ROI_HEADS
    return num_keypoints * roi_heads.BATCH_SIZE_PER_IMAGE * roi_heads.POSITIVE_FRACTION


def loss_args(cfg, num_keypoints: int) -> dict:
    """``loss_weight`` and ``loss_normalizer`` for a head's ``from_config``: Detectron2's
    ``MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT`` and ``NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS``."""
    return {
        "loss_weight": cfg.MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT,
        "loss_normalizer": keypoint_loss_normalizer(cfg, num_keypoints),
    }


def oks_loss_args(cfg, num_keypoints: int) -> dict:
    """``oks_loss_weight`` and ``oks_sigmas`` for a head's ``from_config``.

    Sigmas: ``TEST.KEYPOINT_OKS_SIGMAS`` if set, else the first training
    dataset's (see :func:`kpext.data.dataset_oks_sigmas`); only looked up when the loss is on.
    """
    weight = cfg.MODEL.KPEXT.OKS_LOSS_WEIGHT
    if weight <= 0:
        return {"oks_loss_weight": 0.0, "oks_sigmas": ()}
    sigmas = list(cfg.TEST.KEYPOINT_OKS_SIGMAS)
    if cfg.DATASETS.TRAIN:
        sigmas = dataset_oks_sigmas(cfg.DATASETS.TRAIN[0], sigmas)
    return {"oks_loss_weight": weight, "oks_sigmas": sigmas}


def training_flip_indices(cfg, needed_by: str) -> List[int]:
    """K indices, the keypoint each one becomes in a mirrored image, from the training
    datasets' flip map (Detectron2's ``create_keypoint_hflip_indices``); ``needed_by`` names
    the option in the error when the config has no training set to read it from."""
    if not cfg.DATASETS.TRAIN:
        raise ValueError(f"{needed_by} needs DATASETS.TRAIN to read the keypoint flip map from")
    return [int(i) for i in create_keypoint_hflip_indices(cfg.DATASETS.TRAIN)]


def average_with_mirrored(
    heatmaps: torch.Tensor, mirrored: torch.Tensor, flip_index: torch.Tensor
) -> torch.Tensor:
    """The flip test's average: R x K x H x W ``heatmaps`` of the plain input and
    ``mirrored``, those of its horizontal mirror, mirrored back with their channels permuted
    by ``flip_index`` (K, a left keypoint of the mirror is the right one of the input)."""
    return (heatmaps + mirrored.flip(-1).index_select(1, flip_index)) / 2


def flip_test_args(cfg) -> dict:
    """``flip_indices`` for a head's ``from_config``: from the training datasets' flip map
    when ``TEST.KPEXT.FLIP`` is on."""
    if not cfg.TEST.KPEXT.FLIP:
        return {"flip_indices": None}
    return {"flip_indices": training_flip_indices(cfg, "TEST.KPEXT.FLIP")}


LEFT_RIGHT_MODES = ("keypoint", "person")


def left_right_args(cfg) -> dict:
    """``left_right_pairs`` for a head's ``from_config``: the training datasets' (left, right)
    pairs when ``TEST.KPEXT.LEFT_RIGHT`` is "person", else none (keypoint-wise decoding)."""
    mode = cfg.TEST.KPEXT.LEFT_RIGHT
    if mode not in LEFT_RIGHT_MODES:
        raise ValueError(f"TEST.KPEXT.LEFT_RIGHT must be one of {LEFT_RIGHT_MODES}, got {mode!r}")
    if mode == "keypoint":
        return {"left_right_pairs": ()}
    flip = training_flip_indices(cfg, "TEST.KPEXT.LEFT_RIGHT person")
    return {"left_right_pairs": left_right_pairs_of(flip)}


def facing_args(cfg, input_shape) -> dict:
    """The facing branch's arguments for a head's ``from_config``: ``MODEL.KPEXT.FACING``
    (its loss weight, 0 = no branch, and its weight in left/right decoding) and the pooled
    features' channels."""
    facing = cfg.MODEL.KPEXT.FACING
    return {
        "facing_loss_weight": facing.LOSS_WEIGHT,
        "facing_decode_weight": facing.DECODE_WEIGHT,
        "facing_in_channels": input_shape.channels,
    }


def _last_stage(outputs):
    return outputs[-1] if isinstance(outputs, (list, tuple)) else outputs


def init_heatmap_layers(
    module: nn.Module, predictors: Sequence[nn.Module], codec: KeypointCodec
) -> None:
    """He init (fan_out, ReLU; Detectron2's stock head) for the hidden convs of ``module``; the
    heatmap predictors as the codec asks (``KeypointCodec.predictor_std``, None meaning
    :func:`stock_predictor_std`, and ``predictor_bias``): what the first gradients reaching the
    convs depend on."""
    predictor_ids = {id(p) for p in predictors}
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and id(m) not in predictor_ids:
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for predictor in predictors:
        std = codec.predictor_std
        nn.init.normal_(
            predictor.weight, std=stock_predictor_std(predictor) if std is None else std
        )
        nn.init.constant_(predictor.bias, codec.predictor_bias)


def stock_predictor_std(predictor: nn.Module) -> float:
    """The initial weight std that gives ``predictor`` the logit scale of Detectron2's stock last
    layer. Stock's is a 4 x 4 stride-2 transposed conv from C channels, Kaiming normal with
    torch's fan_out (16 C): std sqrt(2 / 16 C); each output sums 2 x 2 taps per channel, so its
    logits have variance 4 C * 2 / 16 C = 0.5 per unit input. A transposed conv gets stock's
    rule; a k x k conv from C channels gets sqrt(0.5 / (k^2 C)), the same logit variance (its
    own Kaiming fan_out, K, would start a 1 x 1 predictor several times larger)."""
    weight = predictor.weight
    taps = weight[0, 0].numel()
    if isinstance(predictor, nn.ConvTranspose2d):
        return math.sqrt(2.0 / (weight.shape[0] * taps))
    return math.sqrt(0.5 / (weight.shape[1] * taps))


def _event_storage():
    """The trainer's event storage, or None outside a trainer (tests, scripts)."""
    try:
        return get_event_storage()
    except AssertionError:
        return None


def record_skipped_batch() -> None:
    """Count batches without any usable keypoint target, as Detectron2 does."""
    storage = _event_storage()
    if storage is None:
        return
    skipped = storage.latest().get("kpts_num_skipped_batches", (0, 0))[0] + 1
    storage.put_scalar("kpts_num_skipped_batches", skipped, smoothing_hint=False)


class KeypointHeadBase(nn.Module):
    """forward(x, instances): R x C x S x S pooled features -> losses (train) or instances.

    Subclasses define ``layers(x)``, returning R x K x H x W raw heatmaps or, for
    heads with intermediate supervision, a list of them (one per stage, the last
    one decoded). Each stage is trained with the codec's loss and its own weight;
    the base adds the optional OKS loss on soft-argmax coordinates of the last
    stage. In inference, the codec's activation of the last stage is decoded:
    ``pred_keypoints`` (N x K x 3: x, y, score in image coordinates) and
    ``pred_keypoint_heatmaps`` (N x K x H x W) are set on each image's instances.
    """

    def __init__(
        self,
        *,
        num_keypoints: int,
        codec: KeypointCodec,
        loss_weight: float = 1.0,
        loss_normalizer: Union[str, float] = "visible",
        stage_loss_weights: Sequence[float] = (1.0,),
        oks_loss_weight: float = 0.0,
        oks_sigmas: Sequence[float] = (),
        soft_argmax_beta: float = 1.0,
        flip_indices: Optional[Sequence[int]] = None,
        left_right_pairs: Sequence[Tuple[int, int]] = (),
        facing_loss_weight: float = 0.0,
        facing_decode_weight: float = 0.0,
        facing_in_channels: int = 0,
    ):
        """
        Args:
            num_keypoints: K.
            codec: targets, loss, output activation and decoding (see ``kpext.modeling.codecs``).
            loss_weight: weight of the heatmap loss.
            loss_normalizer: "visible" (divide by the keypoints with a target) or a number
                per image.
            stage_loss_weights: loss weight of each stage's heatmaps (intermediate supervision),
                one per stage ``layers`` returns.
            oks_loss_weight: weight of ``1 - OKS`` on soft-argmax coordinates; 0 disables it.
            oks_sigmas: K per-keypoint OKS sigmas (required when the OKS loss is on).
            soft_argmax_beta: temperature of the soft-argmax: softmax(beta * raw heatmap).
            flip_indices: K indices, the keypoint each one becomes in a mirrored image
                (``TEST.KPEXT.FLIP``); None disables the flip test.
            left_right_pairs: (left, right) keypoint index pairs decoded with one side
                assignment per person (``TEST.KPEXT.LEFT_RIGHT`` "person"; see
                :func:`~kpext.modeling.codecs.left_right.consistent_left_right`); () decodes
                each keypoint on its own.
            facing_loss_weight: weight of the facing branch's cross-entropy (targets
                ``gt_facing`` from annotations with a ``"yaw"``); 0: no facing branch.
            facing_decode_weight: with a facing branch and ``left_right_pairs``, the cost (in
                heatmap units) of a person orientation times the probability of the other view
                (:func:`~kpext.modeling.heads.facing.orientation_costs`).
            facing_in_channels: channels of the pooled features (the branch's input).
        """
        super().__init__()
        if oks_loss_weight > 0 and len(oks_sigmas) != num_keypoints:
            raise ValueError(
                f"The OKS loss needs {num_keypoints} OKS sigmas, got {len(oks_sigmas)} "
                "(set TEST.KEYPOINT_OKS_SIGMAS or register the dataset with its sigmas)"
            )
        self.num_keypoints = num_keypoints
        self.codec = codec
        self.loss_weight = loss_weight
        self.loss_normalizer = loss_normalizer
        self.stage_loss_weights = list(stage_loss_weights)
        self.oks_loss_weight = oks_loss_weight
        self.soft_argmax_beta = soft_argmax_beta
        self.register_buffer(
            "oks_sigmas", torch.tensor(list(oks_sigmas), dtype=torch.float32), persistent=False
        )
        self.flip_indices = flip_indices
        self.register_buffer(
            "left_right_pairs",
            torch.tensor(list(left_right_pairs), dtype=torch.long).reshape(-1, 2),
            persistent=False,
        )
        if facing_loss_weight > 0 and facing_in_channels <= 0:
            raise ValueError("the facing branch needs facing_in_channels (the pooled features')")
        self.facing_loss_weight = facing_loss_weight
        self.facing_decode_weight = facing_decode_weight
        self.facing = FacingBranch(facing_in_channels) if facing_loss_weight > 0 else None

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
        # Also as a (non-persistent) buffer on the head's device: indexing with the Python
        # list would copy it to the device at every flip-tested forward.
        index = None
        if indices is not None:
            index = torch.tensor(
                self._flip_indices, dtype=torch.long, device=self.oks_sigmas.device
            )
        self.register_buffer("flip_index", index, persistent=False)

    def layers(self, x: torch.Tensor):
        raise NotImplementedError

    def heatmap_losses(
        self,
        stages: List[torch.Tensor],
        keypoints: torch.Tensor,
        boxes: torch.Tensor,
        num_images: int,
    ) -> Dict[str, torch.Tensor]:
        """The codec's loss of every stage's R x K x H x W heatmaps against R x K x 3 keypoints
        in R x 4 RoIs: ``loss_keypoint`` for the last stage, ``loss_keypoint_stack{i}`` for the
        earlier ones, each times its stage weight and ``loss_weight``."""
        by_visible = self.loss_normalizer == "visible"
        normalizer = None if by_visible else num_images * self.loss_normalizer
        targets_by_size = {}
        for heatmaps in stages:
            size = tuple(heatmaps.shape[-2:])
            if size not in targets_by_size:
                targets_by_size[size] = self.codec.encode(keypoints, boxes, size)
        if _event_storage() is not None:
            # The one host read of a kpext training step, and only under a trainer: the
            # "kpts_num_skipped_batches" counter (Detectron2's, whose stock loss syncs here too,
            # through nonzero) needs to know on the host whether any RoI has a target. One
            # read for all stages; the losses themselves need none (see kpext.modeling.losses).
            any_valid = torch.stack([t.valid.any() for t in targets_by_size.values()]).any()
            if not bool(any_valid):
                record_skipped_batch()
        losses = {}
        last = len(stages) - 1
        for i, (heatmaps, weight) in enumerate(zip(stages, self.stage_loss_weights)):
            name = "loss_keypoint" if i == last else f"loss_keypoint_stack{i}"
            targets = targets_by_size[tuple(heatmaps.shape[-2:])]
            loss = self.codec.loss(heatmaps, targets, normalizer)
            losses[name] = loss * weight * self.loss_weight
        return losses

    def inference_heatmaps(self, heatmaps: torch.Tensor) -> torch.Tensor:
        """The last stage's raw output turned into what the codec decodes (its activation)."""
        return self.codec.activation(heatmaps)

    def decode(
        self,
        heatmaps: torch.Tensor,
        boxes: torch.Tensor,
        facing: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """R x K x H x W heatmaps, R x 4 boxes -> R x K x 3 (x, y, score); left/right pairs
        chosen per person when ``left_right_pairs`` is set, helped by the R x 4 ``facing``
        probabilities when given."""
        keypoints = self.codec.decode(heatmaps, boxes)
        if self.left_right_pairs.numel() == 0:
            return keypoints
        prior = None if facing is None else orientation_costs(facing, self.facing_decode_weight)
        return consistent_left_right(
            keypoints, heatmaps, boxes, self.left_right_pairs, orientation_cost=prior
        )

    def facing_losses(self, x: torch.Tensor, instances: List[Instances]) -> Dict[str, torch.Tensor]:
        """``loss_keypoint_facing``: the facing branch's cross-entropy on the training RoIs'
        ``gt_facing`` (-1, no target, for images whose annotations have no yaw)."""
        targets = [
            i.gt_facing if i.has("gt_facing") else torch.full((len(i),), -1, device=x.device)
            for i in instances
        ]
        logits = self.facing(x)
        target = torch.cat(targets).to(x.device) if targets else logits.new_zeros(0).long()
        return {"loss_keypoint_facing": facing_loss(logits, target) * self.facing_loss_weight}

    def losses(
        self, stages: List[torch.Tensor], instances: List[Instances]
    ) -> Dict[str, torch.Tensor]:
        keypoints, boxes = gather_keypoint_targets(instances)
        if keypoints is None:
            record_skipped_batch()
            zero = sum(s.sum() for s in stages) * 0
            return (
                {"loss_keypoint": zero}
                if self.oks_loss_weight <= 0
                else {"loss_keypoint": zero, "loss_keypoint_oks": zero}
            )
        losses = self.heatmap_losses(stages, keypoints, boxes, len(instances))
        if self.oks_loss_weight > 0:
            last = stages[-1]
            coords = soft_argmax_2d(last, self.soft_argmax_beta)
            xy = heatmap_to_image(coords, boxes, last.shape[-2:])
            areas = torch.cat([i.gt_boxes.area() for i in instances if len(i)])
            losses["loss_keypoint_oks"] = (
                oks_loss(xy, keypoints, areas, self.oks_sigmas) * self.oks_loss_weight
            )
        return losses

    def predict_heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """Inference heatmaps R x K x H x W of R x C x S x S features, flip-averaged if enabled.

        Flip test: the head also sees the horizontally mirrored RoI features; its
        heatmaps are mirrored back and their left/right channels swapped with the
        dataset's flip map, then averaged with the plain pass.
        """
        heatmaps = self.inference_heatmaps(_last_stage(self.layers(x)))
        if self.flip_indices is None:
            return heatmaps
        mirrored = self.inference_heatmaps(_last_stage(self.layers(x.flip(-1))))
        return average_with_mirrored(heatmaps, mirrored, self.flip_index)

    def forward(self, x: torch.Tensor, instances: List[Instances]):
        if self.training:
            outputs = self.layers(x)
            stages = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
            losses = self.losses(stages, instances)
            if self.facing is not None:
                losses.update(self.facing_losses(x, instances))
            return losses
        heatmaps = self.predict_heatmaps(x)
        boxes = (
            torch.cat([i.pred_boxes.tensor for i in instances])
            if instances
            else x.new_zeros((0, 4))
        )
        facing = None if self.facing is None else self.facing(x).softmax(dim=1)
        keypoints = decode_traceable(self.decode, heatmaps, boxes, facing)
        attach_predictions(instances, keypoints, heatmaps, facing)
        return instances
