"""Random synthetic faces: a shape, one of a few expressions, a look (grey levels, hair,
glasses) and a pose placed so that every landmark lies inside the image
(:func:`sample_face_spec`)."""

from __future__ import annotations

import numpy as np

from .face_config import FaceSynthConfig
from .face_model import (
    Expression,
    FaceLook,
    FacePose,
    FaceShape,
    FaceSpec,
    face_landmarks,
    labelled_points,
)

__all__ = ["uniform", "sample_face_spec"]

_PLACEMENT_MARGIN_PX = 1.0  # landmarks stay this far inside the image


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """One float from U(low, high): how the face renderer draws every scalar."""
    return float(rng.uniform(low, high))


def _sample_shape(rng: np.random.Generator) -> FaceShape:
    eye_half_width = uniform(rng, 0.13, 0.18)
    return FaceShape(
        head_rx=uniform(rng, 0.86, 1.02),
        head_ry_top=uniform(rng, 1.15, 1.4),
        head_ry_bottom=uniform(rng, 1.05, 1.25),
        jaw_taper=uniform(rng, 0.2, 0.5),
        eye_dx=uniform(rng, 0.35, 0.44),
        eye_y=uniform(rng, -0.28, -0.16),
        eye_half_width=eye_half_width,
        brow_gap=uniform(rng, 0.16, 0.24),
        brow_arch=uniform(rng, 0.02, 0.08),
        brow_thickness=uniform(rng, 0.04, 0.09),
        nose_length=uniform(rng, 0.42, 0.56),
        nose_half_width=uniform(rng, 0.12, 0.18),
        mouth_y=uniform(rng, 0.56, 0.68),
        mouth_half_width=uniform(rng, 0.25, 0.35),
        upper_lip=uniform(rng, 0.04, 0.07),
        lower_lip=uniform(rng, 0.05, 0.1),
    )


def _sample_expression(rng: np.random.Generator) -> Expression:
    """One of a few expressions (neutral 35%, smile 25%, talking 15%, frown 13%,
    surprise 12%) with random strength and gaze."""
    kind = rng.choice(
        ["neutral", "smile", "surprise", "frown", "talk"], p=[0.35, 0.25, 0.12, 0.13, 0.15]
    )
    gaze = (uniform(rng, -1, 1), uniform(rng, -0.6, 0.6))
    if kind == "smile":
        return Expression(eye_open=uniform(rng, 0.7, 1.0), smile=uniform(rng, 0.4, 1.0),
                          mouth_open=uniform(rng, 0.0, 0.08), gaze=gaze)  # fmt: skip
    if kind == "surprise":
        return Expression(eye_open=uniform(rng, 1.1, 1.4), brow_raise=uniform(rng, 0.04, 0.1),
                          mouth_open=uniform(rng, 0.06, 0.16), gaze=gaze)  # fmt: skip
    if kind == "frown":
        return Expression(eye_open=uniform(rng, 0.6, 0.95), frown=uniform(rng, 0.02, 0.06),
                          smile=uniform(rng, -0.8, -0.2), gaze=gaze)  # fmt: skip
    if kind == "talk":
        return Expression(eye_open=uniform(rng, 0.8, 1.1), smile=uniform(rng, -0.2, 0.3),
                          mouth_open=uniform(rng, 0.03, 0.12), gaze=gaze)  # fmt: skip
    return Expression(eye_open=uniform(rng, 0.8, 1.1), smile=uniform(rng, -0.15, 0.15), gaze=gaze)


def _sample_look(rng: np.random.Generator, cfg: FaceSynthConfig) -> FaceLook:
    skin = uniform(rng, 60, 220)
    hair = uniform(rng, 10, 230)
    return FaceLook(
        skin=skin,
        hair=hair,
        hair_style=int(rng.choice(4, p=[0.1, 0.4, 0.25, 0.25])),
        hairline=uniform(rng, 0.3, 0.6),
        brow=skin * uniform(rng, 0.25, 0.6),
        lips=skin * uniform(rng, 0.55, 0.85),
        iris=uniform(rng, 15, 110),
        sclera=min(250.0, max(skin + uniform(rng, 15, 50), 150.0)),
        clothes=uniform(rng, 10, 245),
        glasses=bool(rng.random() < cfg.glasses_prob),
        glasses_shade=uniform(rng, 0, 255) if rng.random() < 0.3 else uniform(rng, 0, 50),
    )


def sample_face_spec(rng: np.random.Generator, cfg: FaceSynthConfig) -> FaceSpec:
    """Random face, expression, look and pose, placed with every landmark inside the image."""
    shape, expression, look = _sample_shape(rng), _sample_expression(rng), _sample_look(rng, cfg)
    size = cfg.image_size
    face_height = uniform(rng, cfg.min_face_frac, cfg.max_face_frac) * size
    scale = face_height / (shape.head_ry_top + shape.head_ry_bottom)
    roll = float(np.clip(rng.normal(0.0, cfg.max_roll / 2), -cfg.max_roll, cfg.max_roll))
    yaw = uniform(rng, -cfg.max_yaw, cfg.max_yaw)
    for _ in range(20):
        pose = FacePose(center=(0.0, 0.0), scale=scale, roll=roll, yaw=yaw)
        points = labelled_points(face_landmarks(FaceSpec(shape, expression, pose, look)))
        low, high = points.min(axis=0), points.max(axis=0)
        free_low = _PLACEMENT_MARGIN_PX - low
        free_high = size - _PLACEMENT_MARGIN_PX - high
        if np.all(free_low <= free_high):
            center = (
                uniform(rng, free_low[0], free_high[0]),
                uniform(rng, free_low[1], free_high[1]),
            )
            return FaceSpec(shape, expression, FacePose(center, scale, roll, yaw), look)
        scale *= 0.92  # landmarks do not fit: a smaller face
    raise AssertionError("could not fit a face into the image")  # unreachable for valid configs
