"""Painting a synthetic person's parts onto a BGR image, in the person's style: the classic
shaded look (limb highlights, hair, face features, chest badge) and the silhouette,
outline, textured and low-contrast styles (:func:`draw_part`)."""

from __future__ import annotations

import math
import zlib
from typing import Any, Dict, Optional, Tuple

import cv2
import numpy as np

from .body import PersonSpec
from .colors import BGR, PersonColors, tint
from .parts import LIMB_SEGMENTS, Part
from .render import CV_SHIFT, to_cv_fixed_point
from .shapes import capsule_polygon, ellipse_points, superellipse_unit
from .styles import PersonStyle

__all__ = ["fill_polygon", "draw_shaded_capsule", "draw_part"]

# Shading highlights face straight up: a light from one side would be a left/right cue that
# a horizontal flip inverts (a flipped image is lit from the other side).
_LIGHT_DIR = np.array([0.0, -1.0])


def fill_polygon(
    image: np.ndarray, polygon: np.ndarray, color: Any, antialias: bool = True
) -> None:
    """Fill the convex (n, 2) ``polygon`` (continuous image coordinates) into ``image`` in
    place, to 1/16 pixel; ``color`` is a BGR tuple, or a number for a one-channel image
    (masks and the owner buffer, drawn without antialiasing)."""
    line = cv2.LINE_AA if antialias else cv2.LINE_8
    cv2.fillConvexPoly(image, to_cv_fixed_point(polygon), color, line, CV_SHIFT)


def _outline(image: np.ndarray, polygon: np.ndarray, color: BGR) -> None:
    """A thin darker edge, which keeps overlapping parts of one colour apart."""
    cv2.polylines(
        image, [to_cv_fixed_point(polygon)], True, tint(color, 0, 0.45), 1, cv2.LINE_AA, CV_SHIFT
    )


def draw_shaded_capsule(image: np.ndarray, part: Part) -> None:
    """A limb-like part (``part.capsule`` set) in the classic look, onto the BGR ``image``."""
    p0, p1, r0, r1 = part.capsule
    fill_polygon(image, part.polygon, part.color)
    if max(r0, r1) >= 2.0:
        # a narrow lighter band on the lit side gives the limb some roundness
        offset = _LIGHT_DIR * 0.35 * (r0 + r1) / 2
        axis = p1 - p0
        normal = np.array([-axis[1], axis[0]]) / max(np.linalg.norm(axis), 1e-6)
        offset = normal * float(np.dot(offset, normal))
        band = capsule_polygon(p0 + offset, p1 + offset, 0.35 * r0, 0.35 * r1)
        fill_polygon(image, band, tint(part.color, 255, 0.25))
        _outline(image, part.polygon, part.color)


def _draw_torso_shaded(image: np.ndarray, part: Part) -> None:
    fill_polygon(image, part.polygon, part.color)
    centroid = part.polygon.mean(axis=0)
    extent = np.ptp(part.polygon, axis=0).max()
    if extent >= 8:
        inner = centroid + 0.55 * (part.polygon - centroid) + _LIGHT_DIR * 0.12 * extent
        fill_polygon(image, inner, tint(part.color, 255, 0.15))
        _outline(image, part.polygon, part.color)
    _draw_chest_mark(image, part)


def _chest_mark_polygon(part: Part) -> Optional[np.ndarray]:
    mark = part.mark
    if mark is None:
        return None
    return ellipse_points(mark["center"], mark["rx"], mark["ry"], mark["angle"], n=16)


def _draw_chest_mark(image: np.ndarray, part: Part, color: Optional[BGR] = None) -> None:
    """The torso's chest badge, in its own colour or ``color``; nothing from behind."""
    polygon = _chest_mark_polygon(part)
    if polygon is not None:
        fill_polygon(image, polygon, part.mark["color"] if color is None else color)


def _hair_polygon(details: Dict[str, Any]) -> Optional[np.ndarray]:
    """The cap of the head ellipse covered by hair: the top, shifted to the back of
    the head, the whole head seen from behind."""
    facing_x, facing_z = details["facing"]
    n = 48
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    unit = np.stack([np.cos(t), np.sin(t)], axis=1)  # y down
    if details.get("exponent", 2.0) != 2.0:
        unit = superellipse_unit(t, details["exponent"])
    direction = np.array([-1.1 * facing_x, -1.0])
    direction /= np.linalg.norm(direction)
    cut = -0.1 + (0.45 * facing_z if facing_z >= 0 else 0.9 * facing_z)
    inside = unit @ direction >= cut
    if inside.sum() < 3:
        return None
    if inside.all():
        chosen = unit
    else:
        start = int(np.argmax(inside & ~np.roll(inside, 1)))  # first point of the arc
        rolled = np.roll(np.arange(n), -start)
        chosen = unit[rolled[inside[rolled]]]
    a = math.radians(details["angle"])
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    local = chosen * np.array([details["rx"], details["ry"]])
    return details["center"] + local @ rot.T


def _draw_head(image: np.ndarray, part: Part) -> None:
    details = part.head
    fill_polygon(image, part.polygon, details["skin"])
    hair = _hair_polygon(details)
    if hair is not None:
        fill_polygon(image, hair, details["hair"])
    for center, radius, color in details["features"]:
        center_fixed = tuple(int(v) for v in to_cv_fixed_point(center))
        radius_fixed = int(round(radius * float(1 << CV_SHIFT)))
        cv2.circle(image, center_fixed, radius_fixed, color, -1, cv2.LINE_AA, CV_SHIFT)
    if details["rx"] >= 4:
        _outline(image, part.polygon, details["skin"])


def _draw_classic_part(image: np.ndarray, part: Part) -> None:
    if part.head is not None:
        _draw_head(image, part)
    elif part.capsule is not None:
        draw_shaded_capsule(image, part)
    else:
        _draw_torso_shaded(image, part)


# --- styles other than classic ---------------------------------------------------


def _polygon_alpha(
    polygon: np.ndarray, shape: Tuple[int, ...]
) -> Optional[Tuple[slice, slice, np.ndarray]]:
    """The anti-aliased coverage of ``polygon`` in its bounding box inside an image
    of ``shape``: (rows, cols, (h, w, 1) float32 alpha), or None when outside."""
    height, width = shape[:2]
    x0 = max(0, int(math.floor(polygon[:, 0].min())) - 1)
    y0 = max(0, int(math.floor(polygon[:, 1].min())) - 1)
    x1 = min(width, int(math.ceil(polygon[:, 0].max())) + 2)
    y1 = min(height, int(math.ceil(polygon[:, 1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    fill_polygon(mask, polygon - np.array([x0, y0]), 255)
    return slice(y0, y1), slice(x0, x1), (mask.astype(np.float32) / 255.0)[..., None]


def _paint(image: np.ndarray, polygon: np.ndarray, source) -> None:
    """Blend ``source(rows, cols)`` (an (h, w, 3) array for that window of the image)
    into ``image`` inside ``polygon``, with anti-aliased edges."""
    window = _polygon_alpha(polygon, image.shape)
    if window is None:
        return
    rows, cols, alpha = window
    target = image[rows, cols].astype(np.float32)
    blended = target + (np.asarray(source(rows, cols), dtype=np.float32) - target) * alpha
    image[rows, cols] = np.clip(np.round(blended), 0, 255).astype(np.uint8)


def _pattern(style: PersonStyle, part: Part, rows: slice, cols: slice, base: BGR) -> np.ndarray:
    """The textured style's cloth for one part over an image window: stripes (across
    a limb's axis), checks or blotchy noise in the part's colour and the pattern's."""
    ys, xs = np.mgrid[rows, cols].astype(np.float32) + 0.5
    angle = style.pattern_angle
    if part.capsule is not None:
        axis = part.capsule[1] - part.capsule[0]
        angle += math.degrees(math.atan2(axis[1], axis[0]))
    a = math.radians(angle)
    u = (xs * math.cos(a) + ys * math.sin(a)) / style.pattern_period
    v = (-xs * math.sin(a) + ys * math.cos(a)) / style.pattern_period
    if style.pattern == "stripes":
        t = (u % 1.0 < 0.5).astype(np.float32)
    elif style.pattern == "checks":
        t = ((u % 1.0 < 0.5) ^ (v % 1.0 < 0.5)).astype(np.float32)
    else:  # noise: coarse random cells, smoothly enlarged
        h, w = xs.shape
        cells = np.random.default_rng([style.pattern_seed, zlib.crc32(part.name.encode())])
        period = style.pattern_period
        grid = (max(2, int(h / period) + 2), max(2, int(w / period) + 2))
        coarse = cells.random(grid, dtype=np.float32)
        t = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
        t = np.clip((t - 0.5) * 3.0 + 0.5, 0.0, 1.0)
    a_color, b_color = np.asarray(base, np.float32), np.asarray(style.pattern_color, np.float32)
    return a_color + (b_color - a_color) * t[..., None]


# lowcontrast: each part's offset from the background, in units of the style's contrast;
# legs go the other way from the torso; left and right alike (a mirror keeps the cues)
_LOW_CONTRAST_FACTORS = {
    "torso": 1.0, "head": 1.4, "neck": 1.2,
    "left_upper_arm": 1.35, "left_forearm": 1.35, "right_upper_arm": 1.35, "right_forearm": 1.35,
    "left_thigh": -0.75, "left_shin": -0.75, "right_thigh": -0.75, "right_shin": -0.75,
}  # fmt: skip
_LOW_CONTRAST_OTHER = 1.3  # hands and feet


_MIN_INK_DISTANCE = 80.0  # BGR distance of an outline's colour from the background


def _legible_ink(ink: BGR, background_mean: np.ndarray) -> BGR:
    """``ink``, or black or white (the farther) when it is too close to the mean
    background under the person: outlines are held out to test shape, not eyesight."""
    if np.linalg.norm(np.subtract(ink, background_mean)) >= _MIN_INK_DISTANCE:
        return ink
    return (20, 20, 20) if float(np.mean(background_mean)) > 110 else (235, 235, 235)


def draw_part(
    image: np.ndarray,
    part: Part,
    spec: PersonSpec,
    background: np.ndarray,
    background_mean: np.ndarray,
) -> None:
    """Draw one part in its person's style (classic: :func:`_draw_classic_part`)."""
    style = spec.style
    if style.name == "classic":
        _draw_classic_part(image, part)
    elif style.name == "silhouette":
        fill_polygon(image, part.polygon, style.ink)
    elif style.name == "outline":
        # the inside shows the background, so nearer parts and people still hide farther ones
        _paint(image, part.polygon, lambda rows, cols: background[rows, cols])
        ink = _legible_ink(style.ink, background_mean)
        width = int(round(style.line_width))
        points = [to_cv_fixed_point(part.polygon)]
        cv2.polylines(image, points, True, ink, width, cv2.LINE_AA, CV_SHIFT)
        mark = _chest_mark_polygon(part)
        if mark is not None:
            cv2.polylines(image, [to_cv_fixed_point(mark)], True, ink, width, cv2.LINE_AA, CV_SHIFT)
        if part.head is not None:
            for center, radius, _ in part.head["features"]:
                fill_polygon(image, ellipse_points(center, radius, radius, 0.0, n=12), ink)
    elif style.name == "textured":
        if not _is_cloth(part, spec.colors):
            _draw_classic_part(image, part)
        else:
            _paint(image, part.polygon, lambda r, c: _pattern(style, part, r, c, part.color))
            _outline(image, part.polygon, part.color)
            _draw_chest_mark(image, part)
    else:  # lowcontrast: flat parts a few grey levels off the background
        factor = _LOW_CONTRAST_FACTORS.get(part.name, _LOW_CONTRAST_OTHER)
        color = np.clip(background_mean + style.contrast * factor, 0, 255)
        bgr = tuple(int(round(c)) for c in color)
        fill_polygon(image, part.polygon, bgr)
        ink = tuple(int(round(c)) for c in np.clip(color - 1.5 * abs(style.contrast), 0, 255))
        _draw_chest_mark(image, part, ink)
        if part.head is not None:
            for center, radius, _ in part.head["features"]:
                fill_polygon(image, ellipse_points(center, radius, radius, 0.0, n=12), ink)


_LIMB_COLOR_FIELDS = {segment[0]: segment[5] for segment in LIMB_SEGMENTS}


def _is_cloth(part: Part, colors: PersonColors) -> bool:
    """Torso, sleeves and trousers; not the head, neck, hands, shoes or bare limbs."""
    if part.name == "torso":
        return True
    field = _LIMB_COLOR_FIELDS.get(part.name.split("_", 1)[-1])
    return field in ("upper_arms", "forearms", "thighs", "shins") and (
        getattr(colors, field) != colors.skin
    )
