"""The test-time decoder every kpext head shares (kpext.modeling.decoding): built from
TEST.KPEXT and MODEL.KPEXT.FACING, it flip-averages the network's heatmaps, decodes with the
head's codec and, for person-level left/right, takes the facing branch's probabilities as
an orientation prior. It adds nothing to a checkpoint."""

import pytest
import torch
from head_helpers import SHAPE, head_cfg

from kpext.modeling.codecs import GaussianCodec
from kpext.modeling.codecs.left_right import consistent_left_right
from kpext.modeling.decoding import (
    TestTimeDecoder,
    average_with_mirrored,
    orientation_costs,
)
from kpext.modeling.heads import (
    GaussianKeypointHead,
    HourglassKeypointHead,
    KpextKRCNNHead,
    KRCNNCodecKeypointHead,
    SimCCKeypointHead,
)

K = 17
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
HEADS = [
    KpextKRCNNHead,
    KRCNNCodecKeypointHead,
    GaussianKeypointHead,
    HourglassKeypointHead,
    SimCCKeypointHead,
]


def coco_cfg(flip=False, left_right="keypoint", facing=0.0, decode_weight=8.0):
    cfg = head_cfg(num_keypoints=K, width=8, depth=1)
    cfg.DATASETS.TRAIN = ("keypoints_coco_2017_train",)  # Detectron2's built-in COCO metadata
    cfg.TEST.KPEXT.FLIP = flip
    cfg.TEST.KPEXT.LEFT_RIGHT = left_right
    cfg.MODEL.KPEXT.FACING.LOSS_WEIGHT = facing
    cfg.MODEL.KPEXT.FACING.DECODE_WEIGHT = decode_weight
    return cfg


def test_the_decoder_reads_the_test_time_keys():
    plain = TestTimeDecoder.from_config(coco_cfg())
    assert plain.flip_indices is None and plain.left_right_pairs.numel() == 0
    decoder = TestTimeDecoder.from_config(coco_cfg(True, "person", decode_weight=3.0))
    assert decoder.flip_indices == COCO_FLIP
    assert decoder.left_right_pairs.tolist() == [[k, k + 1] for k in range(1, K, 2)]
    assert decoder.facing_decode_weight == 3.0


@pytest.mark.parametrize("head_cls", HEADS)
def test_every_head_builds_its_decoder_and_facing_branch_from_the_config(head_cls):
    head = head_cls(coco_cfg(True, "person", facing=0.5, decode_weight=3.0), SHAPE)
    assert head.decoder.flip_indices == COCO_FLIP
    assert head.decoder.left_right_pairs.shape == (8, 2)
    assert head.decoder.facing_decode_weight == 3.0
    assert head.facing is not None and head.facing.loss_weight == 0.5
    assert head_cls(coco_cfg(), SHAPE).facing is None


@pytest.mark.parametrize("head_cls", HEADS)
def test_the_decoder_adds_nothing_to_a_checkpoint(head_cls):
    with_decoder = head_cls(coco_cfg(True, "person"), SHAPE).state_dict()
    assert with_decoder.keys() == head_cls(coco_cfg(), SHAPE).state_dict().keys()
    assert not [k for k in with_decoder if k.startswith("decoder.")]


def test_flip_averaged_heatmaps_run_the_network_on_both_views():
    decoder = TestTimeDecoder(num_keypoints=K, flip_indices=COCO_FLIP)
    seen = []

    def run(x):
        seen.append(x)
        return x[:, :K] * 2

    x = torch.randn(3, 20, 6, 5)
    out = decoder.heatmaps(run, x)
    assert len(seen) == 2 and torch.equal(seen[1], x.flip(-1))
    index = torch.tensor(COCO_FLIP)
    assert torch.equal(out, average_with_mirrored(run(x), run(x.flip(-1)), index))
    assert torch.equal(TestTimeDecoder(num_keypoints=K).heatmaps(run, x), run(x))


def test_flip_indices_must_permute_the_keypoints():
    with pytest.raises(ValueError, match="permutation of 17 keypoints"):
        TestTimeDecoder(num_keypoints=K, flip_indices=[0] * K)


def test_decode_is_the_codecs_then_one_orientation_per_person_with_the_facing_prior():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(5, K, 28, 24, generator=g)
    boxes = torch.cat(
        [torch.rand(5, 2, generator=g) * 50, torch.rand(5, 2, generator=g) * 50 + 60], 1
    )
    facing = torch.rand(5, 4, generator=g).softmax(1)
    codec = GaussianCodec()
    keypointwise = TestTimeDecoder(num_keypoints=K)
    assert torch.equal(keypointwise.decode(codec, maps, boxes, facing), codec.decode(maps, boxes))
    pairs = [(k, k + 1) for k in range(1, K, 2)]
    person = TestTimeDecoder(num_keypoints=K, left_right_pairs=pairs, facing_decode_weight=3.0)
    decoded = codec.decode(maps, boxes)
    # The Gaussian codec's doubles stay (test_left_right checks each codec's choice).
    expected = consistent_left_right(decoded, maps, boxes, torch.tensor(pairs), max_move_cost=None)
    assert torch.equal(person.decode(codec, maps, boxes), expected)
    prior = orientation_costs(facing, 3.0)
    expected = consistent_left_right(
        decoded, maps, boxes, torch.tensor(pairs), orientation_cost=prior, max_move_cost=None
    )
    assert torch.equal(person.decode(codec, maps, boxes, facing), expected)
