"""Export of kpext Keypoint R-CNN models to ONNX and TorchScript, by tracing.

Both formats hold the same graph, :class:`KeypointRCNNExport`:

* inputs: ``image``, float32 ``3 x H x W``: the image resized as ``cfg.INPUT`` says
  (``ResizeShortestEdge(MIN_SIZE_TEST, MAX_SIZE_TEST)``), channels in ``cfg.INPUT.FORMAT``
  order (BGR for kpext's configs), values 0-255 (the graph normalises with
  ``MODEL.PIXEL_MEAN`` / ``PIXEL_STD`` and pads to the backbone's stride), and
  ``output_size``, int64 ``[2]``: (height, width) of the original image;
* outputs, N detections sorted by score (after ``MODEL.ROI_HEADS.SCORE_THRESH_TEST`` as
  exported, NMS and ``TEST.DETECTIONS_PER_IMAGE``), all in original image pixels
  (Detectron2's continuous coordinates, :mod:`kpext.geometry`): ``boxes`` N x 4 (x0, y0,
  x1, y1), ``scores`` N, ``classes`` N (int64), ``keypoints`` N x K x 3 (x, y, score).

:class:`OnnxPredictor` and :class:`TorchScriptPredictor` do the pre- and post-processing:
BGR image in, ``{"instances": Instances}`` out, as Detectron2's ``DefaultPredictor``.

N varies per image: kpext's heads split their predictions by traced sizes
(:func:`~kpext.modeling.heads.base.instance_count`) and decode without Python loops.
Detectron2's stock head decodes in a Python loop over RoIs, which a trace unrolls for
the example's box count; for export its logits are decoded by kpext's one-hot codec
instead (:class:`VectorisedStockHead`, Detectron2's decoding vectorised).

Why tracing (``torch.onnx.export(dynamo=False)``, ``torch.jit.trace``) and not
``torch.export``: Detectron2 v0.6's R-CNN branches in Python on data-dependent values
(proposal and detection counts); the tracer records those as dynamic sizes, which
``torch.export`` rejects. PyTorch marks the tracer deprecated (``torch.jit.trace``,
``torch.jit.load``, the TorchScript-based ONNX exporter): :func:`quiet_tracer` filters
exactly those warnings, and the tracer's own ``TracerWarning`` about Python values.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from detectron2.config import CfgNode
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.modeling.roi_heads.keypoint_head import BaseKeypointRCNNHead
from detectron2.structures import Boxes, Instances

from .config import GRAPH_TEST_OPTIONS
from .io import atomic_path
from .modeling.codecs import OneHotCodec
from .modeling.decoding import decode_traceable
from .modeling.heads.base import KeypointHeadBase, attach_predictions
from .preprocessing import model_input

EXPORT_FORMATS = ("onnx", "torchscript")
ONNX_OPSET = 17
INPUT_NAMES = ("image", "output_size")
OUTPUT_NAMES = ("boxes", "scores", "classes", "keypoints")
# Facts an exported file records (ONNX metadata_props; a TorchScript file's extra files).
METADATA_PREFIX = "kpext."


class ExportError(ValueError):
    """A config the export cannot honour, or an exported file that cannot be used: one line."""


# ---------------------------------------------------------------------------
# The exported graph
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def quiet_tracer():
    """Filter the tracer's expected warnings (see the module docstring): the deprecation of
    ``torch.jit.trace`` / ``torch.jit.load`` / the TorchScript ONNX exporter, and
    ``TracerWarning`` (Python values recorded as constants, each checked by the parity tests)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.\w+.* is deprecated")
        warnings.filterwarnings("ignore", message=r".*dynamo=False.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*TorchScript.*", category=DeprecationWarning)
        # The TorchScript-based ONNX exporter's FutureWarning, and its note that advanced
        # indexing becomes several ONNX ops (it does; the parity tests check the result).
        warnings.filterwarnings("ignore", message="The feature will be removed")
        warnings.filterwarnings("ignore", message=r"Exporting aten::index operator")
        # A strided slice stays an ONNX Slice node instead of being folded: slower by nothing.
        warnings.filterwarnings("ignore", message=r"Constant folding - Only steps=1")
        yield


class VectorisedStockHead(nn.Module):
    """Detectron2's ``KRCNNConvDeconvUpsampleHead`` as exported. Its own inference decodes in a
    Python loop over RoIs, which a trace unrolls for the example's count: here its logits are
    decoded by :class:`~kpext.modeling.codecs.OneHotCodec` (Detectron2's bicubic argmax and
    score, vectorised; see the codec for the rare cases where the two differ)."""

    def __init__(self, head: BaseKeypointRCNNHead, decode_window: float = 1.0):
        super().__init__()
        self.head = head
        self.codec = OneHotCodec(decode_window)

    def forward(self, x: torch.Tensor, instances: List[Instances]) -> List[Instances]:
        logits = self.head.layers(x)
        boxes = torch.cat([i.pred_boxes.tensor for i in instances])
        attach_predictions(instances, decode_traceable(self.codec.decode, logits, boxes), logits)
        return instances


class KeypointRCNNExport(nn.Module):
    """(image 3 x H x W, output_size [2]) -> boxes N x 4, scores N, classes N, keypoints N x K x 3
    in original image pixels: ``model.inference`` then Detectron2's ``detector_postprocess``,
    as ``DefaultPredictor`` runs them. See the module docstring for the layouts."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, output_size: torch.Tensor):
        instances = self.model.inference([{"image": image}], do_postprocess=False)[0]
        result = detector_postprocess(instances, output_size[0], output_size[1])
        return (
            result.pred_boxes.tensor,
            result.scores,
            result.pred_classes,
            result.pred_keypoints,
        )


def check_exportable(cfg: CfgNode) -> None:
    """Raise :class:`ExportError`, naming the option, for what the exported graph cannot hold."""
    if cfg.MODEL.META_ARCHITECTURE != "GeneralizedRCNN":
        raise ExportError(
            f"MODEL.META_ARCHITECTURE={cfg.MODEL.META_ARCHITECTURE}: "
            "only GeneralizedRCNN is exported"
        )
    if not cfg.MODEL.KEYPOINT_ON:
        raise ExportError("MODEL.KEYPOINT_ON is off: the export is for keypoint models")
    if cfg.MODEL.MASK_ON:
        raise ExportError("MODEL.MASK_ON is on: masks are not exported; turn it off")
    if cfg.MODEL.PROPOSAL_GENERATOR.NAME != "RPN":
        raise ExportError(
            f"MODEL.PROPOSAL_GENERATOR.NAME={cfg.MODEL.PROPOSAL_GENERATOR.NAME}: "
            "only RPN is exported"
        )
    if cfg.TEST.AUG.ENABLED:
        raise ExportError(
            "TEST.AUG.ENABLED is on: test-time augmentation runs outside the model "
            "(GeneralizedRCNNWithTTA) and is not exported; turn it off"
        )
    if cfg.INPUT.FORMAT not in ("BGR", "RGB"):
        raise ExportError(f"INPUT.FORMAT={cfg.INPUT.FORMAT}: only BGR and RGB models are exported")


def export_module(model: nn.Module, decode_window: float = 1.0) -> KeypointRCNNExport:
    """The graph to trace: a copy of ``model`` in eval mode on the CPU; kpext's heads as they
    are, Detectron2's stock head wrapped in :class:`VectorisedStockHead`."""
    model = copy.deepcopy(model).cpu().eval()
    head = model.roi_heads.keypoint_head
    if not isinstance(head, (KeypointHeadBase, BaseKeypointRCNNHead)):
        raise ExportError(
            f"MODEL.ROI_KEYPOINT_HEAD.NAME={type(head).__name__}: only kpext's heads and "
            "Detectron2's KRCNNConvDeconvUpsampleHead are exported"
        )
    if not isinstance(head, KeypointHeadBase):
        model.roi_heads.keypoint_head = VectorisedStockHead(head, decode_window)
    return KeypointRCNNExport(model)


def export_metadata(cfg: CfgNode, model: nn.Module) -> Dict[str, str]:
    """What a runtime needs besides the graph: pre-processing, the baked score threshold; and
    what the graph was traced with: the head and the test-time options that change it
    (``test.flip``, ``test.left_right``: :data:`kpext.config.GRAPH_TEST_OPTIONS`)."""
    head = model.roi_heads.keypoint_head
    options = {f"test.{key.lower()}": str(cfg.TEST.KPEXT.get(key)) for key in GRAPH_TEST_OPTIONS}
    return {
        "input_format": cfg.INPUT.FORMAT,
        "min_size_test": str(cfg.INPUT.MIN_SIZE_TEST),
        "max_size_test": str(cfg.INPUT.MAX_SIZE_TEST),
        "score_thresh_test": repr(float(cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST)),
        "num_keypoints": str(cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS),
        "keypoint_head": type(head).__name__,
        **options,
    }


def preprocess(image_bgr: np.ndarray, cfg: CfgNode) -> Tuple[torch.Tensor, torch.Tensor]:
    """A BGR H x W x 3 uint8 image -> the graph's (image 3 x H' x W' float32, contiguous,
    output_size int64 [2]), as ``DefaultPredictor`` prepares it
    (:func:`kpext.preprocessing.model_input`)."""
    inputs = model_input(image_bgr, cfg)
    size = torch.tensor([inputs["height"], inputs["width"]], dtype=torch.int64)
    return inputs["image"].contiguous(), size


def _count_detections(module: KeypointRCNNExport, example: Tuple[torch.Tensor, torch.Tensor]):
    with torch.no_grad():
        return int(module(*example)[0].shape[0])


def _check_example(module: KeypointRCNNExport, example, cfg: CfgNode) -> None:
    # A trace records the branches its example takes: with no detection, the keypoint branch
    # would be recorded as "no keypoints" for every image.
    if _count_detections(module, example) == 0:
        raise ExportError(
            "the example image gives no detection at MODEL.ROI_HEADS.SCORE_THRESH_TEST="
            f"{cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST}; tracing needs at least one: "
            "give an image with people"
        )


def export_onnx(
    model: nn.Module, cfg: CfgNode, example: Tuple[torch.Tensor, torch.Tensor], path: str
) -> str:
    """Write ``model`` as ONNX (opset :data:`ONNX_OPSET`) with dynamic image size and detection
    count; ``example`` = :func:`preprocess` of an image on which the model detects someone.
    Returns ``path``."""
    import onnx

    check_exportable(cfg)
    module = export_module(model, cfg.MODEL.KPEXT.DECODE_WINDOW)
    _check_example(module, example, cfg)
    detections = {0: "detections"}
    graph = io.BytesIO()  # the file is written once, whole, with its metadata (kpext.io)
    with quiet_tracer(), torch.no_grad():
        torch.onnx.export(
            module,
            example,
            graph,
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes={
                "image": {1: "height", 2: "width"},
                **{name: detections for name in OUTPUT_NAMES},
            },
        )
    proto = onnx.load_from_string(graph.getvalue())
    for key, value in export_metadata(cfg, model).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, value
    with atomic_path(path) as tmp:
        onnx.save(proto, tmp)
    return path


def export_torchscript(
    model: nn.Module, cfg: CfgNode, example: Tuple[torch.Tensor, torch.Tensor], path: str
) -> str:
    """Write ``model`` traced to TorchScript (the same graph as :func:`export_onnx`); the
    metadata goes into the archive's extra files. Returns ``path``."""
    check_exportable(cfg)
    module = export_module(model, cfg.MODEL.KPEXT.DECODE_WINDOW)
    _check_example(module, example, cfg)
    with quiet_tracer(), torch.no_grad():
        traced = torch.jit.trace(module, example, check_trace=False)
        extra = {METADATA_PREFIX + k: v.encode() for k, v in export_metadata(cfg, model).items()}
        with atomic_path(path, same_name=True) as tmp:  # the archive is named after its file
            torch.jit.save(traced, tmp, _extra_files=extra)
    return path


def export_model(
    model: nn.Module, cfg: CfgNode, example_bgr: np.ndarray, path: str, fmt: str = "onnx"
) -> str:
    """Export ``model`` (built from ``cfg``, weights loaded) as ``fmt`` ("onnx" or
    "torchscript") to ``path``, traced on the BGR image ``example_bgr``."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {EXPORT_FORMATS}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    example = preprocess(example_bgr, cfg)
    exporter = export_onnx if fmt == "onnx" else export_torchscript
    return exporter(model, cfg, example, path)


# ---------------------------------------------------------------------------
# Runtimes: DefaultPredictor's call on an exported file
# ---------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


class ExportedPredictor:
    """BGR image -> ``{"instances": Instances}`` (``pred_boxes``, ``scores``, ``pred_classes``,
    ``pred_keypoints``) from an exported graph; subclasses load a file and run it.

    ``cfg`` gives the pre-processing (``INPUT``) and the score threshold: detections at or
    below ``MODEL.ROI_HEADS.SCORE_THRESH_TEST`` are dropped. That equals exporting at that
    threshold (NMS and the per-image top-k keep a prefix of the score-sorted detections), so
    one file serves any threshold at or above the one it was exported with.
    """

    def __init__(self, path: str, cfg: CfgNode):
        self.path = path
        self.cfg = cfg.clone()
        self.metadata = self._load(path)
        self._check_cfg()

    def _load(self, path: str) -> Dict[str, str]:
        raise NotImplementedError

    def run(self, image: torch.Tensor, output_size: torch.Tensor) -> Sequence[torch.Tensor]:
        """The graph's outputs (boxes, scores, classes, keypoints) for :func:`preprocess`'s
        inputs."""
        raise NotImplementedError

    def _check_cfg(self) -> None:
        exported = float(self.metadata.get("score_thresh_test", "0"))
        wanted = float(self.cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST)
        if wanted < exported:
            raise ExportError(
                f"{self.path} was exported with MODEL.ROI_HEADS.SCORE_THRESH_TEST={exported:g}; "
                f"it cannot give detections down to {wanted:g}: export again at that threshold"
            )
        k = self.metadata.get("num_keypoints")
        if k is not None and int(k) != self.cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS:
            raise ExportError(
                f"{self.path} predicts {k} keypoints; the config's "
                f"MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS is "
                f"{self.cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS}"
            )

    def __call__(self, original_image: np.ndarray) -> Dict[str, Instances]:
        """Args:
            original_image: H x W x 3 uint8, BGR (OpenCV's order, as ``DefaultPredictor``).
        Returns:
            ``{"instances": Instances}`` of the original image's size.
        """
        image, size = preprocess(original_image, self.cfg)
        boxes, scores, classes, keypoints = self.run(image, size)
        keep = scores > self.cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST
        instances = Instances(tuple(original_image.shape[:2]))
        instances.pred_boxes = Boxes(boxes[keep])
        instances.scores = scores[keep]
        instances.pred_classes = classes[keep]
        instances.pred_keypoints = keypoints[keep]
        return {"instances": instances}


class OnnxPredictor(ExportedPredictor):
    """:class:`ExportedPredictor` on onnxruntime (CPU).

    Args:
        path: an ``.onnx`` file written by :func:`export_onnx`.
        cfg: the model's config (pre-processing, score threshold).
        num_threads: onnxruntime's intra-op threads (None: torch's thread count).
    Raises:
        ExportError: a missing or unreadable file, or a config it cannot honour (one line).
    """

    def __init__(self, path: str, cfg: CfgNode, num_threads: Optional[int] = None):
        self.num_threads = num_threads
        super().__init__(path, cfg)

    def _load(self, path: str) -> Dict[str, str]:
        import onnxruntime as ort

        if not os.path.isfile(path):
            raise ExportError(f"ONNX model not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.num_threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: shape-inference chatter is not for users
        try:
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise ExportError(f"cannot load ONNX model {path}: {_one_line(e)}") from None
        names = [i.name for i in self.session.get_inputs()]
        if names != list(INPUT_NAMES):
            raise ExportError(
                f"{path} is not a kpext export: inputs {names}, expected {list(INPUT_NAMES)}"
            )
        props = self.session.get_modelmeta().custom_metadata_map
        n = len(METADATA_PREFIX)
        return {k[n:]: v for k, v in props.items() if k.startswith(METADATA_PREFIX)}

    def run(self, image: torch.Tensor, output_size: torch.Tensor) -> Sequence[torch.Tensor]:
        outputs = self.session.run(
            list(OUTPUT_NAMES), {"image": image.numpy(), "output_size": output_size.numpy()}
        )
        return [torch.from_numpy(o) for o in outputs]


class TorchScriptPredictor(ExportedPredictor):
    """:class:`ExportedPredictor` on a TorchScript file written by :func:`export_torchscript`."""

    def _load(self, path: str) -> Dict[str, str]:
        if not os.path.isfile(path):
            raise ExportError(f"TorchScript model not found: {path}")
        extra = {METADATA_PREFIX + k: "" for k in export_metadata_keys()}
        try:
            with quiet_tracer():
                self.module = torch.jit.load(path, map_location="cpu", _extra_files=extra)
        except Exception as e:
            raise ExportError(f"cannot load TorchScript model {path}: {_one_line(e)}") from None
        n = len(METADATA_PREFIX)
        return {k[n:]: v.decode() if isinstance(v, bytes) else v for k, v in extra.items() if v}

    def run(self, image: torch.Tensor, output_size: torch.Tensor) -> Sequence[torch.Tensor]:
        with torch.no_grad():
            return self.module(image, output_size)


def export_metadata_keys() -> Tuple[str, ...]:
    """The keys :func:`export_metadata` writes (a TorchScript archive is read by name)."""
    return (
        "input_format",
        "min_size_test",
        "max_size_test",
        "score_thresh_test",
        "num_keypoints",
        "keypoint_head",
        *(f"test.{key.lower()}" for key in GRAPH_TEST_OPTIONS),
    )


def load_predictor(path: str, cfg: CfgNode) -> ExportedPredictor:
    """:class:`OnnxPredictor` for ``*.onnx``, else :class:`TorchScriptPredictor`."""
    if path.endswith(".onnx"):
        return OnnxPredictor(path, cfg)
    return TorchScriptPredictor(path, cfg)
