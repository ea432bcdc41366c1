"""DefaultTrainer for kpext: keypoint evaluator, atomic checkpoints, CPU multi-process,
a clear divergence message and the bad-data policy; plus the config set-up shared by scripts."""

from __future__ import annotations

import logging
import math
import os
import weakref
from typing import Dict, Optional

import torch

from detectron2.config import CfgNode, get_cfg
from detectron2.data import MetadataCatalog, build_detection_test_loader
from detectron2.engine import (
    AMPTrainer,
    DefaultTrainer,
    SimpleTrainer,
    TrainerBase,
    create_ddp_model,
    default_setup,
)
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..config import add_kpext_config
from ..data import invalid_record_policy
from ..data.keypoint_names import is_side_free
from ..evaluation import build_keypoint_evaluator
from ..modeling.roi_align import configure_roi_align
from .amp import build_cpu_amp_trainer
from .checkpoint import AtomicCheckpointer
from .data import CheckedDatasetMapper, build_seeded_train_loader, pin_memory_for_device


def setup_cfg(args) -> CfgNode:
    """Detectron2 config with kpext's keys, merged from ``args.config_file`` and ``args.opts``."""
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    check_keypoint_count(cfg)
    default_setup(cfg, args)
    # default_setup gives only Detectron2's and fvcore's loggers a handler; kpext's
    # warnings (skipped records, face metrics...) must reach the console and log file too.
    setup_logger(
        cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="kpext", abbrev_name="kpext"
    )
    return cfg


def check_keypoint_count(cfg: CfgNode) -> None:
    """Raise ValueError when a dataset's keypoints differ from ``NUM_KEYPOINTS`` or from
    the other training datasets' (same names in the same order).

    Without this check a mismatch surfaces as a shape error deep inside the loss,
    or not at all at inference.
    """
    if not cfg.MODEL.KEYPOINT_ON:
        return
    expected = cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS
    reference_name, reference = None, None
    for name in list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST):
        names = MetadataCatalog.get(name).get("keypoint_names", None)
        if names is None:
            continue
        if len(names) != expected:
            raise ValueError(
                f"Dataset '{name}' has {len(names)} keypoints but the config sets "
                f"MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = {expected}"
            )
        if reference is None:
            reference_name, reference = name, list(names)
        elif list(names) != reference:
            differing = [f"{a}/{b}" for a, b in zip(reference, names) if a != b][:3]
            raise ValueError(
                f"Datasets '{reference_name}' and '{name}' name their keypoints differently "
                f"(first differences: {', '.join(differing)}); a model needs one keypoint order"
            )


def check_horizontal_flip(cfg: CfgNode) -> None:
    """Raise ValueError when training flips images horizontally (``INPUT.RANDOM_FLIP``
    "horizontal", Detectron2's default) on a dataset of K > 1 keypoints with no left/right
    pairs that was not declared symmetric and whose names may be sided.

    A flip then mirrors the image without swapping any keypoint: every left point would be
    labelled on the right side of the object, silently. A set whose names carry no side
    (:func:`kpext.data.keypoint_names.is_side_free`: a hand's wrist, thumb1..4, ...) is
    unchanged by a mirror: it trains with the identity map (registration logs one WARNING).
    """
    if not cfg.MODEL.KEYPOINT_ON or cfg.INPUT.RANDOM_FLIP != "horizontal":
        return
    for name in cfg.DATASETS.TRAIN:
        meta = MetadataCatalog.get(name)
        names = meta.get("keypoint_names", None)
        if not names or len(names) < 2 or meta.get("keypoint_flip_map", None):
            continue
        if meta.get("keypoint_flip_map_declared", False):
            continue  # flip_map=[]: symmetric by declaration
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        if is_side_free(names):
            continue  # unchanged by a mirror: identity map (registration warned once)
        raise ValueError(
            f"Dataset '{name}' has {len(names)} keypoints ({shown}) and no left/right pairs, "
            "but INPUT.RANDOM_FLIP is 'horizontal': flipped images would keep their labels "
            "(left points on the right). Pass the pairs when registering, "
            f"register_keypoint_coco('{name}', ..., flip_map=[('left_x', 'right_x'), ...]), "
            "declare the set symmetric with flip_map=[], or turn flipping off with "
            "INPUT.RANDOM_FLIP none."
        )


def describe_divergence(iteration: int, losses: Optional[Dict[str, torch.Tensor]]) -> str:
    """The message for non-finite losses: the iteration and the name of each bad loss."""
    if not losses:
        return f"Training diverged at iteration {iteration}: the total loss is not finite."
    values = {k: float(v.detach().float().sum()) for k, v in losses.items()}
    bad = [f"{k} = {v}" for k, v in values.items() if not math.isfinite(v)]
    others = ", ".join(f"{k} = {v:.4g}" for k, v in values.items() if math.isfinite(v))
    return (
        f"Training diverged at iteration {iteration}: {', '.join(bad) or 'the reduced total loss'} "
        f"is not finite (other losses: {others or 'none'}). Lower SOLVER.BASE_LR, enable "
        "SOLVER.CLIP_GRADIENTS, or check the data of this iteration."
    )


class _LossRecorder:
    """Keeps the last loss dict the model returned in training (a forward hook)."""

    def __init__(self, model: torch.nn.Module):
        self.losses: Optional[Dict[str, torch.Tensor]] = None
        model.register_forward_hook(self._record)

    def _record(self, module, inputs, output):
        if module.training and isinstance(output, dict):
            self.losses = output


class KpextTrainer(DefaultTrainer):
    """DefaultTrainer with COCOEvaluator (boxes + OKS keypoint AP) and, beyond Detectron2's:

    * checkpoints written atomically (:class:`AtomicCheckpointer`);
    * several CPU processes train together (DDP without device ids on CPU);
    * ``SOLVER.AMP.ENABLED`` on the CPU: bf16 autocast where the CPU has native bf16
      (:func:`~kpext.engine.amp.build_cpu_amp_trainer`); CUDA keeps Detectron2's AMPTrainer;
    * non-finite losses stop training naming the iteration and the loss;
    * the data order follows ``SEED`` on every Detectron2 (:func:`build_seeded_train_loader`);
    * ``DATASETS.KPEXT.ON_INVALID`` applied to records and unreadable images;
    * horizontal flips refused for keypoints without left/right pairs
      (:func:`check_horizontal_flip`);
    * evaluation on the normalised ground truth of what training reads.
    """

    def __init__(self, cfg: CfgNode):
        # DefaultTrainer.__init__, except for the DDP device ids and the checkpointer.
        TrainerBase.__init__(self)
        logger = logging.getLogger("detectron2")
        if not logger.isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        self._loss_recorder = _LossRecorder(model)
        on_cpu = next(model.parameters()).device.type == "cpu"
        ddp_args = {"broadcast_buffers": False}
        if on_cpu:
            ddp_args["device_ids"] = (
                None  # Detectron2 passes the local rank, which DDP rejects on CPU
            )
        model = create_ddp_model(model, **ddp_args)
        if cfg.SOLVER.AMP.ENABLED and on_cpu:
            # bf16 autocast where the CPU has native bf16, else float32 after a warning.
            self._trainer = build_cpu_amp_trainer(model, data_loader, optimizer)
        else:
            trainer_cls = AMPTrainer if cfg.SOLVER.AMP.ENABLED else SimpleTrainer
            self._trainer = trainer_cls(model, data_loader, optimizer)
        # Which step trains (tools/gpu_check.py reads it from the log): SimpleTrainer (float32),
        # AMPTrainer (CUDA float16 autocast with a GradScaler) or CPUAMPTrainer (CPU bf16).
        logging.getLogger(__name__).info(
            "Training step: %s (MODEL.DEVICE %s, SOLVER.AMP.ENABLED %s)",
            type(self._trainer).__name__,
            cfg.MODEL.DEVICE,
            cfg.SOLVER.AMP.ENABLED,
        )
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = AtomicCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    def train(self):
        """DefaultTrainer.train, returning the final evaluation's results (Detectron2 returns
        them only when TEST.EXPECTED_RESULTS is set; its EvalHook keeps them either way)."""
        results = super().train()
        return results if results is not None else getattr(self, "_last_eval_results", None)

    def run_step(self):
        try:
            super().run_step()
        except FloatingPointError as e:
            raise FloatingPointError(
                describe_divergence(self.iter, self._loss_recorder.losses)
            ) from e

    @classmethod
    def build_model(cls, cfg):
        """Detectron2's model; on the CPU its ROIPoolers use kpext's RoIAlign kernel
        (``MODEL.KPEXT.ROI_ALIGN``, :func:`kpext.modeling.roi_align.configure_roi_align`)."""
        model = super().build_model(cfg)
        fast = configure_roi_align(model, cfg)
        logging.getLogger(__name__).info(
            "RoIAlign: %d level poolers use kpext's CPU kernel (MODEL.KPEXT.ROI_ALIGN %r, "
            "MODEL.DEVICE %s)%s",
            fast,
            cfg.MODEL.KPEXT.ROI_ALIGN,
            cfg.MODEL.DEVICE,
            "" if fast else "; torchvision's roi_align everywhere",
        )
        return model

    @classmethod
    def build_train_loader(cls, cfg):
        check_horizontal_flip(cfg)
        policy = cfg.DATASETS.KPEXT.ON_INVALID
        with invalid_record_policy(policy):
            loader = build_seeded_train_loader(cfg, mapper=CheckedDatasetMapper(cfg, True, policy))
        return pin_memory_for_device(loader, cfg.MODEL.DEVICE)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        # Evaluation reads ground truth from the JSON, so a skipped image would still be
        # counted as missed: unreadable test images are always an error.
        with invalid_record_policy(cfg.DATASETS.KPEXT.ON_INVALID):
            return build_detection_test_loader(
                cfg, dataset_name, mapper=CheckedDatasetMapper(cfg, False, "error")
            )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_keypoint_evaluator(cfg, dataset_name, output_folder)
