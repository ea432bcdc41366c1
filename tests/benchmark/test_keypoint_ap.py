"""Per-image keypoint AP and the paired bootstrap, against pycocotools' own accumulate."""

import contextlib
import copy
import io

import numpy as np
import pytest

pycocotools = pytest.importorskip("pycocotools")
from kpext_bench.keypoint_ap import keypoint_ap, paired_bootstrap, per_image_matches  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

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


@pytest.mark.parametrize("noise", [0.5, 2.0, 6.0])
def test_keypoint_ap_equals_pycocotools_on_all_images(noise):
    coco = make_gt()
    results = noisy_results(coco, noise, seed=1)
    matches = per_image_matches(coco, results, SIGMAS)
    assert len(matches) == len(coco.getImgIds())
    assert keypoint_ap(matches) == pytest.approx(pycocotools_ap(coco, results), abs=1e-9)


def test_keypoint_ap_of_a_resample_equals_pycocotools_on_the_duplicated_set():
    """An image drawn twice counts twice: same AP as pycocotools on a set holding it twice."""
    coco = make_gt(num_images=6)
    results = noisy_results(coco, 2.0, seed=2)
    matches = per_image_matches(coco, results, SIGMAS)
    draw = [0, 0, 2, 3, 3, 5]
    # The same multiset written out as a COCO set with fresh image and annotation ids.
    ids = coco.getImgIds()
    images, annotations, dup_results = [], [], []
    for new_id, index in enumerate(draw, 1):
        old = ids[index]
        images.append({**coco.imgs[old], "id": new_id})
        for ann in coco.imgToAnns[old]:
            annotations.append({**ann, "id": len(annotations) + 1, "image_id": new_id})
        dup_results += [{**r, "image_id": new_id} for r in results if r["image_id"] == old]
    dup = COCO()
    dup.dataset = {
        "images": images,
        "annotations": annotations,
        "categories": coco.dataset["categories"],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        dup.createIndex()
    assert keypoint_ap(matches, draw) == pytest.approx(pycocotools_ap(dup, dup_results), abs=1e-9)


def test_paired_bootstrap_finds_a_real_difference_and_none_between_equals():
    coco = make_gt(num_images=40, seed=3)
    sharp = [per_image_matches(coco, noisy_results(coco, 1.0, seed=s), SIGMAS) for s in range(3)]
    blurry = [
        per_image_matches(coco, noisy_results(coco, 4.0, seed=s + 10), SIGMAS) for s in range(3)
    ]
    diffs = paired_bootstrap(
        {"ref": blurry, "same": blurry, "better": sharp}, "ref", num_resamples=200
    )
    assert diffs["same"].mean == 0 and diffs["same"].low == 0 and diffs["same"].high == 0
    assert diffs["better"].low > 0
    expected = 100 * (
        np.mean([keypoint_ap(m) for m in sharp]) - np.mean([keypoint_ap(m) for m in blurry])
    )
    assert diffs["better"].mean == pytest.approx(expected)
    assert diffs["better"].low < diffs["better"].mean < diffs["better"].high


def test_paired_bootstrap_refuses_runs_of_different_shapes():
    coco = make_gt(num_images=5)
    runs = [per_image_matches(coco, noisy_results(coco, 1.0, seed=s), SIGMAS) for s in range(2)]
    with pytest.raises(ValueError, match="seeds"):
        paired_bootstrap({"ref": runs, "other": runs[:1]}, "ref", num_resamples=5)
