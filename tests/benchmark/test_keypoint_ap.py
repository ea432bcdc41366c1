"""Per-image keypoint AP and the paired bootstrap, against pycocotools' own accumulate."""

import contextlib
import io

import numpy as np
import pytest

pycocotools = pytest.importorskip("pycocotools")
from coco_results import SIGMAS, make_gt, noisy_results, pycocotools_ap  # noqa: E402
from kpext_bench.keypoint_ap import keypoint_ap, paired_bootstrap, per_image_matches  # noqa: E402
from pycocotools.coco import COCO  # noqa: E402


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
