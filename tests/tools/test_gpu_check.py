"""tools/gpu_check.sh: the wheelhouse install, part a's sizing and verdict, part b's training
paths and rows, the report, and the whole path at toy size on the CPU.

CI has no GPU, so ``--cpu-smoke`` is what keeps the GPU check runnable: the same script,
install step, head benchmark (part a), ``train_net.py`` launch (the first run over GLOO in
two processes; AMP as this CPU runs it), inference with the graph's test-time options and
report format as on the GPU machine.
"""

import json
import os
import subprocess
import sys
import tarfile
import zipfile

import gpu_check_install
import gpu_check_plateau
import gpu_check_report
import gpu_check_runs
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_wheel(folder, name="kpext_probe", version="0.1", tag="py3-none-any"):
    """A minimal installable wheel holding one module ``name`` with ``VALUE = 42``."""
    dist_info = f"{name}-{version}.dist-info"
    path = os.path.join(folder, f"{name}-{version}-{tag}.whl")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}.py", "VALUE = 42\n")
        z.writestr(
            f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        z.writestr(
            f"{dist_info}/WHEEL",
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n",
        )
        z.writestr(f"{dist_info}/RECORD", "")
    return path


def test_wheel_selection_keeps_what_this_python_installs():
    tags = {"py3-none-any", "cp311-cp311-manylinux_2_17_x86_64", "cp311-abi3-manylinux2014_x86_64"}
    assert gpu_check_install.wheel_tags("a/pkg-1.0-py3-none-any.whl") == ("py3", "none", "any")
    assert gpu_check_install.wheel_fits("x-1-py3-none-any.whl", tags)
    assert gpu_check_install.wheel_fits(
        "y-1-cp311-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", tags
    )
    assert not gpu_check_install.wheel_fits(
        "z-1-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl", tags
    )
    with pytest.raises(ValueError):
        gpu_check_install.wheel_tags("notawheel.whl")


def test_install_wheelhouse_into_a_prefix(tmp_path):
    house = tmp_path / "house"
    house.mkdir()
    make_wheel(str(house))
    make_wheel(str(house), "other_python", tag="cp27-cp27mu-manylinux1_x86_64")
    target = str(tmp_path / "prefix")
    done = gpu_check_install.install_wheelhouse(str(house), target)
    assert done["used"] and done["installed"] == ["kpext_probe-0.1-py3-none-any.whl"]
    assert done["left_out"] == ["other_python-0.1-cp27-cp27mu-manylinux1_x86_64.whl"]
    probe = "import kpext_probe; print(kpext_probe.VALUE, kpext_probe.__file__)"
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": target},
                         capture_output=True, text=True, check=True)  # fmt: skip
    value, where = out.stdout.split()
    assert value == "42" and where.startswith(target)


def test_unzip_fallback_lays_out_like_pip(tmp_path):
    wheel = make_wheel(str(tmp_path))
    gpu_check_install.unzip_wheels([wheel], str(tmp_path / "t"))
    assert (tmp_path / "t" / "kpext_probe.py").read_text() == "VALUE = 42\n"
    assert (tmp_path / "t" / "kpext_probe-0.1.dist-info" / "METADATA").exists()


def test_missing_wheelhouse_uses_the_current_environment(tmp_path):
    done = gpu_check_install.install_wheelhouse(str(tmp_path / "absent"), str(tmp_path / "prefix"))
    assert not done["used"] and "make gpu-wheels" in done["reason"]


def test_parse_training_reads_speed_memory_and_ap(tmp_path):
    (tmp_path / "log.txt").write_text(
        "[..] d2.utils.events INFO:  eta: 0:00:01  iter: 19  total_loss: 3.1  time: 0.2  "
        "max_mem: 5120M\n"
        "[..] d2.engine.hooks INFO: Overall training speed: 27 iterations in 0:00:05 "
        "(0.1852 s / it)\n"
        "[..] kpext.engine.trainer INFO: RoIAlign: 0 level poolers use kpext's CPU kernel "
        "(MODEL.KPEXT.ROI_ALIGN 'auto', MODEL.DEVICE cuda); torchvision's roi_align everywhere\n"
        "[..] kpext.engine.trainer INFO: Training step: AMPTrainer (MODEL.DEVICE cuda, "
        "SOLVER.AMP.ENABLED True)\n"
    )
    (tmp_path / "metrics.json").write_text(
        json.dumps({"iteration": 19, "time": 0.2})
        + "\n"
        + json.dumps({"iteration": 29, "bbox/AP": 1.5, "keypoints/AP": 0.25})
        + "\n"
    )
    found = gpu_check_runs.parse_training(str(tmp_path))
    assert found == {
        "train_s_per_iter": 0.1852,
        "train_max_mem_mb": 5120.0,
        "box_ap": 1.5,
        "kp_ap": 0.25,
        "trainer": "AMPTrainer",
        "cpu_roi_align_poolers": 0,
    }
    (tmp_path / "log.txt").write_text("no speed line (fewer than 4 iterations)\n")
    assert gpu_check_runs.parse_training(str(tmp_path))["train_s_per_iter"] == 0.2


def _run(head, precision, s_per_iter, status="trained"):
    run = gpu_check_runs.Run(head, head + "Head", precision, "cfg.yaml", [], "/nowhere")
    run.status, run.train_s_per_iter, run.kp_ap = status, s_per_iter, 0.0
    return run


def test_rows_ratios_to_stock_at_the_same_precision():
    runs = [
        _run("stock", "fp32", 0.4),
        _run("stock", "amp", 0.2),
        _run("gaussian", "fp32", 0.3),
        _run("gaussian", "amp", 0.3),
    ]
    timings = {
        "stock_fp32": {
            "infer_img_s_b1": 10.0,
            "infer_img_s_b8": 20.0,
            "detections_per_image": 20.0,
        },
        "stock_amp": {"infer_img_s_b1": 20.0, "infer_img_s_b8": 40.0, "detections_per_image": 20.0},
        "gaussian_fp32": {
            "infer_img_s_b1": 15.0,
            "infer_img_s_b8": 30.0,
            "detections_per_image": 20.0,
        },
        "gaussian_amp": {"error": "boom"},
    }
    rows = {(r["head"], r["precision"]): r for r in gpu_check_report.build_rows(runs, timings)}
    assert (
        rows["stock", "fp32"]["status"] == "ok"
        and rows["stock", "fp32"]["train_s_per_iter_vs_stock"] == 1.0
    )
    assert rows["gaussian", "fp32"]["train_s_per_iter_vs_stock"] == 0.75
    assert rows["gaussian", "fp32"]["infer_img_s_b1_vs_stock"] == 1.5
    assert (
        rows["gaussian", "amp"]["train_s_per_iter_vs_stock"] == 1.5
    )  # against stock AMP, not stock fp32
    assert (
        rows["gaussian", "amp"]["status"] == "failed" and "boom" in rows["gaussian", "amp"]["error"]
    )
    assert rows["gaussian", "amp"]["infer_img_s_b1_vs_stock"] is None


def test_graph_variant_rows_follow_their_run_and_compare_with_stock():
    runs = [_run("stock", "fp32", 0.4), _run("kpext_krcnn_facing", "fp32", 0.4)]
    options = {"FLIP": "False", "LEFT_RIGHT": "person"}
    timings = {
        "stock_fp32": {"test_options": None, "infer_img_s_b1": 10.0, "infer_img_s_b8": 20.0},
        "kpext_krcnn_facing_fp32": {"test_options": options, "infer_img_s_b1": 10.0},
        "kpext_krcnn_facing_fp32+flip=True+left_right=person": {
            "test_options": {"FLIP": "True", "LEFT_RIGHT": "person"},
            "source": "kpext_krcnn_facing_fp32",
            "infer_img_s_b1": 5.0,
            "infer_img_s_b8": 12.0,
        },
    }
    rows = gpu_check_report.build_rows(runs, timings)
    assert [(r["head"], r["weights_from"]) for r in rows] == [
        ("stock", None),
        ("kpext_krcnn_facing", None),
        ("kpext_krcnn_facing", "kpext_krcnn_facing_fp32"),
    ]
    variant = rows[2]
    assert variant["status"] == "ok" and variant["train_s_per_iter"] is None
    assert variant["infer_img_s_b1_vs_stock"] == 0.5 and variant["infer_img_s_b8_vs_stock"] == 0.6
    md = gpu_check_report.rows_markdown(rows)
    assert (
        "| FLIP True, LEFT_RIGHT person |" in md[-1]
        and "(weights of kpext_krcnn_facing_fp32)" in md[-1]
    )


@pytest.mark.parametrize(
    "device, precision, trainer, poolers, log, mode, error",
    [
        ("cuda", "fp32", "SimpleTrainer", 0, "", "", ""),
        ("cuda", "amp", "AMPTrainer", 0, "", "fp16 autocast", ""),
        ("cuda", "amp", "AMPTrainer", 8, "", "fp16 autocast", "CPU RoIAlign on CUDA"),
        ("cuda", "amp", "CPUAMPTrainer", 0, "", "fp16 autocast", "expected AMPTrainer"),
        ("cpu", "fp32", "SimpleTrainer", 8, "", "", ""),
        ("cpu", "amp", "CPUAMPTrainer", 8, "", "bf16 autocast", ""),
        ("cpu", "amp", "SimpleTrainer", 8, "SOLVER.AMP.ENABLED is ignored", "fp32", ""),
        ("cpu", "amp", "SimpleTrainer", 8, "", "bf16 autocast", "expected CPUAMPTrainer"),
    ],
)
def test_the_training_path_is_the_promised_one(
    device, precision, trainer, poolers, log, mode, error
):
    """CUDA: torchvision's RoIAlign and Detectron2's AMPTrainer (float16); the CPU: bf16
    CPUAMPTrainer where the CPU has native bf16, float32 after the warning elsewhere."""
    run = _run("stock", precision, 0.1)
    run.trainer, run.cpu_roi_align_poolers = trainer, poolers
    found = gpu_check_runs.check_training_path(run, device, log)
    assert run.amp_mode.startswith(mode) and (error in found if error else found == "")
    assert run.status == ("failed" if error else "trained")


def _bench_row(name, iterations, ap, diff=0.0, ci=(0.0, 0.0), weights_from=None, regime=False,
               overrides=(), s_per_iter=0.1):  # fmt: skip
    return {"name": name, "iterations": iterations, "ap_gt": ap, "diff_gt_vs_stock": diff,
            "diff_gt_ci95": list(ci), "weights_from": weights_from, "regime": regime,
            "overrides": list(overrides), "train_s_per_iter": s_per_iter}  # fmt: skip


def test_part_a_sizes_its_table_from_the_probe():
    """Row costs from the probe's heads.json and log; the longest ladder step that fits."""
    probe = {"rows": [
        _bench_row("stock", 20, 1.0, s_per_iter=0.02),
        _bench_row("stock_x2", 40, 1.0, regime=True, s_per_iter=0.02),
        _bench_row("kpext_krcnn_lr_person", 20, 1.0, weights_from="stock", s_per_iter=0.02),
    ]}  # fmt: skip
    log = "\n".join(
        f"[12/06 18:00:00 kpext.bench]: bench: {name} seed 0: AP(gt boxes) 1.0, "
        f"AP(detections) 0.5, 0.020 s/iter, {seconds} s"
        for name, seconds in (("stock", 3), ("stock_x2", 4), ("kpext_krcnn_lr_person", 2))
    )
    costs = gpu_check_plateau.row_costs(probe, log, probe_iters=20)
    assert costs["stock_x2"].factor == 2.0 and costs["stock_x2"].trains
    assert not costs["kpext_krcnn_lr_person"].trains
    assert costs["stock"].eval_s == pytest.approx(3 - 20 * 0.02 + 0.5)
    profile = gpu_check_runs.PlateauProfile(
        quick=False, heads="", probe_iters=20, ladder=((3200, 2), (1600, 1), (200, 1)),
        budget_s=300.0, overhead_s=40.0, margin=1.0,
    )  # fmt: skip
    # per seed at 1600: stock 1600 x 0.02 + 3.1, stock_x2 3200 x 0.02 + 3.7, lr_person 2.5
    assert gpu_check_plateau.estimate_s(costs, 1600, 1, profile) == pytest.approx(40 + 105.3)
    plan = gpu_check_plateau.choose_plan(costs, 200.0, profile)
    assert plan["iterations"] == 1600 and plan["seeds"] == 1
    assert gpu_check_plateau.choose_plan(costs, 30.0, profile) is None


def test_part_a_reports_a_failed_probe_or_table_with_its_cause(tmp_path, monkeypatch, capsys):
    """A bench process that times out (exit 124) or fails: the part's status, an error naming
    the step and the cause (the log's last error line), and the log's end printed."""
    profile = gpu_check_runs.PlateauProfile(
        quick=True, heads="", probe_iters=20, ladder=((200, 1),), budget_s=300.0, overhead_s=1.0,
    )  # fmt: skip
    probe = {"rows": [_bench_row("stock", 20, 1.0, s_per_iter=0.001)]}
    outcomes = []

    def fake_run_bench(env, log_path, timeout):
        with open(log_path, "w") as f:
            f.write("")
        return outcomes.pop(0)

    monkeypatch.setattr(gpu_check_plateau, "run_bench", fake_run_bench)

    def run():
        return gpu_check_plateau.run_plateau(
            profile, {}, "cpu", str(tmp_path), str(tmp_path), str(tmp_path)
        )

    outcomes[:] = [(124, "still training", 300.0, None)]
    plateau = run()
    assert (plateau.status, plateau.error) == ("failed", "probe timed out")
    assert "part a's probe failed (exit 124)" in capsys.readouterr().out
    outcomes[:] = [(0, "", 1.0, probe), (1, "loading\nRuntimeError: boom\nexiting", 2.0, None)]
    plateau = run()
    assert (plateau.status, plateau.error) == ("failed", "table: RuntimeError: boom")
    assert "part a's table failed (exit 1)" in capsys.readouterr().out


def test_part_a_verdict_reads_stocks_curve_and_the_last_doubling():
    report = {"seeds": [0, 1], "rows": [
        _bench_row("stock", 1600, 60.0),
        _bench_row("stock_x0.25", 400, 50.0, -10.0, (-11.0, -9.0), regime=True),
        _bench_row("stock_x2", 3200, 60.6, 0.6, (-0.2, 1.4), regime=True),
        _bench_row("stock_weak_28", 1600, 55.0, -5.0, (-6.0, -4.0), regime=True,
                   overrides=("MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION", "7")),
        _bench_row("gaussian", 1600, 61.0, 1.0, (0.2, 1.8)),
    ]}  # fmt: skip
    found = gpu_check_plateau.verdict(report)
    assert found["stock_curve"] == [[400, 50.0], [1600, 60.0], [3200, 60.6]]
    assert found["plateau_reached"] and found["doubling_gain"] == 0.6 and found["seeds"] == 2
    assert found["weak_diff"] == -5.0 and found["weak_ci95"] == [-6.0, -4.0]
    report["rows"][2]["diff_gt_vs_stock"] = 2.5
    assert not gpu_check_plateau.verdict(report)["plateau_reached"]


def test_inference_times_every_other_combination_of_the_graph_options():
    """Graph variants follow kpext.config.GRAPH_TEST_OPTIONS: every combination but the
    config's own, on the run's weights."""
    import gpu_check_infer

    from kpext.config import GRAPH_TEST_OPTIONS, add_kpext_config

    from detectron2.config import get_cfg

    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.TEST.KPEXT.LEFT_RIGHT = "person"
    run = {"name": "h_fp32", "overrides": ["A", "1"], "precision": "fp32"}
    variants = gpu_check_infer.graph_variants(run, cfg)
    combinations = 1
    for values in GRAPH_TEST_OPTIONS.values():
        combinations *= len(values)
    assert len(variants) == combinations - 1
    names = [name for name, _ in variants]
    assert "h_fp32+flip=True+left_right=person" in names
    assert not any(n == "h_fp32+flip=False+left_right=person" for n in names)
    name, variant = variants[0]
    assert variant["name"] == name and variant["overrides"][:2] == ["A", "1"]
    assert all(f"TEST.KPEXT.{key}" in variant["overrides"] for key in GRAPH_TEST_OPTIONS)


def _wheelhouse_for_smoke(tmp_path):
    """``make gpu-wheels``'s wheelhouse when it was built, else one probe wheel, so that the
    install step (pip into a temporary prefix on PYTHONPATH) runs either way."""
    real = os.path.join(REPO, ".gpu-wheels")
    if os.path.isdir(real) and any(f.endswith(".whl") for f in os.listdir(real)):
        return real
    house = tmp_path / "house"
    house.mkdir()
    make_wheel(str(house))
    return str(house)


@pytest.mark.skipif(
    not os.environ.get("KPEXT_GPU_SMOKE"),
    reason="the whole CPU smoke run of tools/gpu_check.sh takes 5-10 minutes on 2 cores, more "
    "than make test can spend: `make gpu-smoke` runs it (KPEXT_GPU_SMOKE=1), and CI does",
)
def test_cpu_smoke_run_writes_the_report(tmp_path):
    """Both parts at toy size: part a's probe and table (stock's curve, a decoding row), part
    b's fp32 and AMP runs of stock and the facing head (AMP as this CPU trains it), the facing
    head's graph variants, the report's six files."""
    from kpext.engine.amp import native_bf16_flags

    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "OUT": str(out),
        "GPU_WHEELHOUSE": _wheelhouse_for_smoke(tmp_path),
    }
    # Budgets far above the 4 to 10 minutes it takes, so that a busy machine makes it slower,
    # not different: no run skipped for time (the skipping is the GPU's concern).
    done = subprocess.run(["bash", os.path.join(REPO, "tools", "gpu_check.sh"),
                           "--cpu-smoke", "--heads", "stock,kpext_krcnn_facing",
                           "--budget-s", "2400", "--plateau-budget-s", "1200"],
                          env=env, capture_output=True, text=True, timeout=2700)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert sorted(os.listdir(out)) == sorted(
        ["report.json", "report.md", "logs.tar.gz"]
        + [f"plateau_heads{ext}" for ext in (".json", ".md", ".png")]
    )
    report = json.loads((out / "report.json").read_text())
    assert report["profile"] == "cpu-smoke" and report["install"]["used"] and report["commit"]
    assert report["environment"]["torch"] and report["environment"]["device"] == "cpu"
    assert [s["step"] for s in report["steps"]] == [
        "install", "plateau", "data", "train stock_fp32", "train stock_amp",
        "train kpext_krcnn_facing_fp32", "train kpext_krcnn_facing_amp", "infer",
    ]  # fmt: skip

    plateau = report["plateau"]
    assert plateau["status"] == "ok", plateau
    assert set(plateau["probe"]["rows"]) == {"stock", "stock_x2", "kpext_krcnn_lr_person"}
    assert (plateau["plan"]["iterations"], plateau["plan"]["seeds"]) in [(8, 2), (4, 1)]
    curve = plateau["verdict"]["stock_curve"]
    assert [n for n, _ in curve] == [plateau["plan"]["iterations"] * f for f in (1, 2)]
    assert isinstance(plateau["verdict"]["plateau_reached"], bool)
    table = json.loads((out / "plateau_heads.json").read_text())
    assert {r["name"] for r in table["rows"]} == {"stock", "stock_x2", "kpext_krcnn_lr_person"}
    assert table["quick"] and len(table["seeds"]) == plateau["plan"]["seeds"]

    rows = {(r["head"], r["precision"], r["weights_from"]): r for r in report["rows"]}
    trained = [k for k in rows if k[2] is None]
    assert trained == [("stock", "fp32", None), ("stock", "amp", None),
                       ("kpext_krcnn_facing", "fp32", None),
                       ("kpext_krcnn_facing", "amp", None)]  # fmt: skip
    native = bool(native_bf16_flags())
    for head, precision, _ in trained:
        row = rows[head, precision, None]
        assert row["status"] == "ok", row
        for name in ("train_s_per_iter", "infer_img_s_b1", "infer_img_s_b8"):
            assert row[name] > 0
            expected = round(row[name] / rows["stock", precision, None][name], 3)
            assert row[f"{name}_vs_stock"] == expected
        assert row["detections_per_image"] == 20.0  # score threshold 0: equal work for every head
        assert row["kp_ap"] is not None and row["box_ap"] is not None
        assert row["cpu_roi_align_poolers"] > 0  # MODEL.KPEXT.ROI_ALIGN auto on the CPU
        if precision == "fp32":
            assert row["trainer"] == "SimpleTrainer"
        else:  # AMP on this CPU: bf16 autocast where it has native bf16, else float32
            assert row["trainer"] == ("CPUAMPTrainer" if native else "SimpleTrainer")
            mode = "bf16 autocast" if native else "fp32 (this CPU has no native bf16)"
            assert row["amp_mode"] == mode
    assert rows["stock", "fp32", None]["test_options"] is None  # stock reads none
    every = {(f, lr) for f in ("False", "True") for lr in ("keypoint", "person")}
    for precision in ("fp32", "amp"):
        own = rows["kpext_krcnn_facing", precision, None]["test_options"]
        assert set(own) == {"FLIP", "LEFT_RIGHT"}  # kpext.config.GRAPH_TEST_OPTIONS
        variants = [r for r in report["rows"] if r["precision"] == precision and r["weights_from"]]
        assert len(variants) == len(every) - 1
        assert {(r["test_options"]["FLIP"], r["test_options"]["LEFT_RIGHT"]) for r in variants} == (
            every - {(own["FLIP"], own["LEFT_RIGHT"])}
        )
        assert all(r["status"] == "ok" and r["infer_img_s_b8_vs_stock"] > 0 for r in variants)
    assert rows["stock", "fp32", None]["processes"] == 2  # the GLOO path of kpext.engine.launch
    assert rows["kpext_krcnn_facing", "fp32", None]["processes"] == 1

    md = (out / "report.md").read_text()
    assert "## a) The heads at their plateau" in md and "| regime check |" in md
    assert "## b) Training and inference at full size" in md
    assert "| stock (KRCNNConvDeconvUpsampleHead) | fp32 | - | 2 | SimpleTrainer" in md
    assert "| FLIP True, LEFT_RIGHT keypoint |" in md
    with tarfile.open(out / "logs.tar.gz") as tar:
        logged = set(tar.getnames())
    assert {"logs/stock_fp32.log.txt", "logs/plateau_probe.log", "logs/plateau_table.log",
            "logs/infer.log"} <= logged  # fmt: skip


def test_gpu_plan_configs_merge(tmp_path):
    """Every run of the GPU profile merges into a valid config: full-size R50-FPN on CUDA,
    the head the row names, AMP on its AMP rows, 8 loader workers; the facing row trains the
    facing branch; the COCO configs decode left/right per person; none puts kpext's CPU
    RoIAlign into a CUDA model (MODEL.KPEXT.ROI_ALIGN auto)."""
    from kpext.config import add_kpext_config
    from kpext.modeling.roi_align import configure_roi_align

    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    runs = gpu_check_runs.plan_runs(
        gpu_check_runs.gpu_profile(), str(tmp_path), [h.name for h in gpu_check_runs.HEADS]
    )
    assert [r.name for r in runs] == [
        f"{h.name}_{p}" for h in gpu_check_runs.HEADS for p in ("fp32", "amp")
    ]
    classes = {r.head_class for r in runs}
    assert classes == {"KRCNNConvDeconvUpsampleHead", "KpextKRCNNHead", "KRCNNCodecKeypointHead",
                       "GaussianKeypointHead", "HourglassKeypointHead"}  # fmt: skip
    model = None
    for run in runs:
        cfg = get_cfg()
        add_kpext_config(cfg)
        cfg.merge_from_file(os.path.join(REPO, run.config_file))
        cfg.merge_from_list(run.overrides)
        assert cfg.MODEL.ROI_KEYPOINT_HEAD.NAME == run.head_class
        assert (
            cfg.MODEL.RESNETS.DEPTH == 50 and cfg.MODEL.DEVICE == "cuda" and cfg.MODEL.WEIGHTS == ""
        )
        assert cfg.SOLVER.AMP.ENABLED == (run.precision == "amp")
        assert (
            cfg.DATALOADER.NUM_WORKERS == 8
            and cfg.SOLVER.MAX_ITER == 30
            and cfg.SOLVER.IMS_PER_BATCH == 8
        )
        assert cfg.DATASETS.TRAIN == ("kpext_synth_train",) and cfg.INPUT.MIN_SIZE_TRAIN == (800,)
        assert run.processes == 1
        assert cfg.TEST.KPEXT.LEFT_RIGHT == "person"
        facing = run.head == "kpext_krcnn_facing"
        assert (cfg.MODEL.KPEXT.FACING.LOSS_WEIGHT > 0) == facing == run.graph_variants
        assert cfg.MODEL.KPEXT.ROI_ALIGN == "auto"
        if model is None:  # one full-size model, built on the CPU: the swap reads the config
            on_cpu = cfg.clone()
            on_cpu.MODEL.DEVICE = "cpu"
            model = build_model(on_cpu)
        assert configure_roi_align(model, cfg) == 0
