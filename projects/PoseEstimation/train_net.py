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
on the first N images of the first test set into ``OUTPUT_DIR/predictions``.
"""

import kpext  # noqa: F401  (registers kpext heads and datasets; bridges old detectron2)
from kpext.engine import KpextTrainer, launch, setup_cfg
from kpext.visualization import save_test_pictures

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import default_argument_parser


def main(args):
    cfg = setup_cfg(args)
    if args.eval_only:
        model = KpextTrainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        results = KpextTrainer.test(cfg, model)
        save_test_pictures(cfg, model)
        return results
    trainer = KpextTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    results = trainer.train()
    save_test_pictures(cfg, trainer.model)
    return results


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
