"""Training: the kpext trainer, checkpoints, launch and config set-up used by the projects' scripts."""
from .checkpoint import AtomicCheckpointer, atomic_write
from .launch import launch
from .trainer import KpextTrainer, check_keypoint_count, describe_divergence, setup_cfg

__all__ = [
    "AtomicCheckpointer",
    "KpextTrainer",
    "atomic_write",
    "check_keypoint_count",
    "describe_divergence",
    "launch",
    "setup_cfg",
]
