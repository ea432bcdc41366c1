"""KpextPredictor: Detectron2's DefaultPredictor, with weights that must fit the model.

DefaultPredictor loads whatever part of a checkpoint fits the model its config builds and logs
the rest; a model trained with another config then predicts confident nonsense. This one loads
through :func:`kpext.engine.weights.load_checked_weights`, which refuses such weights with an
error naming the mismatch and the ``config.yaml`` saved beside them.
"""

from __future__ import annotations

from typing import Optional, Sequence

from detectron2.config import CfgNode
from detectron2.engine import DefaultPredictor

from .inference import load_inference_cfg
from .weights import load_checked_weights


class KpextPredictor(DefaultPredictor):
    """DefaultPredictor (a BGR image in, ``{"instances": Instances}`` out; eval mode, the
    config's test-time resize) whose ``cfg.MODEL.WEIGHTS`` must fit the model built from
    ``cfg``; else WeightsMismatchError (a ValueError), one line naming the parameters that
    differ and the config to use. ``config_file``: where ``cfg`` came from, for that message.
    """

    def __init__(self, cfg: CfgNode, config_file: Optional[str] = None) -> None:
        weights = cfg.MODEL.WEIGHTS
        if not weights:
            raise ValueError(
                f"{config_file or 'the config'} sets no MODEL.WEIGHTS: "
                "a model with random weights predicts nonsense; give the trained checkpoint"
            )
        # Detectron2's own set-up (model, eval mode, metadata, resize, input format), loading
        # nothing: the weights are loaded once, below, with the check.
        unloaded = cfg.clone()
        unloaded.defrost()
        unloaded.MODEL.WEIGHTS = ""
        super().__init__(unloaded)
        self.cfg = cfg.clone()
        load_checked_weights(self.model, weights, config_file)

    @classmethod
    def from_config_file(
        cls,
        config_file: str,
        weights: str,
        opts: Sequence[str] = (),
        score_threshold: Optional[float] = None,
    ) -> "KpextPredictor":
        """The predictor of a config file (best: the ``config.yaml`` a run saved beside its
        weights) with kpext's keys, ``opts`` (``KEY VALUE`` pairs) and ``weights``.
        ``score_threshold``: the least detection score (default: the config's). Raises
        ValueError for a bad config (one line naming the file) or weights that do not fit."""
        cfg = load_inference_cfg(config_file, [*opts, "MODEL.WEIGHTS", weights], score_threshold)
        return cls(cfg, config_file)
