"""The settings of a split of synthetic faces: :class:`FaceSynthConfig` and its
validation, and the default splits of ``projects/FaceLandmarks``.

:mod:`kpext_synth.faces` (the generator) re-exports both; they live apart so
that the renderer's modules (sampling, painting) can read a config without importing
the generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

from .generation import check_count_and_seed, reject_setting

__all__ = ["FaceSynthConfig", "DEFAULT_FACE_SPLITS"]


@dataclass
class FaceSynthConfig:
    """Settings of one generated split.

    Attributes:
        num_images: faces (images, CSV rows) in the split.
        seed: base seed; image ``i`` of split ``s`` uses ``(seed, crc32(s), i)``.
        image_size: width and height in pixels (Kaggle: 96).
        min_face_frac, max_face_frac: face height (top of the head to the chin) as
            a fraction of the image size; large faces may have the top of the
            head cut off, the landmarks always stay inside.
        max_roll: largest in-plane rotation, degrees.
        max_yaw: largest head turn, degrees.
        occluder_prob: probability of a bar or a hand over part of the face.
        glasses_prob: probability of glasses.
        missing_fraction: share of CSV rows that keep only the 4 core points.
        noise: standard deviation of the sensor noise, grey levels (at most).
    """

    num_images: int
    seed: int = 0
    image_size: int = 96
    min_face_frac: float = 0.5
    max_face_frac: float = 1.0
    max_roll: float = 25.0
    max_yaw: float = 25.0
    occluder_prob: float = 0.3
    glasses_prob: float = 0.15
    missing_fraction: float = 0.3
    noise: float = 5.0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the offending setting (and its CLI flag)."""
        check_count_and_seed(self, ("image_size",))
        if not 32 <= self.image_size <= 1024:
            reject_setting("image_size", "must be between 32 and 1024 pixels", self.image_size)
        if not 0.2 <= self.min_face_frac <= 1.2:
            reject_setting("min_face_frac", "must be in [0.2, 1.2]", self.min_face_frac)
        if not self.min_face_frac <= self.max_face_frac <= 1.2:
            reject_setting(
                "max_face_frac",
                f"must be in [min_face_frac ({self.min_face_frac}), 1.2]",
                self.max_face_frac,
            )
        if not 0.0 <= self.max_roll <= 90.0:
            reject_setting("max_roll", "must be in [0, 90] degrees", self.max_roll)
        if not 0.0 <= self.max_yaw <= 35.0:
            # beyond ~35 degrees the far eye would hide behind the nose: every
            # label is drawn visible, so the model stops at a mild turn
            reject_setting("max_yaw", "must be in [0, 35] degrees", self.max_yaw)
        for name in ("occluder_prob", "glasses_prob", "missing_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                reject_setting(name, "must be in [0, 1]", getattr(self, name))
        if not 0.0 <= self.noise <= 50.0:
            reject_setting("noise", "must be in [0, 50] grey levels", self.noise)


# Sizes used by projects/FaceLandmarks: generated in well under a minute. The val
# split is fully labelled, so the pixel error is measured on all 15 points.
DEFAULT_FACE_SPLITS: Dict[str, FaceSynthConfig] = {
    "train": FaceSynthConfig(num_images=2000, seed=0),
    "val": FaceSynthConfig(num_images=200, seed=1, missing_fraction=0.0),
}
