"""Which way a person faces: the classes of the auxiliary facing target, from a body yaw.

A yaw (degrees) is the body's turn about the vertical axis, as the synthetic renderer draws it:
0 faces the camera, 90 faces the image's right, 180 (or -180) shows the back. A COCO annotation
may carry it as an extra ``"yaw"`` field (the synthetic sets do; COCO tools ignore it). The
class tells a model which side of the image the person's left is on: seen from the front, the
left points are on the image's right; from behind, on its left; in profile the sides overlap.
A horizontal flip negates the yaw (front and back stay, the profiles exchange).
"""

from __future__ import annotations

import math
from typing import Any, Optional

__all__ = [
    "FACING_CLASSES",
    "FACING_VIEWS",
    "facing_view",
    "UNKNOWN_FACING",
    "facing_class",
    "mirrored_yaw",
    "read_yaw",
    "wrap_yaw",
]

FACING_CLASSES = ("front", "back", "facing_right", "facing_left")
UNKNOWN_FACING = -1  # no yaw in the annotation: no target
# The views an evaluation groups people by (how hard their sides are to tell): from the front
# (|yaw| < 30), obliquely (30-60 or 120-150), in profile (60-120), from behind (> 150).
FACING_VIEWS = ("front", "oblique", "profile", "back")


def wrap_yaw(yaw: float) -> float:
    """``yaw`` (degrees) shifted by whole turns into [-180, 180) (180 becomes -180). The one
    rule for the yaw the synthetic people write and the facing classes read."""
    return (float(yaw) + 180.0) % 360.0 - 180.0


def mirrored_yaw(yaw: float) -> float:
    """The yaw of the horizontally mirrored person."""
    return -float(yaw)


def facing_class(yaw: Optional[float]) -> int:
    """Index into :data:`FACING_CLASSES` (front within 45 degrees of the camera, back within 45
    of the other way, else the profile side), or :data:`UNKNOWN_FACING` for None."""
    if yaw is None:
        return UNKNOWN_FACING
    wrapped = wrap_yaw(yaw)
    if abs(wrapped) <= 45.0:
        return 0
    if abs(wrapped) >= 135.0:
        return 1
    return 2 if wrapped > 0 else 3


def facing_view(yaw: Optional[float]) -> Optional[str]:
    """The :data:`FACING_VIEWS` entry of a yaw (degrees, any turn), None for None. Bounds go to
    the view nearer the profile (30 is oblique, 60 profile, 120 profile, 150 oblique)."""
    if yaw is None:
        return None
    turned = abs(wrap_yaw(yaw))
    if turned < 30.0:
        return "front"
    if turned > 150.0:
        return "back"
    if 60.0 <= turned <= 120.0:
        return "profile"
    return "oblique"


def read_yaw(annotation: dict) -> Optional[float]:
    """The annotation's finite numeric ``"yaw"``, else None (absent, null, text, NaN)."""
    value: Any = annotation.get("yaw")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
