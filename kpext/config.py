"""Every config key kpext adds to Detectron2's, with its default."""

from detectron2.config import CfgNode as CN

# Keys that moved, old -> new: merging an old key (YAML or command line) raises a KeyError
# that names the new one (yacs's renamed-key check, registered on the config by add_kpext_config).
RENAMED_KEYS = {
    "MODEL.KPEXT.UP_SCALE": "MODEL.KPEXT.KRCNN.UP_SCALE",
    "MODEL.KPEXT.DECONV_KERNEL": "MODEL.KPEXT.KRCNN.DECONV_KERNEL",
    "MODEL.KPEXT.SOFT_ARGMAX_BETA": "MODEL.KPEXT.TARGET.SOFT_ARGMAX_BETA",
    "MODEL.KPEXT.TARGET.LOSS_WEIGHT": "MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT",
}

# TEST.KPEXT keys that change what a model computes at inference (and so the graph an export
# traces), each with the values that select a different graph; the export parity tests cover
# every combination. The other TEST.KPEXT keys only change pictures (DRAWING_TEST_OPTIONS).
# A new TEST.KPEXT key must go into one of the two (tests/export/test_parity.py checks).
GRAPH_TEST_OPTIONS = {
    "FLIP": (False, True),
    "LEFT_RIGHT": ("keypoint", "person"),
}
DRAWING_TEST_OPTIONS = (
    "NUM_VIS",
    "VIS_SCORE_THRESHOLD",
    "VIS_MAX_DETECTIONS",
    "VIS_KEYPOINT_THRESHOLD",
    "VIS_MIN_SIZE",
)


def add_kpext_config(cfg: CN) -> None:
    """Add kpext's keys to a Detectron2 config (call before ``merge_from_file``).

    Detectron2's keys kpext heads read too: every kpext head takes its heatmap loss weight
    from ``MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT`` and its normaliser from
    ``MODEL.ROI_KEYPOINT_HEAD.NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS`` (True: divide by the
    keypoints with a target; False: by K x ROI_HEADS.BATCH_SIZE_PER_IMAGE x POSITIVE_FRACTION
    per image), its number of keypoints from ``NUM_KEYPOINTS``; only the KRCNN network
    (KpextKRCNNHead, KRCNNCodecKeypointHead) reads ``MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS``.
    ``SOLVER.AMP.ENABLED`` on the CPU (KpextTrainer): bf16 autocast where the CPU has native
    bf16 (amx_bf16 or avx512_bf16), else float32 after a warning (:mod:`kpext.engine.amp`); on
    CUDA, Detectron2's fp16 AMPTrainer.
    """
    _add_model_keys(cfg)
    _add_krcnn_keys(cfg)
    _add_facing_keys(cfg)
    _add_target_keys(cfg)
    _add_gaussian_keys(cfg)
    _add_hourglass_keys(cfg)
    _add_simcc_keys(cfg)
    _add_dataset_keys(cfg)
    _add_test_keys(cfg)
    _register_renamed_keys(cfg)


def _add_model_keys(cfg: CN) -> None:
    """``MODEL.KPEXT``: what every kpext head or trainer reads."""
    cfg.MODEL.KPEXT = CN()
    # Weight of the OKS loss, 1 - OKS of soft-argmax keypoints (dataset sigmas, box area as
    # scale), for every kpext head; 0 = off. KpextKRCNNHead's soft-argmax runs on its logits
    # (beta 1), the codec heads' with MODEL.KPEXT.TARGET.SOFT_ARGMAX_BETA.
    cfg.MODEL.KPEXT.OKS_LOSS_WEIGHT = 0.0
    # One-hot decoding, in every kpext head that decodes one-hot heatmaps (KpextKRCNNHead;
    # codec heads with TARGET.CODEC "onehot"): the bicubic maximum is searched at box
    # resolution within this many heatmap cells (plus half an output pixel) of the
    # heatmap's argmax cell.
    cfg.MODEL.KPEXT.DECODE_WINDOW = 1.0
    # RoIAlign kernel of the ROIPoolers that KpextTrainer builds: "auto" = kpext's sparse-matrix
    # kernel (kpext.modeling.roi_align) when MODEL.DEVICE is cpu, torchvision's on CUDA;
    # "torchvision" = always torchvision's.
    cfg.MODEL.KPEXT.ROI_ALIGN = "auto"


def _add_krcnn_keys(cfg: CN) -> None:
    """``MODEL.KPEXT.KRCNN``: the Mask R-CNN keypoint network."""
    # The network of KpextKRCNNHead (Detectron2's one-hot targets and loss, not TARGET's) and of
    # KRCNNCodecKeypointHead (the same network, TARGET's codec).
    cfg.MODEL.KPEXT.KRCNN = CN()
    # Bilinear upsampling factor after the stride-2 transposed conv (2: 14x14 RoIs -> 56x56 maps).
    cfg.MODEL.KPEXT.KRCNN.UP_SCALE = 2
    # Kernel size of the stride-2 transposed conv that outputs the K heatmaps (even).
    cfg.MODEL.KPEXT.KRCNN.DECONV_KERNEL = 4
    # A global-context block before the transposed conv: every position gets a learnt function
    # of the RoI's mean feature (kpext.modeling.heads.krcnn.GlobalContext; starts as without).
    # On the head benchmark at 1600 iterations: +0.3 [-1.2, +1.5] AP (docs/benchmarks.md).
    cfg.MODEL.KPEXT.KRCNN.GLOBAL_CONTEXT = False


def _add_facing_keys(cfg: CN) -> None:
    """``MODEL.KPEXT.FACING``: the facing branch and its prior."""
    # The facing branch of kpext's heads: which way each person faces (front, back, profile right
    # or left), learnt from annotations with a "yaw" (the synthetic sets'; kpext.data.facing).
    cfg.MODEL.KPEXT.FACING = CN()
    # Weight of its cross-entropy; 0 = no facing branch.
    cfg.MODEL.KPEXT.FACING.LOSS_WEIGHT = 0.0
    # With TEST.KPEXT.LEFT_RIGHT "person": cost, in heatmap units, of the orientation a view
    # contradicts, times that view's probability (front: left points on the image's right).
    # 1.0: on the demo recipe's models at 1400 and 2800 iterations (docs/demo_recipe.md,
    # 2026-12-06) val keypoint AP 18.7 / 27.7 against 17.5 / 25.9 at 8.0; 0 or 2.0 within 0.4.
    cfg.MODEL.KPEXT.FACING.DECODE_WEIGHT = 1.0


def _add_target_keys(cfg: CN) -> None:
    """``MODEL.KPEXT.TARGET``: the codec heads' codec."""
    # Codec of the codec heads (GaussianKeypointHead, HourglassKeypointHead,
    # KRCNNCodecKeypointHead, SimCCKeypointHead): targets, loss, output activation, decoding,
    # predictor start.
    cfg.MODEL.KPEXT.TARGET = CN()
    # Target codec: "gaussian" (2D Gaussian heatmaps, MSE or focal), "softmax_gaussian" (Gaussian
    # target distributions under a spatial softmax), "onehot" (cell index, spatial
    # cross-entropy) or any codec registered with kpext.modeling.codecs.register_codec.
    cfg.MODEL.KPEXT.TARGET.CODEC = "gaussian"
    # Gaussian codec: sigma of the target Gaussians, in heatmap cells.
    cfg.MODEL.KPEXT.TARGET.SIGMA = 1.5
    # Gaussian codec: sub-pixel decoding, "dark" (Newton step on the log heatmap), "quarter"
    # or "none". softmax_gaussian refuses another value (it decodes by a Newton step on its
    # logits); onehot ignores it.
    cfg.MODEL.KPEXT.TARGET.REFINE = "dark"
    # Gaussian codec, "dark": peaks within this many cells of the border are refined on the raw
    # map instead of the blurred one (the zero-padded blur pulls them inwards); -1: wherever the
    # blur kernel reaches past the border. softmax_gaussian refuses another value.
    cfg.MODEL.KPEXT.TARGET.DARK_BORDER = 3
    # The codec's loss; "" = its default. Gaussian: "mse" (visibility-weighted, the default) or
    # "focal" (CenterNet's, on sigmoid outputs); one-hot: "cross_entropy" (spatial softmax) only;
    # softmax_gaussian: "softmax_ce" (cross-entropy against the target distribution) only.
    cfg.MODEL.KPEXT.TARGET.LOSS = ""
    # Inverse temperature of the OKS loss's soft-argmax on the raw heatmaps:
    # softmax(beta * heatmap).
    cfg.MODEL.KPEXT.TARGET.SOFT_ARGMAX_BETA = 20.0


def _add_gaussian_keys(cfg: CN) -> None:
    """``MODEL.KPEXT.GAUSSIAN``: GaussianKeypointHead's network."""
    # GaussianKeypointHead's network.
    cfg.MODEL.KPEXT.GAUSSIAN = CN()
    # Output channels of the 3x3 convs on the pooled RoI features.
    cfg.MODEL.KPEXT.GAUSSIAN.CONV_DIMS = (96, 96, 96, 96)
    # Norm after each conv ("", "BN", "GN", "SyncBN").
    cfg.MODEL.KPEXT.GAUSSIAN.NORM = ""
    # Number of stride-2 transposed convs after the convs (1: 14x14 RoIs -> 28x28 heatmaps).
    cfg.MODEL.KPEXT.GAUSSIAN.NUM_UPSAMPLE = 1
    # Bilinear upsampling factor of the predicted maps (1: none; 2: 28x28 -> 56x56, as Mask R-CNN).
    cfg.MODEL.KPEXT.GAUSSIAN.UP_SCALE = 1


def _add_hourglass_keys(cfg: CN) -> None:
    """``MODEL.KPEXT.HOURGLASS``: HourglassKeypointHead's network."""
    # HourglassKeypointHead's network.
    cfg.MODEL.KPEXT.HOURGLASS = CN()
    # Number of stacked hourglass modules.
    cfg.MODEL.KPEXT.HOURGLASS.NUM_STACKS = 2
    # Number of 2x poolings inside each hourglass.
    cfg.MODEL.KPEXT.HOURGLASS.DEPTH = 2
    # Channels of the hourglass features.
    cfg.MODEL.KPEXT.HOURGLASS.CHANNELS = 128
    # Norm inside residual blocks ("", "BN", "GN", "SyncBN"); GN: 32 groups, or the largest divisor
    # of the channels below that. Faces (projects/FaceLandmarks) need GN: BN there broke the
    # detector.
    cfg.MODEL.KPEXT.HOURGLASS.NORM = "BN"
    # Stride-2 transposed convs before the first hourglass (1: 14x14 RoIs -> 28x28 heatmaps).
    cfg.MODEL.KPEXT.HOURGLASS.NUM_UPSAMPLE = 1
    # Loss weight of each stack's prediction (intermediate supervision); one per stack.
    cfg.MODEL.KPEXT.HOURGLASS.STACK_LOSS_WEIGHTS = (1.0, 1.0)


def _add_simcc_keys(cfg: CN) -> None:
    """``MODEL.KPEXT.SIMCC``: SimCCKeypointHead's network."""
    # SimCCKeypointHead's network (1-D x and y classification, RTMPose's head, in the RoI head).
    cfg.MODEL.KPEXT.SIMCC = CN()
    # Output channels of the 3x3 convs on the pooled RoI features.
    cfg.MODEL.KPEXT.SIMCC.CONV_DIMS = (128, 128, 128, 128)
    # Norm after each conv ("", "BN", "GN", "SyncBN").
    cfg.MODEL.KPEXT.SIMCC.NORM = ""
    # Width of the hidden layer every keypoint's flattened map goes through.
    cfg.MODEL.KPEXT.SIMCC.HIDDEN_DIM = 256
    # Bins per axis: the separable logits are MAP_SIZE x MAP_SIZE (56: Mask R-CNN's map).
    cfg.MODEL.KPEXT.SIMCC.MAP_SIZE = 56


def _add_dataset_keys(cfg: CN) -> None:
    """``DATASETS.KPEXT``: the bad-input policy."""
    cfg.DATASETS.KPEXT = CN()
    # Invalid records (bad keypoints, boxes, missing or unreadable training images): "error" stops
    # naming file and record; "skip" drops them with a warning that counts them.
    cfg.DATASETS.KPEXT.ON_INVALID = "error"


def _add_test_keys(cfg: CN) -> None:
    """``TEST.KPEXT``: test-time decoding and pictures of predictions."""
    cfg.TEST.KPEXT = CN()
    # Flip test for kpext heads: average with the heatmaps of mirrored RoI features (dataset flip
    # map).
    cfg.TEST.KPEXT.FLIP = False
    # Left/right decoding in kpext's heads: "keypoint" (each keypoint from its own map, as
    # Detectron2) or "person" (one side assignment per person: pairs that disagree with the
    # person's cheapest orientation are exchanged, a pair on one spot split onto a second mode
    # where the codec allows; kpext.modeling.codecs.left_right). On the head benchmark at 1600
    # iterations (2 seeds, docs/benchmarks.md): stock 29.5 -> 33.2 AP, the hourglass 34.1 -> 34.9.
    cfg.TEST.KPEXT.LEFT_RIGHT = "keypoint"
    # Number of validation images drawn with predictions after evaluation (train_net.py); 0 = none.
    cfg.TEST.KPEXT.NUM_VIS = 0
    # Detections below this score are not drawn in pictures of predictions.
    cfg.TEST.KPEXT.VIS_SCORE_THRESHOLD = 0.5
    # At most this many of the highest-scoring detections are drawn per picture (0: no limit).
    cfg.TEST.KPEXT.VIS_MAX_DETECTIONS = 0
    # Keypoints below this score are not drawn in pictures of predictions.
    cfg.TEST.KPEXT.VIS_KEYPOINT_THRESHOLD = 0.05
    # Pictures are enlarged to at least this many pixels on the short side, so labels stay legible.
    cfg.TEST.KPEXT.VIS_MIN_SIZE = 512


def _register_renamed_keys(cfg: CN) -> None:
    """Moved keys (:data:`RENAMED_KEYS`) raise naming their new place."""
    for old, new in RENAMED_KEYS.items():
        if not cfg.key_is_renamed(old):
            cfg.register_renamed_key(old, new)
