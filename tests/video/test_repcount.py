"""Repetition counting (jumps, squats) on synthetic keypoint sequences with jitter and
dropped frames."""

import numpy as np
import pytest
from motion_helpers import STANDING_LAYOUT, repetition_sequence

from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES as NAMES
from kpext.video import RepetitionCounter, count_cycles, estimate_person_height, vertical_signal

# (kind, repetitions, generator options): different speeds (frames per repetition) and amplitudes
SCENARIOS = {
    "1 jump": ("jump", 1, dict(rep_frames=(24, 36), amplitude=(0.15, 0.25))),
    "3 jumps": ("jump", 3, dict(rep_frames=(24, 36), amplitude=(0.15, 0.25))),
    "7 quick small jumps": (
        "jump",
        7,
        dict(rep_frames=(16, 22), amplitude=(0.08, 0.12), rest_frames=(4, 10)),
    ),
    "7 slow high jumps": ("jump", 7, dict(rep_frames=(30, 45), amplitude=(0.25, 0.35))),
    "5 slow deep squats": ("squat", 5, dict(rep_frames=(35, 50), amplitude=(0.2, 0.3))),
    "5 quick shallow squats": (
        "squat",
        5,
        dict(rep_frames=(20, 28), amplitude=(0.12, 0.16), rest_frames=(2, 6)),
    ),
}


def stream(counter: RepetitionCounter, signal: np.ndarray):
    return [counter.update(v) for v in signal]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_exact_counts_batch_and_streaming(scenario, seed):
    kind, reps, options = SCENARIOS[scenario]
    kpts = repetition_sequence(kind, reps, jitter=3.0, dropped_frames=4, seed=seed, **options)
    assert (kpts[:, :, 2] == 0).all(axis=1).sum() == 4  # the dropped frames are there

    signal = vertical_signal(kpts, NAMES, part="hip")
    assert np.isfinite(signal).all()
    assert RepetitionCounter().count(signal) == reps

    counts = stream(RepetitionCounter(), signal)
    assert counts[-1] == reps
    assert all(b >= a for a, b in zip(counts, counts[1:]))


@pytest.mark.parametrize("seed", range(3))
def test_jumps_counted_from_the_ankles_too(seed):
    kpts = repetition_sequence("jump", 3, seed=seed)
    assert RepetitionCounter().count(vertical_signal(kpts, NAMES, part="ankle")) == 3


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("part", ["hip", "ankle"])
def test_standing_still_with_jitter_counts_zero(part, seed):
    kpts = repetition_sequence("still", 0, lead_frames=100, jitter=3.0, dropped_frames=4, seed=seed)
    signal = vertical_signal(kpts, NAMES, part=part)
    assert RepetitionCounter().count(signal) == 0
    assert stream(RepetitionCounter(), signal)[-1] == 0


def test_rolling_median_baseline_counts_the_same():
    for kind, reps in (("jump", 3), ("squat", 5)):
        kpts = repetition_sequence(kind, reps, seed=4)
        assert RepetitionCounter(baseline_window=120).count(vertical_signal(kpts, NAMES)) == reps


def test_squats_leave_the_ankles_still():
    kpts = repetition_sequence("squat", 5, seed=0)
    assert RepetitionCounter().count(vertical_signal(kpts, NAMES, part="ankle")) == 0


def test_vertical_signal_is_scale_free_and_up_positive():
    small = repetition_sequence("jump", 2, height=150.0, jitter=0.0, dropped_frames=0, seed=1)
    large = repetition_sequence("jump", 2, height=450.0, jitter=0.0, dropped_frames=0, seed=1)
    s_small = vertical_signal(small, NAMES)
    s_large = vertical_signal(large, NAMES)
    # same motion at three times the size: the same signal up to a constant offset
    np.testing.assert_allclose(s_small - s_small[0], s_large - s_large[0], atol=1e-9)
    assert (s_small - s_small[0]).max() > 0.1  # a jump goes up: the signal rises

    shoulder_to_ankle = STANDING_LAYOUT[15:17, 1].mean() - STANDING_LAYOUT[5:7, 1].mean()
    assert estimate_person_height(large, NAMES) == pytest.approx(shoulder_to_ankle * 450.0)


def test_vertical_signal_interpolates_low_score_frames():
    kpts = repetition_sequence("squat", 1, jitter=0.0, dropped_frames=0, seed=0)
    reference = vertical_signal(kpts, NAMES)
    hips = [NAMES.index("left_hip"), NAMES.index("right_hip")]
    kpts[20, hips, 2] = 0.0  # both hips unreliable: frame 20 is filled from 19 and 21
    filled = vertical_signal(kpts, NAMES)
    assert filled[20] == pytest.approx((reference[19] + reference[21]) / 2)
    kpts[21, hips[0], 2] = 0.0  # one hip left: its own height is used
    assert np.isfinite(vertical_signal(kpts, NAMES)).all()


def test_vertical_signal_validates_inputs():
    kpts = repetition_sequence("still", 0, lead_frames=5, seed=0)
    with pytest.raises(ValueError, match="hip, ankle"):
        vertical_signal(kpts, NAMES, part="knee")
    with pytest.raises(ValueError, match="left_hip"):
        vertical_signal(kpts, [n.replace("hip", "pelvis") for n in NAMES])


def test_hysteresis_ignores_jitter_inside_the_band():
    t = np.arange(200)
    wave = -np.sin(2 * np.pi * t / 40)  # 5 full down-then-up cycles
    rng = np.random.default_rng(0)
    assert count_cycles(wave + rng.normal(0, 0.1, t.size), -0.5, 0.5) == 5
    # jitter around a threshold alone, never reaching the other side: nothing
    assert count_cycles(0.5 + rng.normal(0, 0.1, t.size), -0.5, 0.5) == 0
    # without the band (low == high would be invalid), a thin band counts the jitter
    assert count_cycles(0.5 + rng.normal(0, 0.1, t.size), 0.49, 0.51) > 10


def test_down_then_up_convention_and_min_interval():
    # up first then down-up: only the down-then-up cycle counts
    assert count_cycles(np.array([0, 1, 0, -1, 0, 1]), -0.5, 0.5) == 1
    bounce = np.array([-1, 1, -1, 1, -1, 1, -1, -1, -1, -1, 1])
    assert count_cycles(bounce, -0.5, 0.5, min_interval=0) == 4
    # counts at frames 1, 5 and 10; the rise at frame 3 is a bounce of the first
    assert count_cycles(bounce, -0.5, 0.5, min_interval=4) == 3


def test_fixed_thresholds_and_validation():
    t = np.arange(350)
    # 40 frames of rest, then 6 down-then-up cycles, on a slow drift (0.15 in 10 s)
    cycles = np.where(t < 40, 0.0, -0.3 * np.sin(2 * np.pi * (t - 40) / 50))
    signal = cycles + 0.0005 * t
    assert RepetitionCounter(low=-0.1, high=0.1).count(signal) == 6
    assert stream(RepetitionCounter(low=-0.1, high=0.1), signal)[-1] == 6
    # a drift alone (twice the band over the sequence) counts nothing once detrended
    assert RepetitionCounter(low=-0.1, high=0.1).count(0.0012 * t) == 0
    with pytest.raises(ValueError, match="both"):
        RepetitionCounter(low=0.1)
    with pytest.raises(ValueError, match="low < high"):
        RepetitionCounter(low=0.1, high=0.0)


def test_streaming_skips_nan_and_resets():
    counter = RepetitionCounter(low=-0.1, high=0.1, min_interval=0, smoothing=1)
    values = [0.0, 0.0, 0.0, -1.0, np.nan, 1.0, np.nan, -1.0, 1.0]
    assert stream(counter, values)[-1] == 2
    counter.reset()
    assert counter.current_count == 0
