"""What a keypoint's name says: its side and the name of its other side's point.

:func:`keypoint_side` reads a side from a name in every common style (``left_eye``,
``l_eye``, ``leftEye``, ``LEFT_EYE``, ``eye_left``, ``lefteye``); :func:`pair_left_right_names`
pairs a set's names into Detectron2's ``keypoint_flip_map`` (only unambiguous pairs);
:func:`is_side_free` tells a set a mirror leaves as it is (a hand's ``wrist``, ``thumb1``);
:func:`normalized_keypoint_name` writes a name in COCO's style, for looking it up. The
metadata built from them is :mod:`kpext.data.keypoint_metadata`'s.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = [
    "keypoint_side",
    "is_side_free",
    "normalized_keypoint_name",
    "pair_left_right_names",
    "unpaired_side_names",
]

# Words of a name: "leftEye" -> left, Eye; "LEFT_EYE" -> LEFT, EYE; "l_eye" -> l, eye.
_NAME_TOKEN_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SIDE_WORDS = {"left": "left", "l": "left", "right": "right", "r": "right"}
_SIDE_PLACEHOLDER = "<side>"


def _split_glued_side(token: str) -> Optional[Tuple[str, Tuple[str, ...]]]:
    """``"lefteye"`` -> ("left", ("<side>", "eye")); only the full words left/right,
    because a glued single letter ("lip", "rib") is far too ambiguous."""
    for word in ("left", "right"):
        if token.startswith(word) and len(token) > len(word):
            return word, (_SIDE_PLACEHOLDER, token[len(word) :])
        if token.endswith(word) and len(token) > len(word):
            return word, (token[: -len(word)], _SIDE_PLACEHOLDER)
    return None


def keypoint_side(name: str) -> Tuple[Optional[str], Tuple[str, ...]]:
    """Return (side, key) of a keypoint name, case-insensitively.

    ``side`` is "left", "right" or None; ``key`` is the name's lower-cased words
    with the side word replaced by a placeholder, so that the left and right
    versions of one point share a key: ``left_eye``, ``l_eye``, ``leftEye`` and
    ``LEFT_EYE`` all give ("left", ("<side>", "eye")), ``eye_right`` gives
    ("right", ("eye", "<side>")). Names with no side word, or with more than one,
    have side None.
    """
    tokens = [t.lower() for t in _NAME_TOKEN_RE.findall(name)]
    side_positions = [i for i, t in enumerate(tokens) if t in _SIDE_WORDS]
    if len(side_positions) == 1:
        i = side_positions[0]
        key = tuple(tokens[:i]) + (_SIDE_PLACEHOLDER,) + tuple(tokens[i + 1 :])
        return _SIDE_WORDS[tokens[i]], key
    if not side_positions:
        glued = [(i, _split_glued_side(t)) for i, t in enumerate(tokens)]
        glued = [(i, split) for i, split in glued if split is not None]
        if len(glued) == 1:
            i, (side, parts) = glued[0]
            return side, tuple(tokens[:i]) + parts + tuple(tokens[i + 1 :])
    return None, tuple(tokens)


def pair_left_right_names(names: Sequence[str]) -> List[Tuple[str, str]]:
    """Pair left/right keypoint names into Detectron2's ``keypoint_flip_map``.

    Returns (left_name, right_name) tuples, ordered by the first member's position
    in ``names``. A name is paired only when exactly one left and one right name
    share its key (see :func:`keypoint_side`), so ambiguous sets stay unpaired
    rather than being flipped wrongly.
    """
    by_key: Dict[Tuple[str, ...], Dict[str, List[int]]] = {}
    for index, name in enumerate(names):
        side, key = keypoint_side(name)
        if side is not None:
            by_key.setdefault(key, {"left": [], "right": []})[side].append(index)

    pairs = []
    for sides in by_key.values():
        if len(sides["left"]) == 1 and len(sides["right"]) == 1:
            left, right = sides["left"][0], sides["right"][0]
            pairs.append((min(left, right), names[left], names[right]))
    return [(left, right) for _, left, right in sorted(pairs)]


def unpaired_side_names(names: Sequence[str], flip_map: Sequence[Tuple[str, str]]) -> List[str]:
    """Names with a side word (see :func:`keypoint_side`) that are in no pair of ``flip_map``:
    a left point without a right one, or one of two candidates for the same partner."""
    paired = {name for pair in flip_map for name in pair}
    return [n for n in names if n not in paired and keypoint_side(n)[0] is not None]


# Words that place a point on one side of an object without saying which (a horse's near
# and off side, left/right abbreviations): a set using them may need a flip map kpext cannot
# guess, so it is not side-free.
_SIDE_LIKE_WORDS = frozenset({"near", "far", "off", "lhs", "rhs", "ipsi", "contra"})
# Words that name no part: "point_3", "kp12", "landmark_7" say nothing about where a point
# is, so whether a mirror keeps it cannot be read from the name.
_GENERIC_POINT_WORDS = frozenset(
    {"p", "pt", "pts", "point", "points", "kp", "kpt", "keypoint", "landmark", "lm", "marker",
     "vertex", "idx", "id", "joint"}
)  # fmt: skip


def is_side_free(names: Sequence[str]) -> bool:
    """True when no keypoint name says or hints a side and every name names a part.

    Such a set is unchanged by a mirror (a mirrored hand's thumb is still its thumb: FreiHAND,
    RHD, OneHand10K's ``wrist, thumb1..4, index1..4, ...``), so the identity flip map is the
    right one. Not side-free: a name with a side word (``left_eye``, ``l_eye``, ``eyeLeft``),
    a side-like word (``near_ear``/``off_ear``), or no word but a number or a generic point
    word (``p3``, ``kp_12``, ``landmark_7``: a face's numbered points may well be sided).
    """
    for name in names:
        if keypoint_side(name)[0] is not None:
            return False
        words = [t.lower() for t in _NAME_TOKEN_RE.findall(name)]
        if any(w in _SIDE_LIKE_WORDS for w in words):
            return False
        if not any(w.isalpha() and w not in _GENERIC_POINT_WORDS for w in words):
            return False
    return True


def normalized_keypoint_name(name: str) -> str:
    """The name in COCO's style, for looking it up: lower-case words joined by ``_``, the side
    word (left/right, also ``l``/``r`` and glued or camelCase forms) first. ``leftEye``,
    ``LEFT_EYE``, ``l_eye``, ``eye_left`` and ``left_eye`` all give ``left_eye``."""
    side, key = keypoint_side(name)
    words = [w for w in key if w != _SIDE_PLACEHOLDER]
    return "_".join(([side] if side else []) + words)
