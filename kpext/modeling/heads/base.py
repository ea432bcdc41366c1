"""The part every kpext keypoint head shares: targets and losses around a network.

A head turns pooled RoI features into heatmaps (``layers``); pooling and routing
stay in Detectron2's ROI heads. Targets, loss, output activation and decoding come
from a codec (:class:`~kpext.modeling.codecs.KeypointCodec`), so the same network
can be trained with another scheme and a new scheme serves every head. The test-time
choices (flip test, left/right decoding) are the head's
:class:`~kpext.modeling.decoding.TestTimeDecoder`'s. Also here: the one reader of the
arguments every head takes from the config (:func:`common_head_args`) and the weight
initialisation the heads share.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from detectron2.layers import Conv2d, get_norm
from detectron2.structures import Instances
from detectron2.utils.events import get_event_storage

from ...data import dataset_oks_sigmas
from ..codecs import KeypointCodec
from ..codecs.geometry import heatmap_to_image
from ..decoding import TestTimeDecoder, decode_traceable
from ..losses import oks_loss, soft_argmax_2d
from .facing_branch import FacingBranch


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


def common_head_args(cfg, input_shape) -> dict:
    """The constructor arguments of :class:`KeypointHeadBase` that every kpext head reads from
    the config alike, assembled here once: ``num_keypoints``, the heatmap loss's weight and
    normaliser (:func:`loss_args`), the OKS loss (:func:`oks_loss_args`), the test-time
    ``decoder`` (:meth:`TestTimeDecoder.from_config`: ``TEST.KPEXT.FLIP``, ``LEFT_RIGHT``,
    ``MODEL.KPEXT.FACING.DECODE_WEIGHT``) and the ``facing`` branch
    (``MODEL.KPEXT.FACING.LOSS_WEIGHT``, on ``input_shape``'s channels)."""
    k = cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS
    return {
        "num_keypoints": k,
        **loss_args(cfg, k),
        **oks_loss_args(cfg, k),
        "decoder": TestTimeDecoder.from_config(cfg),
        "facing": FacingBranch.from_config(cfg, input_shape.channels),
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


def conv_stack(
    in_channels: int, conv_dims: Sequence[int], norm: str = ""
) -> Tuple[nn.Sequential, int]:
    """3x3 convs (padding 1, ReLU, ``norm`` after each, no bias under a norm) of ``conv_dims``
    output channels from ``in_channels`` (R x C x S x S -> R x C' x S x S), and C': the last
    of ``conv_dims``, or ``in_channels`` when it is empty."""
    convs, channels = [], in_channels
    for dim in conv_dims:
        convs.append(
            Conv2d(
                channels,
                dim,
                3,
                padding=1,
                bias=not norm,
                norm=get_norm(norm, dim),
                activation=nn.ReLU(),
            )
        )
        channels = dim
    return nn.Sequential(*convs), channels


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

    A network (``layers``), a codec and a test-time decoder. Subclasses define ``layers(x)``,
    returning R x K x H x W raw heatmaps or, for heads with intermediate supervision, a list
    of them (one per stage, the last one decoded). Each stage is trained with the codec's
    loss and its own weight; the base adds the optional OKS loss on soft-argmax coordinates of
    the last stage, and the optional facing branch's loss. In inference, the decoder runs the
    network (twice with the flip test) under the codec's activation and decodes:
    ``pred_keypoints`` (N x K x 3: x, y, score in image coordinates) and
    ``pred_keypoint_heatmaps`` (N x K x H x W) are set on each image's instances, and
    ``pred_facing`` (N x 4) with a facing branch.
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
        decoder: Optional[TestTimeDecoder] = None,
        facing: Optional[FacingBranch] = None,
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
            decoder: the flip test and left/right decoding (``TEST.KPEXT``); None: a single
                pass decoded keypoint by keypoint.
            facing: the facing branch (``MODEL.KPEXT.FACING``; trained on ``gt_facing``, its
                probabilities the decoder's orientation prior); None: no branch.
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
        self.decoder = TestTimeDecoder(num_keypoints=num_keypoints) if decoder is None else decoder
        if self.decoder.num_keypoints != num_keypoints:
            raise ValueError(
                f"the decoder is for {self.decoder.num_keypoints} keypoints, "
                f"the head for {num_keypoints}"
            )
        self.facing = facing

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

    def single_pass_heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """R x C x S x S features -> R x K x H x W: the network's last stage under the codec's
        activation, what the decoder's flip test runs on the plain and the mirrored features."""
        return self.inference_heatmaps(_last_stage(self.layers(x)))

    def predict_heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """Inference heatmaps R x K x H x W of R x C x S x S features, flip-averaged when the
        decoder's flip test is on (:meth:`TestTimeDecoder.heatmaps`)."""
        return self.decoder.heatmaps(self.single_pass_heatmaps, x)

    def decode(
        self,
        heatmaps: torch.Tensor,
        boxes: torch.Tensor,
        facing: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """R x K x H x W heatmaps, R x 4 boxes -> R x K x 3 (x, y, score), by the decoder with
        this head's codec; R x 4 ``facing`` probabilities, when given, help person-level
        left/right decoding (:meth:`TestTimeDecoder.decode`)."""
        return self.decoder.decode(self.codec, heatmaps, boxes, facing)

    def losses(
        self, stages: List[torch.Tensor], instances: List[Instances]
    ) -> Dict[str, torch.Tensor]:
        """The heatmap losses of every stage (R x K x H x W each) and the OKS loss on the last,
        against the training RoIs' ground truth."""
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

    def forward(self, x: torch.Tensor, instances: List[Instances]):
        if self.training:
            outputs = self.layers(x)
            stages = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
            losses = self.losses(stages, instances)
            if self.facing is not None:
                losses.update(self.facing.losses(x, instances))
            return losses
        heatmaps = self.predict_heatmaps(x)
        boxes = (
            torch.cat([i.pred_boxes.tensor for i in instances])
            if instances
            else x.new_zeros((0, 4))
        )
        facing = None if self.facing is None else self.facing.probabilities(x)
        keypoints = decode_traceable(self.decode, heatmaps, boxes, facing)
        attach_predictions(instances, keypoints, heatmaps, facing)
        return instances
