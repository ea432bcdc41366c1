"""The Kalman motion model, optimal association, the two-stage OKS tracker and the tracker
choice (kpext.video.motion, association, kalman_tracking, tracker_choice, bytetrack)."""

import numpy as np
import pytest
from motion_helpers import walking_people_video

from kpext.video import (
    DEFAULT_TRACKER,
    TRACKERS,
    ByteTrackPoseTracker,
    ConstantVelocityKalman,
    KalmanOksTracker,
    PoseTracker,
    build_tracker,
    hungarian_match,
    min_detection_score,
)
from kpext.video.pipeline import VideoPoseRunner


def test_kalman_learns_a_constant_velocity_and_coasts_on_it():
    kf = ConstantVelocityKalman(np.zeros((2, 2)), position_std=1.0, velocity_std=5.0)
    for t in range(1, 30):
        kf.predict(process_std=0.01)
        kf.update(np.full((2, 2), 3.0 * t), measurement_std=1.0)
    assert kf.velocity == pytest.approx(np.full((2, 2), 3.0), abs=0.05)
    before = kf.position.copy()
    spread = kf.var_pp.copy()
    kf.predict(process_std=0.01)  # no measurement: carried on at its velocity, less certain
    assert kf.position == pytest.approx(before + 3.0, abs=0.05)
    assert (kf.var_pp > spread).all()


def test_kalman_update_leaves_masked_elements_at_their_prediction():
    kf = ConstantVelocityKalman(np.array([0.0, 0.0]), position_std=1.0, velocity_std=1.0)
    kf.predict(process_std=0.1)
    kf.update(np.array([10.0, 10.0]), measurement_std=1.0, mask=np.array([True, False]))
    assert 0.0 < kf.position[0] < 10.0 and kf.position[1] == 0.0
    with pytest.raises(ValueError, match="shape"):
        kf.update(np.zeros(3), measurement_std=1.0)


def test_kalman_velocity_decay_slows_an_unobserved_guess():
    kf = ConstantVelocityKalman(np.array([0.0]), position_std=1.0, velocity_std=1.0)
    kf.velocity[:] = 10.0
    kf.predict(process_std=0.0, velocity_decay=0.5)
    assert kf.position[0] == 10.0 and kf.velocity[0] == 5.0


def test_hungarian_match_maximises_the_total_where_greedy_does_not():
    similarity = np.array([[0.9, 0.8], [0.85, 0.1]])
    # greedy takes 0.9 first and is left with 0.1; the optimum pairs 0.8 + 0.85
    assert hungarian_match(similarity, 0.05) == [(0, 1), (1, 0)]
    assert hungarian_match(similarity, 0.82) == [(0, 0)]
    # a pair below the threshold does not displace an allowed one: solving first and
    # filtering after would pair 0.3 + 0.85 and then drop the 0.3, losing the 0.9
    assert hungarian_match(np.array([[0.9, 0.3], [0.85, 0.0]]), 0.5) == [(0, 0)]
    assert hungarian_match(np.zeros((0, 3)), 0.5) == []


def track_walkers(tracker, **video_args):
    video = walking_people_video(**video_args)
    per_person = {}
    for frame in video.frames:
        for person, tid in zip(frame.person_ids, tracker.update(frame.keypoints, frame.boxes,
                                                                frame.scores)):  # fmt: skip
            per_person.setdefault(int(person), []).append(tid)
    return per_person


def test_kalman_oks_keeps_each_walker_through_a_gap_and_confirms_in_frame_zero():
    ids = track_walkers(KalmanOksTracker(), num_frames=60, gaps=[(1, 20, 8)], seed=1)
    assert {p: set(v) for p, v in ids.items()} == {0: {1}, 1: {2}, 2: {3}}


def test_kalman_oks_confirms_a_newcomer_on_its_second_frame():
    tracker = KalmanOksTracker(min_hits=2)
    video = walking_people_video(num_frames=12, gaps=[(2, 0, 5)], shuffle=False, seed=0)
    ids = [tracker.update(fr.keypoints, fr.boxes, fr.scores) for fr in video.frames]
    assert ids[0] == [1, 2]  # frame 0: confirmed at once, as ByteTrack does
    assert ids[5] == [1, 2, None]  # the third person's first frame: not yet a track
    assert ids[6] == [1, 2, 3]


def test_kalman_oks_low_score_detections_continue_tracks_but_never_start_them():
    tracker = KalmanOksTracker(high_score=0.5, low_score=0.1)
    video = walking_people_video(num_frames=10, gaps=(), shuffle=False, seed=0)
    first = video.frames[0]
    assert tracker.update(first.keypoints, first.boxes, np.array([0.9, 0.9, 0.3])) == [1, 2, None]
    for frame in video.frames[1:4]:
        low = np.array([0.9, 0.3, 0.3])  # person 1 half hidden: a low score; 2 was never tracked
        assert tracker.update(frame.keypoints, frame.boxes, low) == [1, 2, None]
    frame = video.frames[4]
    assert tracker.update(frame.keypoints, frame.boxes, np.array([0.9, 0.9, 0.05])) == [1, 2, None]


def test_kalman_oks_drops_a_track_after_max_age_and_starts_a_new_id():
    ids = track_walkers(KalmanOksTracker(max_age=3), num_frames=30, gaps=[(1, 10, 6)], seed=0)
    before, after = ids[1][:10], ids[1][10:]  # person 1 is back from frame 16 on
    assert len(set(before)) == 1 and before[0] in (1, 2, 3)
    assert after[0] is None and set(after[1:]) == {4}  # a newcomer: confirmed on its second frame


def test_tracker_choice_builds_each_tracker_and_its_detection_floor():
    assert DEFAULT_TRACKER == "kalman-oks" and set(TRACKERS) == {
        "kalman-oks",
        "greedy",
        "bytetrack",
    }
    assert isinstance(build_tracker(), KalmanOksTracker)
    assert isinstance(build_tracker("greedy", max_age=4), PoseTracker)
    assert build_tracker("greedy", max_age=4).max_age == 4
    assert isinstance(build_tracker("bytetrack"), ByteTrackPoseTracker)
    kalman = build_tracker("kalman-oks", score_threshold=0.6)
    assert (kalman.high_score, kalman.low_score, kalman.max_age) == (0.6, 0.1, 30)
    assert min_detection_score("greedy", 0.6) == 0.6
    assert min_detection_score("kalman-oks", 0.6) == min_detection_score("bytetrack", 0.6) == 0.1
    with pytest.raises(ValueError, match="unknown tracker"):
        build_tracker("sort")


@pytest.mark.parametrize("name", TRACKERS)
def test_every_tracker_keeps_the_walkers_apart_through_the_runner(name):
    runner = VideoPoseRunner(None, tracker=build_tracker(name), score_threshold=0.1)
    runner.reset()
    video = walking_people_video(num_frames=40, gaps=(), seed=2)
    seen = {}
    for t, frame in enumerate(video.frames):
        persons = runner.track_detections(frame.boxes, frame.scores, frame.keypoints, t / 30)
        # untracked detections (bytetrack's first frame) are left out, in order
        for person in persons:
            row = np.flatnonzero((frame.boxes == person.box).all(axis=1))[0]
            seen.setdefault(int(frame.person_ids[row]), set()).add(person.track_id)
    assert sorted(seen) == [0, 1, 2]
    assert all(len(ids) == 1 for ids in seen.values()), seen
    assert len(set().union(*seen.values())) == 3


def test_bytetrack_ids_count_from_first_id_again_after_reset():
    tracker = ByteTrackPoseTracker(min_hits=1)
    video = walking_people_video(num_frames=3, gaps=(), shuffle=False, seed=0)
    first = [tracker.update(fr.keypoints, fr.boxes, fr.scores) for fr in video.frames]
    tracker.reset()
    again = [tracker.update(fr.keypoints, fr.boxes, fr.scores) for fr in video.frames]
    assert first == again and sorted(first[-1]) == [1, 2, 3]
