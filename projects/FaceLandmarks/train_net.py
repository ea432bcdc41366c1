#!/usr/bin/env python
"""Train or evaluate a face keypoint model: projects/PoseEstimation/train_net.py plus the
face datasets and the pixel-error evaluator.

    python projects/FaceLandmarks/train_net.py \
        --config-file projects/FaceLandmarks/configs/faces15_hourglass.yaml
    python projects/FaceLandmarks/train_net.py --config-file CFG \
        --eval-only MODEL.WEIGHTS out/model_final.pth
    python projects/FaceLandmarks/train_net.py --config-file CFG --faces-root /data/kaggle_faces

Before building the config, ``kpext_faces15_{train,val}`` and
``kpext_faces68_{train,val}`` are registered from ``--faces-root`` (default
``<datasets root>/faces``, where ``datasets/make_faces.py`` writes; the Kaggle
converter ``datasets/kaggle_faces_to_coco.py --out DIR`` writes the same layout).
Evaluation runs Detectron2's ``COCOEvaluator`` (box and OKS keypoint AP with the
face sigmas) and ``FaceKeypointErrorEvaluator`` (mean error in pixels at 96x96)
in one pass; ``OUTPUT_DIR/face_metrics.json`` sums up both, with the training
time. Pictures of predictions: ``TEST.KPEXT.NUM_VIS`` (8 in the face configs).
All of Detectron2's usual arguments work (``--resume``, ``--num-gpus``, overrides);
without CUDA, ``--num-gpus N`` trains in N CPU processes (GLOO, :func:`kpext.engine.launch`).
"""

import importlib.util
import json
import logging
import os
import sys
import time

if importlib.util.find_spec("kpext") is None:  # a checkout without `pip install -e .`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# E402 below is expected: kpext is importable only after the sys.path set-up above, and detectron2
# only after `import kpext` (kpext.compat bridges detectron2 v0.6).
from evaluate_faces import FaceKeypointErrorEvaluator  # noqa: E402  (this script's folder is on sys.path)

import kpext  # noqa: E402,F401  (registers kpext heads and datasets; bridges old detectron2)
from kpext.data.builtin import default_datasets_root  # noqa: E402
from kpext.data.faces import register_face_datasets  # noqa: E402
from kpext.engine import KpextTrainer, launch, setup_cfg  # noqa: E402
from kpext.visualization import save_test_pictures  # noqa: E402

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.data import MetadataCatalog  # noqa: E402
from detectron2.engine import default_argument_parser  # noqa: E402
from detectron2.evaluation import DatasetEvaluators  # noqa: E402
from detectron2.utils import comm  # noqa: E402

logger = logging.getLogger("kpext")


class FaceTrainer(KpextTrainer):
    """KpextTrainer whose evaluation adds the face keypoint pixel error."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return DatasetEvaluators([
            super().build_evaluator(cfg, dataset_name, output_folder),
            FaceKeypointErrorEvaluator(dataset_name, output_folder),
        ])  # fmt: skip


def check_face_files(dataset_names, faces_root: str) -> None:
    """Stop early, with the command that makes them, when the face JSONs are missing."""
    for name in dataset_names:
        json_file = MetadataCatalog.get(name).get("json_file", None)
        if (
            json_file is not None
            and name.startswith("kpext_faces")
            and not os.path.isfile(json_file)
        ):
            raise FileNotFoundError(
                f"Dataset '{name}': {json_file} does not exist. Generate the synthetic faces with "
                f"`python datasets/make_faces.py --out {faces_root}`, "
                "or convert Kaggle's training.csv with "
                f"`python datasets/kaggle_faces_to_coco.py --csv training.csv --out {faces_root}`."
            )


def summarize(cfg, results, train_seconds) -> dict:
    """Write OUTPUT_DIR/face_metrics.json: pixel errors, keypoint and box AP of each test set."""
    if len(cfg.DATASETS.TEST) == 1 and results and "face_keypoints" in results:
        results = {cfg.DATASETS.TEST[0]: results}
    summary = {
        "config": cfg.MODEL.ROI_KEYPOINT_HEAD.NAME,
        "train_seconds": train_seconds,
        "datasets": {},
    }
    for name, res in (results or {}).items():
        face = res.get("face_keypoints", {})
        summary["datasets"][name] = {
            "mean_px_error": face.get("mean_px_error"),
            "rmse_px": face.get("rmse_px"),
            "nme_iod_percent": face.get("nme_iod_percent"),
            "keypoint_AP": res.get("keypoints", {}).get("AP"),
            "keypoint_AP50": res.get("keypoints", {}).get("AP50"),
            "keypoint_AP75": res.get("keypoints", {}).get("AP75"),
            "box_AP": res.get("bbox", {}).get("AP"),
            "faces_missed": face.get("faces_missed"),
        }
    path = os.path.join(cfg.OUTPUT_DIR, "face_metrics.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, default=lambda v: None)
    for name, row in summary["datasets"].items():
        logger.info(
            "%s on %s: mean error %s px at 96x96, keypoint AP %s (AP50 %s, AP75 %s), "
            "box AP %s -> %s",
            summary["config"], name,
            *(_fmt(row[k]) for k in ("mean_px_error", "keypoint_AP", "keypoint_AP50",
                                     "keypoint_AP75", "box_AP")),
            path,
        )  # fmt: skip
    return summary


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def main(args):
    register_face_datasets(args.faces_root)
    cfg = setup_cfg(args)
    check_face_files(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST), args.faces_root)
    if args.eval_only:
        model = FaceTrainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        results, train_seconds = FaceTrainer.test(cfg, model), None
    else:
        trainer = FaceTrainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        start = time.perf_counter()
        trainer.train()
        train_seconds = round(time.perf_counter() - start, 1)  # includes the final evaluation
        # DefaultTrainer keeps the results of its final evaluation here
        results, model = getattr(trainer, "_last_eval_results", None), trainer.model
    save_test_pictures(cfg, model)
    if comm.is_main_process():
        summarize(cfg, results, train_seconds)
    return results


def build_parser():
    parser = default_argument_parser()
    parser.add_argument(
        "--faces-root",
        default=os.path.join(default_datasets_root(), "faces"),
        help="folder with annotations/faces{15,68}_{train,val}.json and images/{train,val}",
    )
    return parser


if __name__ == "__main__":
    args = build_parser().parse_args()
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
