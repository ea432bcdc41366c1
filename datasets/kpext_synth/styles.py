"""How each synthetic person is drawn: its style (:class:`PersonStyle`) and the random
draw of one from a split's settings (:func:`sample_person_style`).

So that a detector has to learn people rather than one renderer, each person is drawn in
one of the named styles (:data:`~kpext_synth.people_config.STYLES`), picked per
person from the split's ``styles`` (a name given twice is drawn twice as often):

* ``classic``: the look described in :mod:`kpext_synth.people` (multi-coloured,
  shaded parts);
* ``silhouette``: the whole body in one flat colour, no face features or badge;
* ``outline``: every part drawn as its outline only (the inside shows the
  background, so a person in front still hides the one behind);
* ``textured``: clothes filled with stripes, checks or blotchy noise;
* ``lowcontrast``: flat parts a few grey levels off the background under the person.

With any style, the split's ``shape_variety`` varies the head shape (:data:`HEAD_SHAPES`:
round, oval, square-ish) and the limb thickness. The style is written into each COCO
annotation as an extra ``"style"`` field (COCO tools ignore it). With the defaults of
:class:`~kpext_synth.people_config.SyntheticConfig` (``classic`` only, no variety)
no random number is drawn for the style, so images are drawn exactly as before styles
existed. The parts are painted in their style by :mod:`kpext_synth.painting`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

import numpy as np

from .colors import BGR, random_color, tint
from .people_config import SyntheticConfig

__all__ = ["HEAD_SHAPES", "PersonStyle", "is_styled", "sample_person_style"]

HEAD_SHAPES: Tuple[str, ...] = ("round", "oval", "square")
_PATTERNS = ("stripes", "checks", "noise")


@dataclass(frozen=True)
class PersonStyle:
    """How one person is drawn; the defaults are the classic look.

    Attributes:
        name: one of :data:`STYLES`.
        head_shape: one of :data:`HEAD_SHAPES` (any style).
        limb_scale: multiplier of the limb widths (any style).
        ink: the silhouette's fill colour, or the outline's line colour (BGR).
        line_width: outline line width, pixels.
        pattern: ``textured``: "stripes", "checks" or "noise".
        pattern_color: ``textured``: the pattern's second colour (BGR).
        pattern_period: ``textured``: pattern period, pixels.
        pattern_angle: ``textured``: stripe angle, degrees (limbs add their axis').
        pattern_seed: ``textured``: seed of the noise pattern.
        contrast: ``lowcontrast``: signed grey-level offset of the torso from the
            mean background under the person (the other parts scale it).
    """

    name: str = "classic"
    head_shape: str = "round"
    limb_scale: float = 1.0
    ink: BGR = (30, 30, 30)
    line_width: float = 1.0
    pattern: str = "stripes"
    pattern_color: BGR = (235, 235, 235)
    pattern_period: float = 6.0
    pattern_angle: float = 0.0
    pattern_seed: int = 0
    contrast: float = 20.0


def is_styled(cfg: SyntheticConfig) -> bool:
    """Whether people of ``cfg`` get a sampled style (else the classic default)."""
    return tuple(cfg.styles) != ("classic",) or cfg.shape_variety > 0


def sample_person_style(
    rng: np.random.Generator, cfg: SyntheticConfig, height: float
) -> PersonStyle:
    """A style from ``cfg.styles`` with its random details, for a person ``height`` pixels
    tall. Draws no random numbers for the classic look without ``shape_variety``, so
    that such configs draw the same images as before styles existed."""
    styles = tuple(cfg.styles)
    name = styles[int(rng.integers(len(styles)))] if len(styles) > 1 else styles[0]
    changes: Dict[str, Any] = {}
    if cfg.shape_variety > 0 and rng.random() < cfg.shape_variety:
        changes["head_shape"] = HEAD_SHAPES[int(rng.integers(len(HEAD_SHAPES)))]
        changes["limb_scale"] = float(rng.uniform(0.6, 1.5))
    if name == "silhouette":
        changes["ink"] = random_color(rng, 0.0, 0.05)
    elif name == "outline":
        dark = rng.random() < 0.6
        changes["ink"] = tint(random_color(rng, 0.0, 0.1), 0, 0.7) if dark else random_color(rng)
        changes["line_width"] = float(max(1.0, height * rng.uniform(0.006, 0.018)))
    elif name == "textured":
        changes["pattern"] = _PATTERNS[int(rng.integers(len(_PATTERNS)))]
        changes["pattern_color"] = random_color(rng, 0.0, 0.1)
        changes["pattern_period"] = float(max(2.5, height * rng.uniform(0.02, 0.06)))
        changes["pattern_angle"] = float(rng.uniform(0, 180))
        changes["pattern_seed"] = int(rng.integers(2**31))
    elif name == "lowcontrast":
        sign = 1.0 if rng.random() < 0.5 else -1.0
        changes["contrast"] = float(sign * rng.uniform(12, 28))
    return PersonStyle(name=name, **changes)
