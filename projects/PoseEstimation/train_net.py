#!/usr/bin/env python
"""Train or evaluate a kpext keypoint model, with Detectron2's usual arguments.

    python projects/PoseEstimation/train_net.py \
        --config-file configs/synthetic/keypoint_rcnn_R18_FPN_kpext.yaml
    python projects/PoseEstimation/train_net.py --config-file CFG \
        --eval-only MODEL.WEIGHTS out/model_final.pth
    # continue a run
    python projects/PoseEstimation/train_net.py --config-file CFG --resume
    # one machine, 8 GPUs
    python projects/PoseEstimation/train_net.py --config-file CFG --num-gpus 8
    # no CUDA: 2 CPU processes (GLOO)
    python projects/PoseEstimation/train_net.py --config-file CFG --num-gpus 2

After training (or --eval-only), ``TEST.KPEXT.NUM_VIS N`` draws the predictions
on the first N images of the first test set into ``OUTPUT_DIR/predictions``, and a
summary of every test set (keypoint and box AP, recall of people taller than 60% of
the image) is printed and written to ``OUTPUT_DIR/summary.json``.
"""

import kpext  # noqa: F401  (registers kpext heads and datasets; bridges old detectron2)
from kpext.engine import KpextTrainer, launch, setup_cfg
from kpext.evaluation.summary import write_summary
from kpext.visualization import save_test_pictures

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser
from detectron2.utils import comm


def report(cfg, model, results):
    """Pictures of predictions and the summary of every test set (main process only)."""
    save_test_pictures(cfg, model)
    if results and comm.is_main_process():
        write_summary(cfg, results)
    return results


def main(args):
    cfg = setup_cfg(args)
    if args.eval_only:
        model = KpextTrainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        return report(cfg, model, KpextTrainer.test(cfg, model))
    trainer = KpextTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return report(cfg, trainer.model, trainer.train())


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
