"""The codec interface: every codec implements it, and a new codec plugs into the heads by
registration and ``MODEL.KPEXT.TARGET.CODEC`` alone, with no edit to any head."""

from dataclasses import dataclass
from typing import Optional

import pytest
import torch
from head_helpers import SHAPE, K, fit, head_cfg, training_instances

from kpext.modeling.codecs import (
    CODEC_REGISTRY,
    GaussianCodec,
    KeypointCodec,
    build_codec,
    image_to_heatmap,
    register_codec,
)
from kpext.modeling.codecs.base import codec_class
from kpext.modeling.heads import GaussianKeypointHead, HourglassKeypointHead

from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage
from detectron2.utils.registry import Registry


@dataclass
class ToyTargets:
    cell: torch.Tensor  # R x K x 2 continuous heatmap coordinates
    valid: torch.Tensor  # R x K bool


class ToyCodec(KeypointCodec):
    """Tanh outputs; the loss pulls the map towards +1 in the keypoint's cell and -1 elsewhere;
    decoding returns the cell of the largest value (its centre) and the value as the score."""

    name = "toy"
    losses = ("toy_l2",)
    calls = []

    @property
    def predictor_bias(self) -> float:
        return 0.5

    def encode(self, keypoints, boxes, size):
        uv = image_to_heatmap(keypoints[..., :2], boxes, size)
        h, w = size
        inside = (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
        return ToyTargets(uv, inside & (keypoints[..., 2] > 0))

    def loss(self, raw, targets, normalizer: Optional[float] = None):
        ToyCodec.calls.append("loss")
        r, k, h, w = raw.shape
        col = targets.cell[..., 0].floor().long().clamp(0, w - 1)
        row = targets.cell[..., 1].floor().long().clamp(0, h - 1)
        goal = -torch.ones_like(raw)
        goal.view(r, k, h * w).scatter_(2, (row * w + col)[..., None], 1.0)
        per_map = (self.activation(raw) - goal).pow(2).mean(dim=(2, 3)) * targets.valid
        count = targets.valid.sum().clamp(min=1) if normalizer is None else normalizer
        return per_map.sum() / count

    def activation(self, raw):
        ToyCodec.calls.append("activation")
        return raw.tanh()

    def decode(self, heatmaps, boxes):
        ToyCodec.calls.append("decode")
        r, k, h, w = heatmaps.shape
        score, index = heatmaps.reshape(r, k, h * w).max(dim=2)
        row = torch.div(index, w, rounding_mode="floor")
        uv = torch.stack([index % w, row], dim=2).float() + 0.5
        scale = (boxes[:, None, 2:] - boxes[:, None, :2]) / uv.new_tensor([w, h])
        return torch.cat([uv * scale + boxes[:, None, :2], score[..., None]], dim=2)


@pytest.fixture
def toy_codec(monkeypatch):
    # Registered for this test only: the registry's table is restored afterwards.
    monkeypatch.setattr(CODEC_REGISTRY, "_obj_map", dict(CODEC_REGISTRY._obj_map))
    register_codec(ToyCodec)
    ToyCodec.calls = []
    yield ToyCodec


@pytest.mark.parametrize("name", ["gaussian", "onehot"])
def test_every_built_in_codec_implements_the_interface(name):
    codec = build_codec(name)
    assert isinstance(codec, KeypointCodec) and codec.name == name and codec.losses
    keypoints = training_instances(3, 0).gt_keypoints.tensor
    boxes = training_instances(3, 0).proposal_boxes.tensor
    targets = codec.encode(keypoints, boxes, (28, 28))
    assert targets.valid.dtype == torch.bool and targets.valid.shape == (3, K)
    raw = torch.randn(3, K, 28, 28, requires_grad=True)
    loss = codec.loss(raw, targets)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert codec.activation(raw).shape == raw.shape
    assert codec.decode(codec.activation(raw).detach(), boxes).shape == (3, K, 3)
    # No target: zero, and still connected to the output.
    empty = codec.encode(keypoints * torch.tensor([1.0, 1.0, 0.0]), boxes, (28, 28))
    zero = codec.loss(raw, empty)
    zero.backward()
    assert zero.item() == 0.0 and raw.grad is not None


@pytest.mark.parametrize("name", ["gaussian", "softmax_gaussian"])
def test_locating_codecs_decode_their_located_peaks_in_the_boxes(name):
    """decode, written once (LocatingCodec): locate's heatmap positions mapped into the boxes."""
    from kpext.modeling.codecs.base import LocatingCodec
    from kpext.modeling.codecs.geometry import heatmap_to_image

    codec = build_codec(name)
    assert isinstance(codec, LocatingCodec)
    maps = torch.rand(3, K, 20, 16)
    boxes = torch.tensor([[0.0, 0.0, 32.0, 40.0], [5.0, 7.0, 9.0, 30.0], [1.0, 2.0, 3.0, 4.0]])
    coords, score = codec.locate(maps)
    decoded = codec.decode(maps, boxes)
    assert torch.equal(decoded[..., :2], heatmap_to_image(coords, boxes, (20, 16)))
    assert torch.equal(decoded[..., 2], score)


def test_a_codec_without_its_methods_cannot_be_built():
    class Incomplete(KeypointCodec):
        name = "incomplete"

    with pytest.raises(TypeError):
        Incomplete()


def test_names_are_unique_and_required(toy_codec):
    class SameName(ToyCodec):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_codec(SameName)
    with pytest.raises(ValueError, match="needs a name"):
        register_codec(type("Nameless", (ToyCodec,), {"name": ""}))
    assert codec_class("toy") is ToyCodec


def test_codecs_live_in_a_detectron2_registry_by_their_config_names():
    assert isinstance(CODEC_REGISTRY, Registry)
    assert {"onehot", "gaussian", "softmax_gaussian"} <= {name for name, _ in CODEC_REGISTRY}
    assert CODEC_REGISTRY.get("gaussian") is GaussianCodec
    assert "toy" not in CODEC_REGISTRY  # the fixture's registration did not outlive its test
    cfg = head_cfg(CODEC="heatmap")
    with pytest.raises(ValueError) as error:
        GaussianKeypointHead(cfg, SHAPE)
    message = str(error.value)
    assert "'heatmap'" in message and "MODEL.KPEXT.TARGET.CODEC" in message
    assert "gaussian, onehot, softmax_gaussian" in message


@pytest.mark.parametrize("head_cls", [GaussianKeypointHead, HourglassKeypointHead])
def test_a_registered_codec_trains_and_decodes_in_the_heads_unchanged(toy_codec, head_cls):
    head = head_cls(head_cfg(CODEC="toy"), SHAPE)
    assert isinstance(head.codec, ToyCodec)
    predictors = [head.predictor] if head_cls is GaussianKeypointHead else list(head.predictors)
    assert all(bool((p.bias == 0.5).all()) for p in predictors)  # the codec's predictor bias

    history = fit(head, steps=30, lr=0.003)
    assert "loss" in ToyCodec.calls
    assert sum(history[-1].values()) < sum(history[0].values())

    head.eval()
    ToyCodec.calls = []
    inst = Instances((300, 300))
    inst.pred_boxes = Boxes(torch.tensor([[10.0, 20.0, 110.0, 220.0], [50.0, 50.0, 90.0, 120.0]]))
    with torch.no_grad():
        out = head(torch.randn(2, SHAPE.channels, 14, 14), [inst])[0]
    assert ToyCodec.calls == ["activation", "decode"]
    assert out.pred_keypoints.shape == (2, K, 3)
    heatmaps = out.pred_keypoint_heatmaps
    assert heatmaps.abs().max() <= 1  # the codec's activation (tanh) of the raw output
    torch.testing.assert_close(out.pred_keypoints[..., 2], heatmaps.flatten(2).max(dim=2).values)


def test_a_codec_object_can_be_passed_to_a_head(toy_codec):
    cfg = head_cfg()
    args = GaussianKeypointHead.from_config(cfg, SHAPE)
    args["codec"] = ToyCodec()
    head = GaussianKeypointHead(**args)
    with EventStorage():
        losses = head.train()(torch.randn(4, SHAPE.channels, 14, 14), [training_instances(4, 3)])
    assert set(losses) == {"loss_keypoint"} and "loss" in ToyCodec.calls
