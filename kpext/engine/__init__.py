"""Training and inference set-up: the kpext trainer (bf16 AMP on the CPU), checkpoints, launch,
the config set-up used by the projects' scripts, and the predictor that refuses weights that do
not fit."""

from .amp import CPUAMPTrainer, build_cpu_amp_trainer, native_bf16_flags
from .checkpoint import AtomicCheckpointer
from .data import build_seeded_train_loader, data_order_seed
from .inference import check_inference_weights, load_inference_cfg
from .launch import launch
from .predictor import KpextPredictor
from .trainer import (
    KpextTrainer,
    check_horizontal_flip,
    check_keypoint_count,
    describe_divergence,
    setup_cfg,
)
from .weights import WeightsMismatchError, load_checked_weights

__all__ = [
    "AtomicCheckpointer",
    "CPUAMPTrainer",
    "KpextPredictor",
    "KpextTrainer",
    "WeightsMismatchError",
    "build_cpu_amp_trainer",
    "build_seeded_train_loader",
    "check_horizontal_flip",
    "check_inference_weights",
    "check_keypoint_count",
    "data_order_seed",
    "describe_divergence",
    "launch",
    "load_checked_weights",
    "load_inference_cfg",
    "native_bf16_flags",
    "setup_cfg",
]
