"""export_model.py writes an ONNX file of a trained checkpoint; demo.py --onnx runs it on an
image folder and a video (the issue's "done when", on the tiny model)."""

import json
import os

import cv2
import torch
from export_helpers import parity_images, tiny_cfg
from script_loading import load_script


def _script(name):
    """A project script as a module (in-process: three interpreter starts cost a minute)."""
    return load_script(f"_kpext_{name}", "projects", "PoseEstimation", f"{name}.py")


def test_export_model_then_demo_onnx_on_images_and_video(trained_detector, tmp_path, capsys):
    state, root, thresh = trained_detector
    cfg = tiny_cfg(score_thresh=thresh)
    cfg.DATASETS.TRAIN, cfg.DATASETS.TEST = (), ()
    config = tmp_path / "config.yaml"
    config.write_text(cfg.dump())
    weights = tmp_path / "model_final.pth"
    torch.save({"model": state}, weights)
    images = tmp_path / "images"
    images.mkdir()
    frames = parity_images(root)[:3]
    for i, image in enumerate(frames):
        cv2.imwrite(str(images / f"{i}.png"), image)
    onnx_path = tmp_path / "model.onnx"

    _script("export_model").main(
        ["--config-file", str(config), "--format", "onnx", "--output", str(onnx_path),
         "--image", str(images / "0.png"), "MODEL.WEIGHTS", str(weights)]
    )  # fmt: skip
    assert onnx_path.is_file() and "Wrote" in capsys.readouterr().out

    demo = _script("demo").main
    args = ["--config-file", str(config), "--onnx", str(onnx_path)]
    args += ["--confidence-threshold", str(thresh)]
    demo([*args, "--input", str(images), "--output", str(tmp_path / "drawn")])
    assert sorted(os.listdir(tmp_path / "drawn")) == ["0.png", "1.png", "2.png"]

    video = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (128, 128))
    for image in frames[:1] * 2 + frames[2:3] * 2:
        writer.write(image)
    writer.release()
    demo([*args, "--video-input", str(video), "--output", str(tmp_path / "video")])
    lines = (tmp_path / "video" / "walk.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert len(json.loads(lines[0])["persons"]) > 0
