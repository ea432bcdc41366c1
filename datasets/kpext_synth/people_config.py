"""The settings of a split of synthetic people: :class:`SyntheticConfig` and its
validation, the style names a split draws from, and the demo's default splits.

Besides the styles, ``degrade_prob`` adds strong blur and noise to a whole image,
``truncation_prob`` / ``max_truncation`` cut people at the image borders and
``large_person_prob`` makes close-ups with one person of 60-100% of
``max_person_height_frac`` times the image height. Of the default splits
(:data:`DEFAULT_SPLITS`), ``val`` draws uniformly from :data:`TRAIN_STYLES`, ``train``
from :data:`TRAIN_STYLE_MIX` (the same styles, half its people ``classic``) and
``val_heldout`` only from :data:`HELDOUT_STYLES`, which training never sees.

:mod:`kpext_synth.people` (the generator) re-exports these names; they live
apart so that the renderer's modules (styles, scenes) can read a config without
importing the generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from .generation import check_count_and_seed, reject_setting

__all__ = [
    "STYLES",
    "TRAIN_STYLES",
    "TRAIN_STYLE_MIX",
    "HELDOUT_STYLES",
    "SyntheticConfig",
    "DEFAULT_SPLITS",
]

# How people may be drawn (see :mod:`kpext_synth.styles`). Training never sees
# the held-out ones: a model that learned people, not one renderer, still finds
# people drawn as outlines or in patterned clothes.
STYLES: Tuple[str, ...] = ("classic", "silhouette", "outline", "textured", "lowcontrast")
TRAIN_STYLES: Tuple[str, ...] = ("classic", "silhouette", "lowcontrast")
# The training split's draw: classic for half the people. With a uniform draw the hard styles
# slowed all learning at the demo's schedule (README, "The demo recipe": 1.6 AP lower on val).
TRAIN_STYLE_MIX: Tuple[str, ...] = ("classic", "classic", "silhouette", "lowcontrast")
HELDOUT_STYLES: Tuple[str, ...] = ("outline", "textured")


@dataclass
class SyntheticConfig:
    """Settings of one generated split. Pixel sizes are in output-image pixels.

    Attributes:
        num_images: number of images of the split.
        seed: base seed; image ``i`` of split ``s`` uses ``(seed, crc32(s), i)``.
        width, height: image size in pixels.
        min_people, max_people: number of people drawn per image (people that end up
            almost entirely hidden or outside are dropped, so very crowded settings
            may occasionally give fewer than ``min_people``).
        min_person_height: smallest standing height of a person, in pixels.
        max_person_height_frac: largest standing height, as a fraction of the image
            height (lowered automatically for crowded images).
        truncation_prob: probability that a person may extend past the image border.
        max_distractors: largest number of limb-like background distractors.
        jpeg_quality: JPEG quality of the written images.
        styles: the :data:`STYLES` people are drawn in, one picked per person, uniformly
            over the entries (a name given twice is drawn twice as often).
        shape_variety: probability that a person gets a random head shape
            (:data:`HEAD_SHAPES`) and limb thickness instead of the classic ones.
        max_truncation: largest share of a truncated person's extent (per axis)
            that may lie outside the image.
        large_person_prob: probability of a close-up image: at most 2 people, one of
            them 60-100% of ``max_person_height_frac`` times the image height.
        degrade_prob: probability of strong blur and/or noise over an image.
    """

    num_images: int
    seed: int = 0
    width: int = 256
    height: int = 256
    min_people: int = 1
    max_people: int = 6
    min_person_height: float = 30.0
    max_person_height_frac: float = 0.9
    truncation_prob: float = 0.15
    max_distractors: int = 6
    jpeg_quality: int = 95
    styles: Tuple[str, ...] = ("classic",)
    shape_variety: float = 0.0
    max_truncation: float = 0.4
    large_person_prob: float = 0.0
    degrade_prob: float = 0.0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the offending setting (and its CLI flag)."""
        check_count_and_seed(
            self, ("width", "height", "min_people", "max_people", "max_distractors", "jpeg_quality")
        )
        for name in ("width", "height"):
            if not 64 <= getattr(self, name) <= 4096:
                reject_setting(name, "must be between 64 and 4096 pixels", getattr(self, name))
        if self.min_people < 1:
            reject_setting("min_people", "must be at least 1", self.min_people)
        if self.max_people > 20:
            reject_setting("max_people", "must be at most 20 (COCO keypoint evaluation keeps 20 "
                 "detections per image)", self.max_people)  # fmt: skip
        if self.max_people < self.min_people:
            reject_setting(
                "max_people", f"must be >= min_people ({self.min_people})", self.max_people
            )
        if not 8 <= self.min_person_height <= self.height:
            reject_setting("min_person_height", f"must be between 8 and the image height "
                 f"({self.height}) pixels", self.min_person_height)  # fmt: skip
        if not 0.0 < self.max_person_height_frac <= 1.0:
            reject_setting(
                "max_person_height_frac", "must be in (0, 1]", self.max_person_height_frac
            )
        if self.max_person_height_frac * self.height < self.min_person_height:
            reject_setting("max_person_height_frac",
                           f"times the image height ({self.height}) must be "
                           f">= min_person_height ({self.min_person_height})",
                           self.max_person_height_frac)  # fmt: skip
        if not 0.0 <= self.truncation_prob <= 1.0:
            reject_setting("truncation_prob", "must be in [0, 1]", self.truncation_prob)
        if self.max_distractors < 0:
            reject_setting("max_distractors", "must be >= 0", self.max_distractors)
        if not 1 <= self.jpeg_quality <= 100:
            reject_setting("jpeg_quality", "must be between 1 and 100", self.jpeg_quality)
        if isinstance(self.styles, str) or not self.styles:
            reject_setting("styles", "must be a non-empty sequence of style names", self.styles)
        unknown = [s for s in self.styles if s not in STYLES]
        if unknown:
            reject_setting("styles", f"must be among {', '.join(STYLES)}", self.styles)
        for name in ("shape_variety", "large_person_prob", "degrade_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                reject_setting(name, "must be in [0, 1]", getattr(self, name))
        if not 0.0 <= self.max_truncation <= 0.9:
            reject_setting("max_truncation", "must be in [0, 0.9]", self.max_truncation)


# The variety of the demo's splits: styles mixed per person, head and limb shapes,
# degraded images, more and deeper border crops, and close-ups in which one person
# fills most of the image (about 1 image in 8 has a person taller than 60% of it).
_VARIED = dict(
    shape_variety=0.5,
    max_person_height_frac=0.95,
    truncation_prob=0.25,
    max_truncation=0.5,
    large_person_prob=0.1,
    degrade_prob=0.2,
)

# Sizes used by the demo (`make demo`): small enough to generate in seconds.
# ``val_heldout`` is drawn only in styles that ``train`` never uses.
DEFAULT_SPLITS: Dict[str, SyntheticConfig] = {
    "train": SyntheticConfig(num_images=1200, seed=0, styles=TRAIN_STYLE_MIX, **_VARIED),
    "val": SyntheticConfig(num_images=100, seed=1, styles=TRAIN_STYLES, **_VARIED),
    "val_heldout": SyntheticConfig(num_images=100, seed=2, styles=HELDOUT_STYLES, **_VARIED),
}
