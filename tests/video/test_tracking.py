"""PoseTracker identities on a synthetic video, One-Euro filtering and per-track smoothing."""

import numpy as np
import pytest
from motion_helpers import walking_people_video

from kpext.video import KeypointSmoother, OneEuroFilter, PoseTracker, greedy_match

# One-Euro parameters for the walking video: 1 Hz at rest removes most of the
# 3 px jitter; beta = 0.02 (per px/s) opens the cutoff to ~1.5 Hz at the
# walkers' ~25 px/s so the lag stays small.
SMOOTHING = dict(min_cutoff=1.0, beta=0.02, d_cutoff=1.0, freq=30.0)


def track_video(video, tracker):
    """Per frame: (true person ids, track ids)."""
    return [
        (fr.person_ids, tracker.update(fr.keypoints, fr.boxes, fr.scores)) for fr in video.frames
    ]


def assert_one_id_per_person(assignments, num_people):
    ids_of_person = {}
    for people, ids in assignments:
        assert len(ids) == len(people) and len(set(ids)) == len(ids)
        for person, tid in zip(people, ids):
            ids_of_person.setdefault(int(person), set()).add(tid)
    assert sorted(ids_of_person) == list(range(num_people))
    # one id per person over the whole video (no switch, no new id after the gap) ...
    assert all(len(ids) == 1 for ids in ids_of_person.values()), ids_of_person
    # ... and no id shared by two people
    assert len({next(iter(ids)) for ids in ids_of_person.values()}) == num_people
    return {p: next(iter(ids)) for p, ids in ids_of_person.items()}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("match", ["oks", "iou"])
def test_ids_consistent_across_shuffles_and_gap(seed, match):
    video = walking_people_video(
        num_frames=60, fps=30.0, jitter=3.0, gaps=[(1, 28, 3)], shuffle=True, seed=seed
    )
    assert not video.present[1, 28:31].any() and video.present[1, 31]
    assert any(
        list(fr.person_ids) != sorted(fr.person_ids) for fr in video.frames
    )  # really shuffled

    ids = assert_one_id_per_person(track_video(video, PoseTracker(match=match, max_age=10)), 3)
    # ids count up from 1 in order of appearance (all three appear in frame 0)
    assert sorted(ids.values()) == [1, 2, 3]


def test_track_gone_longer_than_max_age_gets_a_new_id():
    video = walking_people_video(num_frames=40, gaps=[(1, 10, 6)], seed=0)
    assignments = track_video(video, PoseTracker(max_age=5))
    before = {tid for people, ids in assignments[:10] for p, tid in zip(people, ids) if p == 1}
    after = {tid for people, ids in assignments[16:] for p, tid in zip(people, ids) if p == 1}
    assert len(before) == 1 and len(after) == 1 and before != after
    assert after == {4}

    # the same gap is bridged when max_age allows it
    assert_one_id_per_person(track_video(video, PoseTracker(max_age=6)), 3)


def test_tracker_first_id_and_empty_frames():
    tracker = PoseTracker(first_id=0)
    kpts = np.zeros((0, 17, 3))
    assert tracker.update(kpts, np.zeros((0, 4)), np.zeros(0)) == []
    frame = walking_people_video(num_frames=1, gaps=()).frames[0]
    assert sorted(tracker.update(frame.keypoints, frame.boxes, frame.scores)) == [0, 1, 2]


def test_tracker_rejects_unknown_matching():
    with pytest.raises(ValueError, match="oks, iou"):
        PoseTracker(match="hungarian")


def test_greedy_match_takes_best_pairs_first():
    sim = np.array([[0.9, 0.8, 0.0], [0.85, 0.1, 0.0], [0.0, 0.0, 0.2]])
    # (1, 0) is better than (1, 1) but column 0 is taken; (1, 1) is below the threshold
    assert greedy_match(sim, threshold=0.3) == [(0, 0)]
    assert greedy_match(sim, threshold=0.05) == [(0, 0), (2, 2), (1, 1)]


def mean_errors_raw_and_smoothed(video, smoother):
    tracker = PoseTracker()
    raw, smoothed = [], []
    for f, frame in enumerate(video.frames):
        ids = tracker.update(frame.keypoints, frame.boxes, frame.scores)
        out = smoother.smooth(ids, frame.keypoints)
        truth = video.true_keypoints[frame.person_ids, f]
        raw.append(np.linalg.norm(frame.keypoints[..., :2] - truth, axis=-1).ravel())
        smoothed.append(np.linalg.norm(out[..., :2] - truth, axis=-1).ravel())
        assert np.array_equal(out[..., 2], frame.keypoints[..., 2])
    return float(np.concatenate(raw).mean()), float(np.concatenate(smoothed).mean())


@pytest.mark.parametrize("seed", range(3))
def test_one_euro_smoothing_reduces_jitter_error(seed):
    video = walking_people_video(num_frames=60, fps=30.0, jitter=3.0, gaps=[(1, 28, 3)], seed=seed)
    raw_err, smooth_err = mean_errors_raw_and_smoothed(video, KeypointSmoother(**SMOOTHING))
    print(
        f"seed {seed}: mean keypoint error raw {raw_err:.3f} px, One-Euro {smooth_err:.3f} px "
        f"(ratio {smooth_err / raw_err:.3f})"
    )
    # 2-D Gaussian jitter of sigma 3 px: mean distance 3 * sqrt(pi / 2) = 3.76 px
    assert raw_err == pytest.approx(3.0 * np.sqrt(np.pi / 2), rel=0.05)
    assert smooth_err <= 0.7 * raw_err


def test_smoother_leaves_low_score_keypoints_raw_and_out_of_the_filter():
    smoother = KeypointSmoother(min_cutoff=0.5, beta=0.0, score_threshold=0.3)
    kpts = np.zeros((1, 3, 3))
    kpts[0, :, 2] = 0.9
    smoother.smooth([7], kpts)
    jump = kpts.copy()
    jump[0, :, :2] = 50.0
    jump[0, 1, 2] = 0.1  # keypoint 1 is unreliable in this frame
    out = smoother.smooth([7], jump)
    assert np.all(out[0, 1, :2] == 50.0)  # returned raw
    assert np.all(out[0, [0, 2], :2] < 20.0)  # smoothed: lags behind the jump
    # keypoint 1's filter never saw the 50: back at 0 it outputs exactly 0
    back = kpts.copy()
    out = smoother.smooth([7], back)
    assert np.all(out[0, 1, :2] == 0.0)
    assert np.all(out[0, [0, 2], :2] > 0.0)


def test_smoother_drops_filters_of_tracks_gone_longer_than_max_age():
    smoother = KeypointSmoother(max_age=2)
    pose = np.ones((1, 17, 3))
    smoother.smooth([1], pose)
    for _ in range(2):
        smoother.smooth([2], pose)
    assert sorted(smoother.track_ids) == [1, 2]  # track 1 unseen for 2 frames: kept
    smoother.smooth([2], pose)
    assert smoother.track_ids == [2]
    with pytest.raises(ValueError, match="duplicated"):
        smoother.smooth([2, 2], np.ones((2, 17, 3)))


def test_one_euro_constant_signal_converges():
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.01, freq=30.0)
    constant = np.full((17, 2), 42.5)
    outputs = [filt(constant) for _ in range(10)]
    assert all(np.allclose(out, constant) for out in outputs)

    # from a different start, a constant input is approached monotonically
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.0, freq=30.0)
    filt(0.0)
    outs = [filt(10.0) for _ in range(90)]
    assert all(b >= a for a, b in zip(outs, outs[1:])) and outs[-1] == pytest.approx(10.0, abs=1e-4)

    # noisy constant: the output's error is far below the noise
    rng = np.random.default_rng(0)
    filt = OneEuroFilter(min_cutoff=1.0, beta=0.0, freq=30.0)
    noisy = 5.0 + rng.normal(0.0, 1.0, size=(300, 17, 2))
    outs = np.stack([filt(x) for x in noisy])
    late_error = np.abs(outs[60:] - 5.0).mean()
    assert late_error < 0.35 * np.abs(noisy[60:] - 5.0).mean()


def frames_to_settle_after_step(beta: float, step: float = 100.0, tolerance: float = 0.05) -> int:
    filt = OneEuroFilter(min_cutoff=1.0, beta=beta, d_cutoff=1.0, freq=30.0)
    for _ in range(30):
        filt(0.0)
    for n in range(1, 300):
        if abs(filt(step) - step) <= tolerance * step:
            return n
    raise AssertionError("never settled")


def test_one_euro_step_lag_decreases_with_beta():
    lags = {beta: frames_to_settle_after_step(beta) for beta in (0.0, 0.001, 0.01, 0.1)}
    print("frames to reach 95% of a step:", lags)
    assert lags[0.0] > lags[0.001] > lags[0.01] > lags[0.1]
    # beta = 0 is a plain first-order low-pass: (1 - alpha)^n <= 0.05, alpha at 1 Hz and 30 fps
    alpha = 1.0 / (1.0 + 30.0 / (2 * np.pi))
    assert lags[0.0] == int(np.ceil(np.log(0.05) / np.log(1 - alpha)))


def test_one_euro_timestamps_and_shapes():
    a = OneEuroFilter(min_cutoff=1.0, beta=0.0, freq=30.0)
    b = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    for i, x in enumerate([0.0, 3.0, 1.0, 4.0]):
        assert a(x) == pytest.approx(b(x, timestamp=10.0 + i / 30.0))
    assert isinstance(a(2.0), float)
    with pytest.raises(ValueError, match="increase"):
        b(1.0, timestamp=10.0)
    filt = OneEuroFilter()
    filt(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        filt(np.zeros((3, 2)))
