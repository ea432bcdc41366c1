"""Colours of the synthetic people: the BGR type, tints, random and natural tones, and a
person's palette (:class:`PersonColors`, :func:`sample_person_colors`).

Left and right limbs share their colours: a side-specific look would be a cue that a
horizontal flip inverts (see :mod:`kpext_synth.people`).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

__all__ = [
    "BGR",
    "SKIN_TONES",
    "PersonColors",
    "tint",
    "jitter_rgb_to_bgr",
    "random_color",
    "sample_person_colors",
]

BGR = Tuple[int, int, int]


# (R, G, B) skin and hair tones, jittered per person.
SKIN_TONES = [
    (255, 224, 189), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (92, 56, 32),
]  # fmt: skip
_HAIR_TONES = [
    (20, 20, 20), (60, 40, 30), (110, 70, 40), (200, 170, 100), (150, 150, 150), (140, 60, 30),
]  # fmt: skip


@dataclass(frozen=True)
class PersonColors:
    """BGR colours of one person's parts (left and right limbs alike)."""

    skin: BGR = (150, 180, 225)
    hair: BGR = (30, 35, 45)
    torso: BGR = (60, 60, 200)
    upper_arms: BGR = (200, 120, 40)
    forearms: BGR = (200, 120, 40)
    thighs: BGR = (90, 60, 30)
    shins: BGR = (90, 60, 30)
    shoes: BGR = (25, 25, 25)


def tint(color: BGR, toward: float, amount: float) -> BGR:
    """Blend a colour towards white (toward=255) or black (toward=0)."""
    return tuple(int(round(c + (toward - c) * amount)) for c in color)  # type: ignore[return-value]


def jitter_rgb_to_bgr(rng: np.random.Generator, rgb: Tuple[int, int, int], amount: float) -> BGR:
    """An (R, G, B) tone moved by up to ``amount`` per channel, as BGR."""
    values = np.clip(np.asarray(rgb, dtype=np.float64) + rng.uniform(-amount, amount, 3), 0, 255)
    return (int(values[2]), int(values[1]), int(values[0]))


def random_color(rng: np.random.Generator, min_sat: float = 0.35, min_val: float = 0.3) -> BGR:
    """A random hue with saturation and value at least ``min_sat`` / ``min_val``, as BGR."""
    hue, sat, val = rng.uniform(0, 1), rng.uniform(min_sat, 1.0), rng.uniform(min_val, 0.95)
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return (int(b * 255), int(g * 255), int(r * 255))


def _distinct_color(
    rng: np.random.Generator, others: Sequence[BGR], min_distance: float = 90.0
) -> BGR:
    color = random_color(rng)
    for _ in range(20):
        if all(np.linalg.norm(np.subtract(color, o)) >= min_distance for o in others):
            break
        color = random_color(rng)
    return color


def sample_person_colors(rng: np.random.Generator) -> PersonColors:
    """Skin and hair from natural tones; torso, sleeves and trousers distinct."""
    skin = jitter_rgb_to_bgr(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 12)
    hair = jitter_rgb_to_bgr(rng, _HAIR_TONES[rng.integers(len(_HAIR_TONES))], 10)
    torso = _distinct_color(rng, [skin])
    sleeves = _distinct_color(rng, [skin, torso])
    trousers = _distinct_color(rng, [torso])
    short_sleeves, shorts = rng.random() < 0.35, rng.random() < 0.2
    return PersonColors(
        skin=skin, hair=hair, torso=torso,
        upper_arms=sleeves, forearms=skin if short_sleeves else sleeves,
        thighs=trousers, shins=skin if shorts else trousers,
        shoes=tint(random_color(rng, 0.0, 0.1), 0, 0.5),
    )  # fmt: skip
