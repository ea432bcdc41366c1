"""Training: the kpext trainer and config set-up used by the projects' scripts."""
from .trainer import KpextTrainer, check_keypoint_count, setup_cfg

__all__ = ["KpextTrainer", "check_keypoint_count", "setup_cfg"]
