"""Run by test_distributed_cpu.py: train with kpext's launch, then dump each rank's parameters."""

import os
import sys

import torch

import kpext  # noqa: F401
from kpext.engine import KpextTrainer, launch, setup_cfg

from detectron2.engine import default_argument_parser
from detectron2.utils import comm


def main(args):
    cfg = setup_cfg(args)
    trainer = KpextTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()  # ends with the evaluator gathering every rank's predictions
    model = trainer.model.module if hasattr(trainer.model, "module") else trainer.model
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    torch.save(params, os.path.join(cfg.OUTPUT_DIR, f"params_rank{comm.get_rank()}.pth"))


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(main, args.num_gpus, args.num_machines, args.machine_rank, args.dist_url, args=(args,))
    sys.exit(0)
