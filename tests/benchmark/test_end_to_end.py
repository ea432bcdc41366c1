"""bench_end_to_end: what each run is told to do, when a run is reused, and the table's APs
and intervals (checked against pycocotools and against the rows' known order)."""

import contextlib
import io
import json
import os
import shlex

import numpy as np
import pytest

pycocotools = pytest.importorskip("pycocotools")
from coco_results import SIGMAS, make_gt, noisy_results, pycocotools_ap  # noqa: E402
from kpext_bench.keypoint_ap import per_image_matches  # noqa: E402
from script_loading import load_script  # noqa: E402

import kpext  # noqa: E402

from detectron2.config import get_cfg  # noqa: E402

e2e = load_script("kpext_bench_end_to_end", "projects", "Benchmarks", "bench_end_to_end.py")


def recipe(name):
    return next(r for r in e2e.RECIPES if r.name == name)


def settings(tmp_path, **env):
    return e2e.Settings({"BENCH_OUT": str(tmp_path), **env})


def cfg_of(command):
    """The config a train_net.py command line builds (its --config-file and options)."""
    args = command[2:]
    config = args[args.index("--config-file") + 1]
    opts = [a for a in args if a not in ("--config-file", config, "--eval-only")]
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(os.path.join(e2e.runs.REPO, config))
    cfg.merge_from_list(opts)
    return cfg


def test_the_rows_differ_only_where_they_say(tmp_path):
    s = settings(tmp_path, BENCH_E2E_OPTS="SOLVER.MAX_ITER 30")
    stock = cfg_of(e2e.train_net_command(s, recipe("stock"), 2))
    demo = cfg_of(e2e.train_net_command(s, recipe("demo"), 2))
    keypointwise_command = e2e.train_net_command(s, recipe("demo_keypointwise"), 2)
    keypointwise = cfg_of(keypointwise_command)
    assert stock.MODEL.ROI_KEYPOINT_HEAD.NAME == "KRCNNConvDeconvUpsampleHead"
    assert demo.MODEL.ROI_KEYPOINT_HEAD.NAME == "KpextKRCNNHead"
    assert demo.TEST.KPEXT.LEFT_RIGHT == "person"
    assert keypointwise.TEST.KPEXT.LEFT_RIGHT == "keypoint"
    for cfg in (stock, demo, keypointwise):
        assert cfg.SEED == 2 and cfg.SOLVER.MAX_ITER == 30
    # Apart from the head's name (and the output folder), stock trains the demo recipe.
    stock.MODEL.ROI_KEYPOINT_HEAD.NAME = demo.MODEL.ROI_KEYPOINT_HEAD.NAME
    stock.OUTPUT_DIR = demo.OUTPUT_DIR
    assert stock.dump() == demo.dump()
    # The keypoint-wise row evaluates the demo row's model of the same seed.
    assert "--eval-only" in keypointwise_command
    assert keypointwise.MODEL.WEIGHTS == os.path.join(
        e2e.run_dir(s, recipe("demo"), 2), "model_final.pth"
    )


def test_rows_are_chosen_by_name_the_first_the_reference(tmp_path):
    default = settings(tmp_path)
    assert [r.name for r in default.recipes] == ["stock", "demo", "demo_keypointwise"]
    assert default.reference == "stock"
    amp = settings(tmp_path, BENCH_E2E_ROWS="demo_fp32,demo")
    assert [r.name for r in amp.recipes] == ["demo_fp32", "demo"] and amp.reference == "demo_fp32"
    fp32 = cfg_of(e2e.train_net_command(amp, recipe("demo_fp32"), 1))
    demo = cfg_of(e2e.train_net_command(amp, recipe("demo"), 1))
    assert demo.SOLVER.AMP.ENABLED and not fp32.SOLVER.AMP.ENABLED
    fp32.SOLVER.AMP.ENABLED, fp32.OUTPUT_DIR = True, demo.OUTPUT_DIR
    assert fp32.dump() == demo.dump()  # float32 is the only difference
    with pytest.raises(ValueError, match="rows are some of"):
        settings(tmp_path, BENCH_E2E_ROWS="demo,bf16")
    with pytest.raises(ValueError, match="add demo"):
        settings(tmp_path, BENCH_E2E_ROWS="stock,demo_keypointwise")


def test_seeds_start_at_one_and_quick_runs_apart(tmp_path):
    assert settings(tmp_path, BENCH_SEEDS="3").seeds == [1, 2, 3]
    quick = settings(tmp_path, BENCH_QUICK="1")
    assert quick.seeds == [1, 2]
    assert quick.report_dir == os.path.join(str(tmp_path), "quick")
    assert cfg_of(e2e.train_net_command(quick, recipe("demo"), 1)).SOLVER.MAX_ITER == 20


def test_a_run_is_reused_only_when_its_command_matches(tmp_path, monkeypatch):
    s = settings(tmp_path)
    demo = recipe("demo")
    calls = []

    def fake_run(command, cwd, stdout, stderr):
        calls.append(command)
        folder = command[command.index("OUTPUT_DIR") + 1]
        with open(os.path.join(folder, "summary.json"), "w") as f:
            json.dump({"datasets": [], "seed": command[command.index("SEED") + 1]}, f)

        class Done:
            returncode = 0

        return Done()

    monkeypatch.setattr(e2e.runs.subprocess, "run", fake_run)
    with contextlib.redirect_stdout(io.StringIO()):
        assert e2e.run_once(s, demo, 1)["seed"] == "1"
        assert e2e.run_once(s, demo, 1)["seed"] == "1"
        assert len(calls) == 1  # the second call reused the run
        other = settings(tmp_path, BENCH_E2E_OPTS="SOLVER.MAX_ITER 5")
        e2e.run_once(other, demo, 1)
    assert len(calls) == 2 and shlex.join(calls[1]).endswith("SOLVER.MAX_ITER 5")


def test_a_failed_run_names_its_log(tmp_path, monkeypatch):
    class Failed:
        returncode = 3

    monkeypatch.setattr(e2e.runs.subprocess, "run", lambda *a, **k: Failed())
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as error:
        e2e.run_once(settings(tmp_path), recipe("stock"), 1)
    assert "rc 3" in str(error.value) and "bench_train_net.log" in str(error.value)


def summary(good):
    shares = {"good": good, "inversion": 0.1, "inversion_left_right": 0.05}
    return {"datasets": [{"box_ap": 50.0, "keypoint_errors": {"shares": shares}}]}


def test_rows_report_pycocotools_ap_and_a_paired_interval():
    coco = make_gt(num_images=30)
    noise = {"stock": 6.0, "demo": 1.0, "demo_keypointwise": 6.0}
    results = {
        name: [noisy_results(coco, px, seed, extra=False) for seed in (1, 2)]
        for name, px in noise.items()
    }
    matches = {
        name: [per_image_matches(coco, r, SIGMAS) for r in runs] for name, runs in results.items()
    }
    summaries = {"stock": [summary(0.2)] * 2, "demo": [summary(0.6), summary(0.4)]}
    summaries["demo_keypointwise"] = summaries["stock"]
    rows = e2e.dataset_rows(list(noise), matches, summaries, 0)

    for name, runs in results.items():
        expected = [100 * pycocotools_ap(coco, r) for r in runs]
        assert rows[name]["ap_runs"] == pytest.approx(expected, abs=1e-6)
    demo = rows["demo"]
    assert demo["diff_vs_reference"] == pytest.approx(
        np.mean(demo["ap_runs"]) - np.mean(rows["stock"]["ap_runs"]), abs=1e-6
    )
    assert demo["diff_ci95"][0] > 0  # 1 px against 6 px: the interval must see it
    assert rows["stock"]["diff_vs_reference"] == 0
    assert demo["errors"]["good"] == pytest.approx(0.5)
    assert demo["box_ap_runs"] == [50.0, 50.0]

    report = {
        "seeds": [1, 2],
        "config": "demo.yaml",
        "opts": [],
        "commit": "abc",
        "machine": "2 CPU cores",
        "reference": "stock",
        "seconds_per_iteration": {"stock": 0.8, "demo": 0.7},
        "datasets": {"val": rows},
    }
    table = e2e.markdown(report)
    demo_line = next(line for line in table.splitlines() if line.startswith("| demo | val"))
    assert f"{np.mean(demo['ap_runs']):.1f}" in demo_line and "50.0%" in demo_line
