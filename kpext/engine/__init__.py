"""Training: the kpext trainer and config set-up used by the projects' scripts."""
from .trainer import KpextTrainer, setup_cfg

__all__ = ["KpextTrainer", "setup_cfg"]
