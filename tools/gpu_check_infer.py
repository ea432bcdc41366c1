#!/usr/bin/env python
"""Inference speed of the GPU check's trained models, all in one process (tools/gpu_check.py).

    python tools/gpu_check_infer.py SPEC.json RESULT.json

SPEC (written by gpu_check.py): ``device``, ``infer_images`` (validation images used),
``rounds`` (passes over them), ``batch_sizes``, and ``runs``: name, config_file,
overrides, precision ("fp32" or "amp"), weights and ``graph_variants`` of each trained model.
A run with ``graph_variants`` is also timed, on the same weights, with every other
combination of the test-time options that change the graph
(:data:`kpext.config.GRAPH_TEST_OPTIONS`: FLIP, LEFT_RIGHT), each under the name
``<run>+<option>=<value>+...``.

Every model sees the same preprocessed validation images (the test mapper's output, kept
in memory: the data path is not timed, the copy to the device is, as in deployment).
Models are alternated batch by batch so that a change in machine load touches all alike;
each runs one warm-up batch first per batch size. The score threshold is 0, so every model
decodes ``TEST.DETECTIONS_PER_IMAGE`` detections per image whatever its training left it
with, and heads are compared on equal work. AMP models run under autocast as they trained:
fp16 on CUDA, bf16 on a CPU with native bf16 (elsewhere float32, as KpextTrainer trains).

RESULT: ``environment`` (GPU, versions), ``timings`` (name -> infer_img_s_b1,
infer_img_s_b8, detections_per_image, test_options, source (a variant's trained run), or
error) and ``notes``.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import platform
import sys
import time
import traceback
from typing import Dict, List, Optional, Tuple

import torch

import kpext  # noqa: F401  (registers the heads and the synthetic datasets; bridges old detectron2)
from kpext.config import GRAPH_TEST_OPTIONS, add_kpext_config
from kpext.engine.amp import native_bf16_flags
from kpext.modeling.heads import KeypointHeadBase

import detectron2
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, DatasetMapper
from detectron2.modeling import build_model


def environment(device: str) -> Dict[str, object]:
    """Versions and hardware, for the report's header."""
    import torchvision

    facts: Dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "torch_path": os.path.dirname(torch.__file__),
        "torchvision": torchvision.__version__,
        "detectron2": detectron2.__version__,
        "detectron2_path": os.path.dirname(detectron2.__file__),
        "kpext_path": os.path.dirname(kpext.__file__),
        "cpu_count": os.cpu_count(),
        "device": device,
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        facts.update(
            device_name=torch.cuda.get_device_name(0),
            device_memory_gb=round(props.total_memory / 2**30, 1),
            nccl=".".join(str(v) for v in torch.cuda.nccl.version())
            if hasattr(torch.cuda, "nccl")
            else None,
            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
            matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
        )
    else:
        facts["device_name"] = (
            f"CPU ({platform.machine()}, {torch.get_num_threads()} torch threads)"
        )
    return facts


def load_model(run: Dict[str, object]):
    """(cfg, eval-mode model with the run's final weights); score threshold 0 (see module doc)."""
    cfg = get_cfg()
    add_kpext_config(cfg)
    cfg.merge_from_file(run["config_file"])
    cfg.merge_from_list(list(run["overrides"]) + ["MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0"])
    cfg.freeze()
    model = build_model(cfg)
    DetectionCheckpointer(model).load(run["weights"])
    model.eval()
    return cfg, model


def test_options(cfg, model) -> Optional[Dict[str, str]]:
    """The graph's test-time options a kpext head decodes with (None: the stock head, which
    reads none of them)."""
    if not isinstance(model.roi_heads.keypoint_head, KeypointHeadBase):
        return None
    return {key: str(cfg.TEST.KPEXT.get(key)) for key in GRAPH_TEST_OPTIONS}


def graph_variants(run: Dict[str, object], cfg) -> List[Tuple[str, Dict[str, object]]]:
    """(name, run) of every combination of GRAPH_TEST_OPTIONS but the config's own, on the
    run's weights."""
    own = tuple(cfg.TEST.KPEXT.get(key) for key in GRAPH_TEST_OPTIONS)
    variants = []
    for values in itertools.product(*GRAPH_TEST_OPTIONS.values()):
        if values == own:
            continue
        pairs = list(zip(GRAPH_TEST_OPTIONS, values))
        name = run["name"] + "".join(f"+{key.lower()}={value}" for key, value in pairs)
        options = [item for key, value in pairs for item in (f"TEST.KPEXT.{key}", str(value))]
        variants.append(
            (name, {**run, "name": name, "overrides": list(run["overrides"]) + options})
        )
    return variants


def autocast_for(device: str, amp: bool, notes: List[str]):
    """The context AMP rows run in: fp16 autocast on CUDA (Detectron2's AMPTrainer trained
    them so), bf16 on a CPU with native bf16 (kpext's CPUAMPTrainer), else none."""
    if not amp:
        return contextlib.nullcontext
    if device == "cuda":
        return lambda: torch.autocast(device_type="cuda", dtype=torch.float16)
    if native_bf16_flags():
        return lambda: torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    note = "AMP rows run in float32: this CPU has no native bf16 (they trained in float32 too)"
    if note not in notes:
        notes.append(note)
    return contextlib.nullcontext


def test_inputs(cfg, count: int) -> List[Dict[str, object]]:
    """The first ``count`` validation images as the test mapper makes them (resized, CHW)."""
    dicts = DatasetCatalog.get(cfg.DATASETS.TEST[0])[:count]
    mapper = DatasetMapper(cfg, is_train=False)
    return [mapper(copy.deepcopy(d)) for d in dicts]


def cyclic_batches(
    inputs: List[Dict[str, object]], batch_size: int, count: int
) -> List[List[Dict[str, object]]]:
    """``count`` batches of ``batch_size`` inputs, cycling through ``inputs``."""
    flat = [inputs[i % len(inputs)] for i in range(batch_size * count)]
    return [flat[i : i + batch_size] for i in range(0, len(flat), batch_size)]


def load_models(spec, timings, notes):
    """name -> (eval model, autocast context) of every run and graph variant, their test
    options and sources in ``timings``; and the shared test inputs. A model that does not
    load gets its error instead."""
    models, inputs = {}, None
    for trained in spec["runs"]:
        todo = [(trained["name"], trained)]
        for index, (name, run) in enumerate(todo):
            try:
                cfg, model = load_model(run)
                if inputs is None:
                    inputs = test_inputs(cfg, spec["infer_images"])
                autocast = autocast_for(spec["device"], run["precision"] == "amp", notes)
                models[name] = (model, autocast)
                timings[name] = {"test_options": test_options(cfg, model)}
                if index:
                    timings[name]["source"] = trained["name"]
                elif trained.get("graph_variants"):
                    todo += graph_variants(trained, cfg)
            except Exception as e:
                traceback.print_exc()
                timings[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
                if index:
                    timings[name]["source"] = trained["name"]
    return models, inputs


def main(spec_path: str, result_path: str) -> int:
    with open(spec_path) as f:
        spec = json.load(f)
    device = spec["device"]
    result: Dict[str, object] = {"environment": environment(device), "timings": {}, "notes": []}
    timings: Dict[str, Dict[str, object]] = result["timings"]
    if device == "cuda" and result["environment"].get("cudnn_allow_tf32"):
        result["notes"].append(
            "fp32 rows use TF32 convolutions (torch's default torch.backends.cudnn.allow_tf32=True)"
        )

    def write():
        with open(result_path, "w") as f:
            json.dump(result, f, indent=2)

    write()
    models, inputs = load_models(spec, timings, result["notes"])

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def forward(name: str, batch) -> int:
        model, autocast = models[name]
        with torch.no_grad(), autocast():
            outputs = model(batch)
        return sum(len(o["instances"]) for o in outputs)

    for batch_size in spec["batch_sizes"]:
        count = max(1, spec["infer_images"] // batch_size) * spec["rounds"]
        batches = cyclic_batches(inputs or [], batch_size, count) if inputs else []
        seconds = {name: 0.0 for name in models}
        detections = {name: 0 for name in models}
        for index, batch in enumerate([batches[0]] + batches if batches else []):
            for name in list(models):
                try:
                    sync()
                    start = time.perf_counter()
                    found = forward(name, batch)
                    sync()
                    if index:  # batch 0 warms up
                        seconds[name] += time.perf_counter() - start
                        detections[name] += found
                except Exception as e:
                    traceback.print_exc()
                    error = f"batch {batch_size}: {type(e).__name__}: {e}"[:300]
                    timings.setdefault(name, {})["error"] = error
                    del models[name]
        for name in models:
            entry = timings.setdefault(name, {})
            images = batch_size * len(batches)
            entry[f"infer_img_s_b{batch_size}"] = (
                round(images / seconds[name], 3) if seconds[name] else None
            )
            if batch_size == 1:
                entry["detections_per_image"] = round(detections[name] / images, 2)
        print(
            f"batch {batch_size}: "
            + ", ".join(
                f"{n} {timings[n].get(f'infer_img_s_b{batch_size}')} img/s" for n in models
            ),
            flush=True,
        )
        write()
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
