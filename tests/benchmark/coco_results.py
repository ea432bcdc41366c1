"""Small COCO keypoint sets and noisy results for the benchmark's AP tests, and pycocotools'
own keypoint AP to check them against (the independent computation)."""

import contextlib
import copy
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

K = 5
SIGMAS = [0.05, 0.06, 0.07, 0.08, 0.09]


def make_gt(num_images=12, seed=0):
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    ann_id = 1
    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "width": 200, "height": 200, "file_name": f"{image_id}.jpg"})
        for _ in range(rng.integers(0, 4)):  # some images have no people
            x0, y0 = rng.uniform(0, 100, 2)
            w, h = rng.uniform(20, 90, 2)
            kps = []
            for _ in range(K):
                v = int(rng.choice([0, 1, 2], p=[0.15, 0.15, 0.7]))
                kps += (
                    [float(x0 + rng.uniform(0, w)), float(y0 + rng.uniform(0, h)), v]
                    if v
                    else [0.0, 0.0, 0]
                )
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x0, y0, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "keypoints": kps,
                    "num_keypoints": sum(1 for i in range(K) if kps[3 * i + 2] > 0),
                }
            )
            ann_id += 1
    data = {
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": 1, "name": "thing", "keypoints": [f"k{i}" for i in range(K)], "skeleton": []}
        ],
    }
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def noisy_results(coco, noise, seed, extra=True):
    """A detection per gt, keypoints moved by ``noise`` px, random scores; plus false positives."""
    rng = np.random.default_rng(seed)
    results = []
    for ann in coco.dataset["annotations"]:
        kps = np.array(ann["keypoints"], dtype=float).reshape(K, 3)
        kps[:, :2] += rng.normal(0, noise, (K, 2))
        kps[:, 2] = 1
        results.append(
            {
                "image_id": ann["image_id"],
                "category_id": 1,
                "keypoints": kps.ravel().tolist(),
                "score": float(rng.uniform(0.1, 1)),
            }
        )
    if extra:
        for image_id in coco.getImgIds()[::3]:
            kps = np.column_stack([rng.uniform(0, 200, (K, 2)), np.ones(K)])
            results.append(
                {
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": kps.ravel().tolist(),
                    "score": float(rng.uniform(0, 1)),
                }
            )
    return results


def pycocotools_ap(coco, results):
    with contextlib.redirect_stdout(io.StringIO()):
        dt = coco.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco, dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.array(SIGMAS)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0]
