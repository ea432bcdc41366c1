"""Person-level left/right decoding on hand-made heatmaps: an exchanged pair among agreeing
ones is exchanged back, a double (both points on one limb) is split the way the other pairs
face onto a second mode of its maps, but not onto the flank of the shared mode, nor onto a
second mode far less likely, nor with a codec whose maps are no log-likelihoods; a confident
pair outvotes unsure ones, and profiles and unsided people are left alone."""

import pytest
import torch
from head_helpers import head_cfg

from kpext.modeling.codecs import build_codec
from kpext.modeling.codecs.left_right import consistent_left_right, left_right_pairs_of
from kpext.modeling.decoding import TestTimeDecoder

from detectron2.layers import ShapeSpec
from detectron2.modeling.roi_heads import build_keypoint_head
from detectron2.structures import Boxes, Instances

SIZE = 56
BOX = torch.tensor([[0.0, 0.0, 56.0, 56.0]])  # one heatmap cell per pixel
# nose, then three (left, right) pairs
PAIRS = torch.tensor([[1, 2], [3, 4], [5, 6]])
ROWS = {0: 10, 1: 12, 2: 12, 3: 30, 4: 30, 5: 48, 6: 48}


def person(peaks):
    """Heatmaps (1 x 7 x 56 x 56 logits, 0 elsewhere) with ``peaks[k] = [(x, value), ...]`` on
    keypoint k's row, and the keypoints decoded map by map (each map's highest peak)."""
    maps = torch.zeros(1, 7, SIZE, SIZE)
    keypoints = torch.zeros(1, 7, 3)
    for k, points in peaks.items():
        for x, value in points:
            maps[0, k, ROWS[k], x] = value
        x, value = max(points, key=lambda p: p[1])
        keypoints[0, k] = torch.tensor([x + 0.5, ROWS[k] + 0.5, value])
    return keypoints, maps


def decoded_x(keypoints):
    return [int(v) for v in keypoints[0, :, 0].floor()]


def test_an_exchanged_pair_is_exchanged_back():
    keypoints, maps = person({
        0: [(28, 9)],
        1: [(40, 9), (16, 1)], 2: [(16, 9), (40, 1)],  # left on the right: a front view
        3: [(44, 9), (12, 1)], 4: [(12, 9), (44, 1)],
        5: [(14, 5), (42, 4)], 6: [(42, 5), (14, 4)],  # unsure, the other way round
    })  # fmt: skip
    out = consistent_left_right(keypoints, maps, BOX, PAIRS)
    assert decoded_x(out) == [28, 40, 16, 44, 12, 42, 14]
    assert out[0, 5, 2] == 4 and out[0, 6, 2] == 4  # scores read at the new cells


def test_a_double_is_split_the_way_the_person_faces():
    keypoints, maps = person({
        0: [(28, 9)],
        1: [(40, 9), (16, 1)], 2: [(16, 9), (40, 1)],
        3: [(44, 9), (12, 1)], 4: [(12, 9), (44, 1)],
        5: [(42, 5), (14, 4)], 6: [(42, 5), (14, 3)],  # both ankles on the right one
    })  # fmt: skip
    out = consistent_left_right(keypoints, maps, BOX, PAIRS)
    # Left on the image's right (as the other pairs): the right ankle moves to x 14.
    assert decoded_x(out)[5:] == [42, 14]
    assert out[0, 6, 2] == 3
    # Facing the other way, the left ankle moves instead.
    flipped = {1: [(16, 9), (40, 1)], 2: [(40, 9), (16, 1)], 3: [(12, 9), (44, 1)],
               4: [(44, 9), (12, 1)]}  # fmt: skip
    keypoints, maps = person(
        {0: [(28, 9)], **flipped, 5: [(42, 5), (14, 4)], 6: [(42, 5), (14, 3)]}
    )
    assert decoded_x(consistent_left_right(keypoints, maps, BOX, PAIRS))[5:] == [14, 42]


# The sided pairs of a front view (left points at larger x), for the doubles' tests.
FRONT = {
    0: [(28, 9)],
    1: [(40, 9), (16, 1)], 2: [(16, 9), (40, 1)],
    3: [(44, 9), (12, 1)], 4: [(12, 9), (44, 1)],
}  # fmt: skip


def test_a_double_on_one_mode_stays():
    # Both ankles on one smooth bump (logits falling 0.2 per cell, no second mode): the best
    # cell 0.1 box widths away is on the bump's flank, 1.2 below (within the move cost);
    # moving a point there would not find the other ankle, so the double stays.
    keypoints, maps = person({**FRONT, 5: [(42, 9)], 6: [(42, 9)]})
    cols = torch.arange(SIZE, dtype=torch.float32)
    for k in (5, 6):
        maps[0, k, ROWS[k]] = 9 - 0.2 * (cols - 42).abs()
    out = consistent_left_right(keypoints, maps, BOX, PAIRS)
    assert decoded_x(out) == [28, 40, 16, 44, 12, 42, 42]
    assert torch.equal(out[0, 5:], keypoints[0, 5:])


def test_a_double_splits_only_onto_a_second_mode_within_the_move_cost():
    # The right ankle's second mode is 4 below the shared one (the left ankle's 5): beyond the
    # default 2.0, the double stays; allowed 5.0, it splits the way the person faces.
    keypoints, maps = person({**FRONT, 5: [(42, 6), (14, 1)], 6: [(42, 6), (14, 2)]})
    assert decoded_x(consistent_left_right(keypoints, maps, BOX, PAIRS))[5:] == [42, 42]
    split = consistent_left_right(keypoints, maps, BOX, PAIRS, max_move_cost=5.0)
    assert decoded_x(split)[5:] == [42, 14] and split[0, 6, 2] == 2
    # None: no double splits, however close the second mode.
    keypoints, maps = person({**FRONT, 5: [(42, 5), (14, 4)], 6: [(42, 5), (14, 3)]})
    kept = consistent_left_right(keypoints, maps, BOX, PAIRS, max_move_cost=None)
    assert decoded_x(kept)[5:] == [42, 42]


def test_each_codec_sets_whether_doubles_split():
    # The same maps through the test-time decoder: the one-hot codec's logits split the
    # double (second mode 1 below), the Gaussian codec's regressed maps leave it.
    keypoints, maps = person({**FRONT, 5: [(42, 5), (14, 4)], 6: [(42, 5), (14, 3)]})
    decoder = TestTimeDecoder(num_keypoints=7, left_right_pairs=[(1, 2), (3, 4), (5, 6)])
    for codec, ankles in (("onehot", [42, 14]), ("gaussian", [42, 42])):
        codec = build_codec(codec)
        codec.decode = lambda heatmaps, boxes: keypoints  # the points decoded above
        assert decoded_x(decoder.decode(codec, maps, BOX))[5:] == ankles, codec.name


def test_a_confident_pair_outvotes_unsure_ones():
    keypoints, maps = person({
        0: [(28, 9)],
        1: [(40, 5), (16, 4)], 2: [(16, 5), (40, 4)],  # unsure: +1
        3: [(44, 5), (12, 4)], 4: [(12, 5), (44, 4)],  # unsure: +1
        5: [(14, 9), (42, 1)], 6: [(42, 9), (14, 1)],  # sure: -1
    })  # fmt: skip
    out = consistent_left_right(keypoints, maps, BOX, PAIRS)
    assert decoded_x(out) == [28, 16, 40, 12, 44, 14, 42]


def test_a_point_on_a_cell_boundary_reads_the_same_score_from_either_side():
    # The exchanged pair 5/6 of test_an_exchanged_pair_is_exchanged_back, the left ankle's
    # peak spread over cells 13 and 14: decoded at x 14.0, the boundary. Rounding put it one
    # ulp either side in eager and onnxruntime (CI, 2026-12-06); the score it takes to the
    # right ankle must not depend on that ulp. Between two cells the read is linear: the mean.
    keypoints, maps = person({
        0: [(28, 9)],
        1: [(40, 9), (16, 1)], 2: [(16, 9), (40, 1)],
        3: [(44, 9), (12, 1)], 4: [(12, 9), (44, 1)],
        5: [(13, 5), (14, 5), (42, 4)], 6: [(42, 7), (14, 2), (13, 6)],
    })  # fmt: skip
    scores = []
    for x in (14.0 - 1e-5, 14.0, 14.0 + 1e-5):
        keypoints[0, 5, 0] = x
        out = consistent_left_right(keypoints, maps, BOX, PAIRS)
        # exchanged: the ankles face as the rest
        assert out[0, 5, 0] == 42.5 and out[0, 6, 0] == x and out[0, 5, 2] == 4
        scores.append(float(out[0, 6, 2]))
    assert max(scores) - min(scores) < 1e-3, scores
    assert scores[1] == pytest.approx((2 + 6) / 2)


def test_profiles_and_unsided_people_are_left_alone():
    # Every pair within 0.1 box widths (5.6 px) in x: a profile, nothing has a side.
    keypoints, maps = person({
        0: [(28, 9)],
        1: [(30, 9), (27, 8)], 2: [(27, 9), (30, 8)],
        3: [(26, 9), (29, 8)], 4: [(29, 9), (26, 8)],
        5: [(33, 9), (30, 8)], 6: [(30, 9), (33, 8)],
    })  # fmt: skip
    moved = consistent_left_right(keypoints, maps, BOX, PAIRS, double_radius=0.01)
    assert torch.equal(moved, keypoints)
    # One sided pair is below min_pairs (2): no orientation is chosen.
    keypoints, maps = person({
        0: [(28, 9)], 1: [(14, 5), (42, 4)], 2: [(42, 5), (14, 4)],
        3: [(30, 9)], 4: [(26, 9)], 5: [(31, 9)], 6: [(27, 9)],  # 4 px: not sided, no double
    })  # fmt: skip
    assert torch.equal(consistent_left_right(keypoints, maps, BOX, PAIRS), keypoints)
    assert consistent_left_right(keypoints[:0], maps[:0], BOX[:0], PAIRS).shape == (0, 7, 3)


def test_pairs_of_a_flip_map():
    assert left_right_pairs_of([0, 2, 1, 4, 3]) == ((1, 2), (3, 4))
    assert left_right_pairs_of([0, 1, 2]) == ()


def left_right_cfg(mode):
    cfg = head_cfg(num_keypoints=17, width=16, depth=1)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NAME = "KpextKRCNNHead"
    cfg.DATASETS.TRAIN = ("keypoints_coco_2017_train",)  # Detectron2's built-in COCO metadata
    cfg.TEST.KPEXT.LEFT_RIGHT = mode
    return cfg


def test_heads_decode_per_person_when_configured():
    head = build_keypoint_head(left_right_cfg("person"), ShapeSpec(channels=8, height=14)).eval()
    assert head.decoder.left_right_pairs.shape == (8, 2)  # COCO's eight left/right pairs
    inst = Instances((100, 100))
    inst.pred_boxes = Boxes(torch.tensor([[10.0, 10.0, 60.0, 90.0], [5.0, 5.0, 40.0, 40.0]]))
    with torch.no_grad():
        (out,) = head(torch.randn(2, 8, 14, 14), [inst])
    assert out.pred_keypoints.shape == (2, 17, 3)
    plain = build_keypoint_head(left_right_cfg("keypoint"), ShapeSpec(channels=8, height=14))
    assert plain.decoder.left_right_pairs.numel() == 0
    with pytest.raises(ValueError, match="TEST.KPEXT.LEFT_RIGHT must be one of"):
        build_keypoint_head(left_right_cfg("joint"), ShapeSpec(channels=8, height=14))
