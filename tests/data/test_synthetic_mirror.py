"""Mirror consistency of the synthetic people: the mirrored person (position mirrored, yaw,
head turn and lean negated, left and right poses exchanged) drawn on the mirrored background
is the horizontal flip of the original image, and its keypoints are the original's mirrored
through the flip map. So no look of the renderer tells left from right except the way a person
faces, and training with horizontal flips (which swap the labels) meets no contradiction.

The textured style is left out: its stripes and noise are laid in image coordinates, so their
phase is not mirror-symmetric (the pattern is clothing, not a side cue)."""

import dataclasses

import numpy as np
import pytest

from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES
from kpext_synth.background import draw_background
from kpext_synth.body import sample_person_spec
from kpext_synth.people import SyntheticConfig
from kpext_synth.scene import render_people
from kpext_synth.styles import sample_person_style

WIDTH, HEIGHT = 192, 160
MIRROR_STYLES = ("classic", "silhouette", "outline", "lowcontrast")


def flip_index():
    """Each COCO keypoint's left/right counterpart, from the names alone."""
    names = list(COCO_PERSON_KEYPOINT_NAMES)

    def swap(name):
        if name.startswith("left_"):
            return "right_" + name[5:]
        if name.startswith("right_"):
            return "left_" + name[6:]
        return name

    return [names.index(swap(n)) for n in names]


def mirrored(spec, width):
    return dataclasses.replace(
        spec,
        center=(width - spec.center[0], spec.center[1]),
        yaw=-spec.yaw,
        head_yaw=-spec.head_yaw,
        lean=-spec.lean,
        left_arm=spec.right_arm,
        right_arm=spec.left_arm,
        left_leg=spec.right_leg,
        right_leg=spec.left_leg,
    )


def scene(seed, style):
    rng = np.random.default_rng(seed)
    cfg = SyntheticConfig(num_images=1, styles=(style,), width=WIDTH, height=HEIGHT)
    background = draw_background(rng, WIDTH, HEIGHT, 2, 40)
    people = []
    for i in range(2):
        height = float(rng.uniform(70, 140))
        center = (float(rng.uniform(40, WIDTH - 40)), float(rng.uniform(0.45, 0.6) * HEIGHT))
        spec = sample_person_spec(rng, height, center=center)
        people.append(dataclasses.replace(spec, style=sample_person_style(rng, cfg, height)))
    return background, people


@pytest.mark.parametrize("style", MIRROR_STYLES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mirrored_person_renders_the_flipped_image(seed, style):
    background, people = scene(seed, style)
    original = background.copy()
    labels = render_people(original, people)
    mirror = np.ascontiguousarray(background[:, ::-1])
    mirror_labels = render_people(mirror, [mirrored(p, WIDTH) for p in people])

    difference = np.abs(original[:, ::-1].astype(np.int16) - mirror.astype(np.int16))
    # Anti-aliased edges may round the other way by a level or two; the rest is the same
    # image (measured: mean <= 0.03, no pixel off by more than 12 levels; a 22% tint of the
    # left limbs gave a mean of 2-4 and 5-11% of pixels off by more than 12).
    assert difference.mean() < 0.1, f"mean difference {difference.mean():.3f}"
    assert (difference.max(axis=2) > 12).mean() < 0.001
    # Any left/right look (a tint on one side, a light from one side) fails here:
    changed = (np.abs(original.astype(np.int16) - background).max(axis=2) > 0).mean()
    assert changed > 0.05  # the people cover enough of the image to show one

    flip = flip_index()
    for label, mirror_label in zip(labels, mirror_labels):
        kp, mkp = label["keypoints"], mirror_label["keypoints"]
        inside = kp[:, 2] > 0
        assert np.array_equal(inside, mkp[flip, 2] > 0)
        # COCO pixel indices: x mirrors to (width - 1) - x.
        np.testing.assert_allclose(mkp[flip][inside, 0], WIDTH - 1 - kp[inside, 0], atol=0.02)
        np.testing.assert_allclose(mkp[flip][inside, 1], kp[inside, 1], atol=0.02)
        # Visibility is read from a hard-edged owner buffer: at most one point may sit on
        # an edge pixel that rounds the other way.
        assert int((kp[:, 2] != mkp[flip, 2]).sum()) <= 1
        assert label["yaw"] == pytest.approx(-mirror_label["yaw"]) or abs(label["yaw"]) == 180
        x, y, w, h = label["bbox"]
        mx, my, mw, mh = mirror_label["bbox"]
        assert abs((WIDTH - (x + w)) - mx) <= 1 and abs(w - mw) <= 1 and (y, h) == (my, mh)


def test_front_and_back_views_differ_where_a_mirror_cannot_tell():
    """The facing cues: the same pose seen from the front and from behind (yaw 0 vs 180) are
    not mirror images of each other in the classic style (face, badge, hair), so a model can
    tell which side is left; as silhouettes they nearly are (documented: no facing cue)."""
    rng = np.random.default_rng(5)
    spec = sample_person_spec(rng, 120.0, center=(WIDTH / 2, HEIGHT * 0.55))
    spec = dataclasses.replace(spec, yaw=0.0, head_yaw=0.0, lean=0.0)
    symmetric = dataclasses.replace(spec, right_arm=spec.left_arm, right_leg=spec.left_leg)

    def draw(person):
        canvas = np.full((HEIGHT, WIDTH, 3), 127, np.uint8)
        render_people(canvas, [person])
        return canvas.astype(np.int16)

    def front_back_gap(person):
        front, back = draw(person), draw(dataclasses.replace(person, yaw=180.0))
        return np.abs(front - back[:, ::-1]).mean()

    classic_gap = front_back_gap(symmetric)
    silhouette = dataclasses.replace(
        symmetric, style=dataclasses.replace(symmetric.style, name="silhouette")
    )
    assert classic_gap > 4 * max(front_back_gap(silhouette), 0.05)
