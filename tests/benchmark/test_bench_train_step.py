"""bench_train_step: the speed-up and its interval, and a --quick smoke run on a tiny set."""

import json

import pytest
import torch
from script_loading import load_script

from kpext_synth.people import SyntheticConfig, generate_split

bench = load_script("kpext_bench_train_step", "projects", "Benchmarks", "bench_train_step.py")

# The demo model made small enough for a smoke run of seconds on 2 busy cores.
SMALL = [
    "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MAX_SIZE_TRAIN", "128",
    "MODEL.FPN.OUT_CHANNELS", "32", "MODEL.ROI_BOX_HEAD.FC_DIM", "64",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", "100", "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
    "MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS", "(32, 32)", "SOLVER.IMS_PER_BATCH", "2",
]  # fmt: skip


def test_speed_up_is_the_ratio_of_medians_with_a_paired_interval():
    same = bench.bootstrap_ratio([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert same == {"ratio": 2.0, "low": 2.0, "high": 2.0}
    noisy = bench.bootstrap_ratio([2.0, 2.2, 1.8, 2.1, 1.9], [1.0, 1.2, 0.9, 1.1, 1.0])
    assert noisy["low"] <= noisy["ratio"] <= noisy["high"]
    assert noisy["ratio"] == pytest.approx(2.0 / 1.0)


def test_quick_run_times_every_available_variant_and_writes_its_report(tmp_path):
    data = tmp_path / "datasets"
    config = SyntheticConfig(
        num_images=4, seed=0, width=128, height=128, max_people=2, min_person_height=40
    )
    generate_split(str(data / "synthetic"), "train", config, show_progress=False)
    out = tmp_path / "report"
    bench.training_set(str(data))  # the heads read the dataset's keypoint names
    cfg = bench.bench_cfg(bench.parse_args(["--quick", *SMALL]))
    weights = tmp_path / "model.pth"  # "trained" weights: loaded (and checked) before timing
    torch.save({"model": bench.build_variant_model(cfg, "torchvision").state_dict()}, weights)

    threads = torch.get_num_threads()
    try:  # one thread: on a busy machine two threads spend their time waiting for each other
        report = bench.main(
            ["--quick", "--threads", "1", "--data-root", str(data), "--out", str(out),
             "--weights", str(weights), *SMALL]
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)

    assert [row["name"] for row in report["variants"]] == [v.name for v in bench.VARIANTS]
    for row in report["variants"]:
        assert len(row["rounds"]) == 2 and row["median_s"] > 0
        assert row["forward_s"] > 0 and row["optimizer_s"] > 0
    assert report["variants"][0]["speed_up"]["ratio"] == 1.0
    assert report["fast_roi_align_modules"] > 0  # "auto" does pool with another kernel
    assert set(report["machine"]["flags"]) == {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    saved = json.loads((out / "bench_train_step_quick.json").read_text())
    assert saved["settings"]["quick"] and saved["settings"]["opts"] == SMALL
    assert saved["settings"]["weights"] == str(weights)
    table = (out / "bench_train_step_quick.md").read_text()
    assert report["machine"]["cpu"] in table and "| baseline | torchvision | fp32 |" in table
