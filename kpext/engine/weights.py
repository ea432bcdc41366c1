"""Loading trained weights into a built model, refusing weights that do not fit it.

Detectron2's checkpointer loads what fits, logs "Skip loading parameter ..." for the rest and
carries on: a model built from the wrong config then runs with part of its layers random and
returns confident nonsense. :func:`load_checked_weights` loads through the same
``DetectionCheckpointer`` (Detectron2's .pth, model-zoo .pkl and Caffe2 formats, URLs) and
raises :class:`WeightsMismatchError` instead, naming the parameters that differ and the config
the weights were trained with (``config.yaml`` beside them: train_net.py writes it there).
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from torch import nn

from detectron2.checkpoint import DetectionCheckpointer

from .inference import one_line

# Named in an error: this many parameters of each kind, then a count of the rest.
SHOWN_PER_KIND = 3
# What train_net.py (Detectron2's default_setup) writes into OUTPUT_DIR beside the checkpoints.
SAVED_CONFIG_NAME = "config.yaml"


class WeightsMismatchError(ValueError):
    """The weights file's parameters do not fit the model built from the config."""


class _RecordingCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer that keeps the incompatible keys of its load instead of logging
    them: the caller turns them into one error.

    ``_load_model`` and ``_log_incompatible_keys`` are fvcore's ``Checkpointer`` hooks (fvcore
    0.1.5, which Detectron2 v0.6 and upstream both pin); DetectionCheckpointer's own
    ``_load_model`` runs first, so the keys are those left after its name-matching heuristics
    for .pkl files and its allowances (pixel_mean/std, old anchor buffers).
    """

    incompatible = None

    def _load_model(self, checkpoint: Any):
        self.incompatible = super()._load_model(checkpoint)
        return self.incompatible

    def _log_incompatible_keys(self, incompatible: Any) -> None:
        pass  # reported by load_checked_weights, as an error


def saved_config_beside(weights: str) -> Optional[str]:
    """``config.yaml`` in the weights file's folder (the run's OUTPUT_DIR), if there is one."""
    if "://" in weights:
        return None
    path = os.path.join(os.path.dirname(weights), SAVED_CONFIG_NAME)
    return path if os.path.isfile(path) else None


def load_checked_weights(
    model: nn.Module, weights: str, config_file: Optional[str] = None
) -> Dict[str, Any]:
    """Load ``weights`` into ``model`` with Detectron2's ``DetectionCheckpointer``, and refuse
    weights that do not fit: a parameter of another shape, a model parameter (or persistent
    buffer) the file lacks, or a file parameter the model lacks (say, of a branch this config
    does not build). ``config_file``: the config the model was built from, for the message.

    Returns what the checkpointer returns: the file's other entries (``iteration``, ...).
    Raises WeightsMismatchError naming the mismatched parameters and the config to use, or
    ValueError for a file that cannot be read; both one line. After an error the model is
    partly loaded: do not use it.
    """
    if not weights:
        raise ValueError("no weights given: set MODEL.WEIGHTS to a trained checkpoint")
    checkpointer = _RecordingCheckpointer(model)
    try:
        extra = checkpointer.load(weights)
    except Exception as e:  # missing or corrupt file, unknown format
        raise ValueError(f"cannot load weights {weights}: {one_line(e)}") from None
    problems = _mismatches(checkpointer.incompatible)
    if problems:
        raise WeightsMismatchError(_mismatch_message(weights, config_file, problems))
    return extra


def _mismatches(incompatible: Any) -> List[str]:
    """What does not fit, one phrase per kind; empty when everything does."""
    if incompatible is None:
        return []
    shapes: Sequence[Tuple[str, tuple, tuple]] = incompatible.incorrect_shapes
    # fvcore drops a parameter of another shape before loading, so it is "missing" too: it is
    # reported once, with its shapes. A BatchNorm's step counter is no weight: eval mode never
    # reads it, and files converted from other frameworks lack it.
    reshaped = {name for name, _, _ in shapes}
    missing = [
        k
        for k in incompatible.missing_keys
        if k not in reshaped and not k.endswith("num_batches_tracked")
    ]
    unexpected = list(incompatible.unexpected_keys)
    problems = []
    if shapes:
        shown = [
            f"{name}: {tuple(in_file)} in the file, {tuple(in_model)} in the model"
            for name, in_file, in_model in shapes[:SHOWN_PER_KIND]
        ]
        problems.append(
            f"{len(shapes)} parameters of another shape ({_listed(shown, len(shapes))})"
        )
    if missing:
        problems.append(
            f"{len(missing)} model parameters missing from the file "
            f"({_listed(missing, len(missing))})"
        )
    if unexpected:
        problems.append(
            f"{len(unexpected)} file parameters not in the model "
            f"({_listed(unexpected, len(unexpected))})"
        )
    return problems


def _listed(items: Sequence[str], total: int) -> str:
    shown = "; ".join(items[:SHOWN_PER_KIND])
    return shown + (f"; {total - SHOWN_PER_KIND} more" if total > SHOWN_PER_KIND else "")


def _mismatch_message(weights: str, config_file: Optional[str], problems: List[str]) -> str:
    built_from = f"the model built from {config_file}" if config_file else "the model built"
    saved = saved_config_beside(weights)
    if saved is None:
        fix = (
            "build the model from the config these weights were trained with "
            f"(train_net.py saves it as {SAVED_CONFIG_NAME} in its OUTPUT_DIR)"
        )
    elif config_file and os.path.isfile(config_file) and os.path.samefile(saved, config_file):
        fix = f"they were trained with {saved}: drop the overrides that change the model"
    else:
        fix = f"use the config they were trained with: {saved}"
    return f"{weights} does not fit {built_from}: {', '.join(problems)}; {fix}"
