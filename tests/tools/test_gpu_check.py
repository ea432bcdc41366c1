"""tools/gpu_check.sh: the wheelhouse install, the report, and the whole path at toy size on
the CPU.

CI has no GPU, so ``--cpu-smoke`` is what keeps the GPU check runnable: the same script,
install step, ``train_net.py`` launch (the first run over GLOO in two processes) and
report format as on the GPU machine.
"""

import json
import os
import subprocess
import sys
import zipfile

import gpu_check_install
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


def test_cpu_smoke_run_writes_the_report(tmp_path):
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "OUT": str(out),
        "GPU_WHEELHOUSE": _wheelhouse_for_smoke(tmp_path),
    }
    done = subprocess.run(["bash", os.path.join(REPO, "tools", "gpu_check.sh"),
                           "--cpu-smoke", "--heads", "stock,gaussian"],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    assert report["profile"] == "cpu-smoke" and report["install"]["used"]
    assert report["environment"]["torch"] and report["environment"]["device"] == "cpu"
    assert [s["step"] for s in report["steps"]] == [
        "install",
        "data",
        "train stock_fp32",
        "train gaussian_fp32",
        "infer",
    ]
    rows = {(r["head"], r["precision"]): r for r in report["rows"]}
    assert sorted(rows) == [
        ("gaussian", "amp"),
        ("gaussian", "fp32"),
        ("stock", "amp"),
        ("stock", "fp32"),
    ]
    for head in ("stock", "gaussian"):
        row = rows[head, "fp32"]
        assert row["status"] == "ok", row
        for name in ("train_s_per_iter", "infer_img_s_b1", "infer_img_s_b8"):
            assert row[name] > 0
            expected = round(row[name] / rows["stock", "fp32"][name], 3)
            assert row[f"{name}_vs_stock"] == expected
        assert row["detections_per_image"] == 20.0  # score threshold 0: equal work for every head
        assert row["kp_ap"] is not None and row["box_ap"] is not None
        assert (
            rows[head, "amp"]["status"] == "skipped"
            and rows[head, "amp"]["error"] == "AMP needs CUDA"
        )
    assert rows["stock", "fp32"]["processes"] == 2  # the GLOO path of kpext.engine.launch
    assert rows["gaussian", "fp32"]["processes"] == 1
    md = (out / "report.md").read_text()
    assert "| head | precision | procs | train s/iter | x stock |" in md
    assert "| stock (KRCNNConvDeconvUpsampleHead) | fp32 | 2 |" in md
    assert "| gaussian (GaussianKeypointHead) | amp | 1 |" in md and "skipped: AMP needs CUDA" in md
    assert (out / "runs" / "stock_fp32.log.txt").exists()


def test_gpu_plan_configs_merge(tmp_path):
    """Every run of the GPU profile merges into a valid config: full-size R50-FPN on CUDA,
    the head the row names, AMP on its AMP rows, 8 loader workers."""
    from kpext.config import add_kpext_config

    from detectron2.config import get_cfg

    runs = gpu_check_runs.plan_runs(
        gpu_check_runs.gpu_profile(), str(tmp_path), [h[0] for h in gpu_check_runs.HEADS]
    )
    assert [r.name for r in runs] == [
        f"{h[0]}_{p}" for h in gpu_check_runs.HEADS for p in ("fp32", "amp")
    ]
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
