"""One image of synthetic people: who stands where (:func:`sample_scene`), the people
painted and labelled (:func:`render_people`), and the finished image (:func:`render_image`).

Labels
------
Keypoints are written in COCO's pixel-index convention: the centre of pixel
``(i, j)`` is ``(i, j)``, i.e. the continuous coordinate minus 0.5 (Detectron2 adds
the 0.5 back when loading; see :mod:`kpext.geometry`). A keypoint is

* ``v=0`` (stored as ``0, 0, 0``) when it falls outside the image;
* ``v=1`` when it is inside but hidden: covered by a person drawn later, covered by
  one of the person's own nearer parts, or a face point on the far side of the head;
* ``v=2`` otherwise.

``bbox`` and ``area`` describe the person's whole drawn silhouette (including the
parts hidden behind other people) clipped to the image, so that OKS is scaled by
the person's size rather than by how much of it happens to be visible. People too
hidden or truncated to be recognisable (fewer than :data:`MIN_VISIBLE_KEYPOINTS`
visible keypoints, or less than :data:`MIN_VISIBLE_FRACTION` of the silhouette
visible) are removed and the image is redrawn without them, so no unlabelled
person is ever painted. Each label also carries the person's ``style`` name and the
body's ``yaw`` (written into the COCO annotations as extra fields, which COCO tools
ignore; the yaw is the facing target's, :mod:`kpext.data.facing`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from kpext.data.facing import wrap_yaw
from kpext.data.keypoint_sets import COCO_PERSON_KEYPOINT_NAMES
from kpext.geometry import continuous_to_coco, pixel_containing

from .background import draw_background
from .body import PersonSpec, sample_person_spec
from .painting import draw_part, fill_polygon
from .parts import PersonModel, build_person
from .people_config import SyntheticConfig
from .styles import is_styled, sample_person_style

__all__ = [
    "MIN_VISIBLE_KEYPOINTS",
    "MIN_VISIBLE_FRACTION",
    "sample_scene",
    "render_people",
    "render_image",
]

NUM_KEYPOINTS = len(COCO_PERSON_KEYPOINT_NAMES)

# A person must keep this many v=2 keypoints and this share of its silhouette
# visible to be kept; otherwise it would be a label without a visible person.
MIN_VISIBLE_KEYPOINTS = 3
MIN_VISIBLE_FRACTION = 0.2


def _box_coverage(a: Tuple[float, ...], b: Tuple[float, ...]) -> float:
    """Intersection over the smaller box's area: how much one may hide the other."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / max(smaller, 1e-6)


_MAX_BOX_COVERAGE = 0.55
_PLACEMENT_TRIES = 12


def _place(
    rng: np.random.Generator,
    extent: Tuple[float, ...],
    size: int,
    lo_hi: int,
    truncate: bool,
    max_truncation: float = 0.4,
) -> float:
    """Offset along one axis that puts [extent lo, hi] inside [0, size), or lets up
    to ``max_truncation`` of it stick out when ``truncate``."""
    lo, hi = extent[lo_hi], extent[lo_hi + 2]
    margin = max_truncation * (hi - lo) if truncate else 0.0
    low, high = -lo - margin, size - hi + margin
    if high < low:  # larger than the image: centre it, give or take
        low, high = high, low
    return float(rng.uniform(low, high))


def sample_scene(cfg: SyntheticConfig, rng: np.random.Generator) -> List[PersonSpec]:
    """People for one image, placed mostly inside it, farthest first.

    Crowded images get smaller people; a person whose box would hide more than
    about half of another's (or be hidden by it) is re-drawn, so that overlaps stay
    partial. A close-up (probability ``cfg.large_person_prob``) has at most two
    people, the first 60-100% of the tallest allowed height.
    """
    count = int(rng.integers(cfg.min_people, cfg.max_people + 1))
    close_up = cfg.large_person_prob > 0 and rng.random() < cfg.large_person_prob
    if close_up:
        count = min(count, max(2, cfg.min_people))
    tallest = max(cfg.min_person_height, cfg.max_person_height_frac * cfg.height * count**-0.35)
    largest = cfg.max_person_height_frac * cfg.height
    styled = is_styled(cfg)
    people: List[PersonSpec] = []
    boxes: List[Tuple[float, ...]] = []
    for i in range(count):
        for _ in range(_PLACEMENT_TRIES):
            if close_up and i == 0:
                height = max(cfg.min_person_height, largest * rng.uniform(0.6, 1.0))
            else:
                height = math.exp(rng.uniform(math.log(cfg.min_person_height), math.log(tallest)))
            spec = sample_person_spec(rng, height)
            if styled:
                spec = dataclasses.replace(spec, style=sample_person_style(rng, cfg, height))
            extent = build_person(spec).extent()
            truncate = rng.random() < cfg.truncation_prob
            dx = _place(rng, extent, cfg.width, 0, truncate, cfg.max_truncation)
            dy = _place(rng, extent, cfg.height, 1, truncate, cfg.max_truncation)
            box = (extent[0] + dx, extent[1] + dy, extent[2] + dx, extent[3] + dy)
            if all(_box_coverage(box, other) <= _MAX_BOX_COVERAGE for other in boxes):
                people.append(dataclasses.replace(spec, center=(dx, dy)))
                boxes.append(box)
                break
    order = rng.permutation(len(people))
    return [people[i] for i in order]


def _add_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    noise = rng.standard_normal(image.shape, dtype=np.float32) * sigma
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _finish(image: np.ndarray, rng: np.random.Generator, degrade_prob: float = 0.0) -> np.ndarray:
    """Camera-like degradations over the whole picture: mild blur and noise, and with
    probability ``degrade_prob`` a strong blur and/or strong noise on top."""
    if rng.random() < 0.25:
        image = cv2.GaussianBlur(image, (3, 3), 0.7)
    image = _add_noise(image, rng, rng.uniform(2.0, 8.0))
    if degrade_prob > 0 and rng.random() < degrade_prob:
        kind = rng.random()
        if kind < 0.7:  # blur, or blur then noise
            image = cv2.GaussianBlur(image, (0, 0), rng.uniform(1.0, 2.2))
        if kind >= 0.4:
            image = _add_noise(image, rng, rng.uniform(8.0, 18.0))
    return image


_OWNER_PARTS = 32  # owner-buffer code = (person + 1) * 32 + part index


def render_people(canvas: np.ndarray, people: Sequence[PersonSpec]) -> List[Dict[str, Any]]:
    """Draw ``people`` onto ``canvas`` in place, farthest first, and label them.

    Returns one dict per person (same order) with ``keypoints`` ((17, 3) float:
    COCO pixel-index x, y rounded to 2 decimals, and v), ``num_keypoints``,
    ``bbox`` ([x, y, w, h] of the whole silhouette inside the image, empty
    silhouettes give zeros), ``area`` (silhouette pixels inside the image),
    ``visible_area`` (pixels where this person is the topmost paint), ``mask``
    (HxW bool silhouette), ``style`` (the person's style name) and ``yaw`` (the body's
    turn in degrees, wrapped by :func:`kpext.data.facing.wrap_yaw` and rounded to 0.1).
    Needs no random numbers: the specs fix everything.
    """
    height, width = canvas.shape[:2]
    if len(people) >= 2**16 // _OWNER_PARTS - 1:
        raise ValueError(f"at most {2**16 // _OWNER_PARTS - 2} people per image")
    owner = np.zeros((height, width), dtype=np.uint16)
    models = [build_person(spec) for spec in people]
    background = canvas.copy()  # what outlines show inside, what low contrast is measured on
    masks = []
    for p, (spec, model) in enumerate(zip(people, models)):
        mask = np.zeros((height, width), dtype=np.uint8)
        for part in model.parts:
            fill_polygon(mask, part.polygon, 1, antialias=False)
        mask = mask.astype(bool)
        background_mean = None
        if spec.style.name in ("lowcontrast", "outline"):
            under = background[mask] if mask.any() else background.reshape(-1, 3)
            background_mean = under.mean(axis=0)
        for k, part in enumerate(model.parts):
            draw_part(canvas, part, spec, background, background_mean)
            fill_polygon(owner, part.polygon, (p + 1) * _OWNER_PARTS + k, antialias=False)
        masks.append(mask)
    labels = [
        _label_person(p, model, owner, masks[p], spec.style.name)
        for p, (spec, model) in enumerate(zip(people, models))
    ]
    for label, spec in zip(labels, people):
        label["yaw"] = round(wrap_yaw(spec.yaw), 1)
    return labels


def _label_person(
    p: int, model: PersonModel, owner: np.ndarray, mask: np.ndarray, style: str = "classic"
) -> Dict[str, Any]:
    height, width = owner.shape
    keypoints = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float64)
    for j, (x, y) in enumerate(np.round(continuous_to_coco(model.keypoints), 2)):
        if not (0.0 <= x <= width - 1 and 0.0 <= y <= height - 1):
            continue  # outside the image: v=0 and x=y=0, as in COCO
        code = int(owner[pixel_containing(y), pixel_containing(x)])
        on_top = code // _OWNER_PARTS == p + 1 and code % _OWNER_PARTS in model.home_parts[j]
        keypoints[j] = (x, y, 2.0 if on_top and not model.face_hidden[j] else 1.0)
    ys, xs = np.nonzero(mask)
    if len(xs):
        x0, y0 = int(xs.min()), int(ys.min())
        bbox = [float(x0), float(y0), float(xs.max() + 1 - x0), float(ys.max() + 1 - y0)]
    else:
        bbox = [0.0, 0.0, 0.0, 0.0]
    return {
        "keypoints": keypoints,
        "num_keypoints": int((keypoints[:, 2] > 0).sum()),
        "bbox": bbox,
        "area": float(len(xs)),
        "visible_area": float(np.count_nonzero(owner // _OWNER_PARTS == p + 1)),
        "mask": mask,
        "style": style,
    }


def _recognisable(ann: Dict[str, Any]) -> bool:
    visible_keypoints = int((ann["keypoints"][:, 2] == 2).sum())
    visible_share = ann["visible_area"] / max(ann["area"], 1.0)
    return visible_keypoints >= MIN_VISIBLE_KEYPOINTS and visible_share >= MIN_VISIBLE_FRACTION


def _render_recognisable(background: np.ndarray, people: List[PersonSpec]):
    """Render, drop people too hidden or truncated to be seen, and render again
    without them (dropping someone only uncovers the others)."""
    while True:
        canvas = background.copy()
        anns = render_people(canvas, people)
        keep = [i for i, ann in enumerate(anns) if _recognisable(ann)]
        if len(keep) == len(people):
            return canvas, anns
        people = [people[i] for i in keep]


_LAYOUT_ATTEMPTS = 4


def render_image(
    cfg: SyntheticConfig, rng: np.random.Generator
) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
    """Draw one image (H x W x 3 uint8, BGR) and its people's labels.

    Each label dict is as returned by :func:`render_people`. The scene is laid out
    again (up to a few times) when too few people remain recognisable to reach
    ``cfg.min_people``; the best attempt is kept, and a single centred person is
    drawn in the unlikely case that none is.
    """
    background = draw_background(
        rng, cfg.width, cfg.height, cfg.max_distractors, cfg.min_person_height
    )
    best: Optional[Tuple[np.ndarray, List[Dict[str, Any]]]] = None
    for _ in range(_LAYOUT_ATTEMPTS):
        canvas, anns = _render_recognisable(background, sample_scene(cfg, rng))
        if best is None or len(anns) > len(best[1]):
            best = (canvas, anns)
        if len(anns) >= cfg.min_people:
            break
    if not best[1]:
        tallest = cfg.max_person_height_frac * cfg.height
        height = min(tallest, max(cfg.min_person_height, 0.6 * cfg.height))
        center = (cfg.width / 2, cfg.height / 2 + 0.03 * height)
        spec = sample_person_spec(rng, height, center=center)
        if is_styled(cfg):
            spec = dataclasses.replace(spec, style=sample_person_style(rng, cfg, height))
        best = _render_recognisable(background, [spec])
    image, anns = best
    return _finish(image, rng, cfg.degrade_prob), anns
