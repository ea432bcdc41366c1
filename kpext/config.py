"""Every config key kpext adds to Detectron2's, with its default."""
from detectron2.config import CfgNode as CN


def add_kpext_config(cfg: CN) -> None:
    """Add kpext's keys to a Detectron2 config (call before ``merge_from_file``)."""
    cfg.MODEL.KPEXT = CN()
    # Bilinear upsampling factor after the stride-2 transposed conv (KpextKRCNNHead).
    cfg.MODEL.KPEXT.UP_SCALE = 2
    # Kernel size of the stride-2 transposed conv that outputs the K heatmaps.
    cfg.MODEL.KPEXT.DECONV_KERNEL = 4
    # One-hot decoding: half-size (heatmap cells) of the window searched at box resolution.
    cfg.MODEL.KPEXT.DECODE_WINDOW = 1.0
    # Weight of the OKS loss (1 - OKS of soft-argmax keypoints, dataset sigmas) for kpext heads; 0 = off.
    cfg.MODEL.KPEXT.OKS_LOSS_WEIGHT = 0.0
    # Soft-argmax temperature for the OKS loss on Gaussian heatmaps: softmax(beta * heatmap).
    cfg.MODEL.KPEXT.SOFT_ARGMAX_BETA = 20.0

    # Targets and loss of heatmap heads (GaussianKeypointHead, HourglassKeypointHead).
    cfg.MODEL.KPEXT.TARGET = CN()
    # Target codec: "gaussian" (2D Gaussian heatmaps) or "onehot" (cell index, spatial cross-entropy).
    cfg.MODEL.KPEXT.TARGET.CODEC = "gaussian"
    # Gaussian sigma in heatmap cells.
    cfg.MODEL.KPEXT.TARGET.SIGMA = 1.5
    # Sub-pixel decoding of Gaussian heatmaps: "dark" (Taylor on the log heatmap), "quarter" or "none".
    cfg.MODEL.KPEXT.TARGET.REFINE = "dark"
    # Gaussian heatmap loss: "mse" (visibility-weighted) or "focal" (CenterNet's, on sigmoid outputs).
    cfg.MODEL.KPEXT.TARGET.LOSS = "mse"
    # Weight of the heatmap loss (each loss is per visible keypoint, summed over cells).
    cfg.MODEL.KPEXT.TARGET.LOSS_WEIGHT = 1.0

    cfg.MODEL.KPEXT.GAUSSIAN = CN()
    # Output channels of the 3x3 convs on the pooled RoI features.
    cfg.MODEL.KPEXT.GAUSSIAN.CONV_DIMS = (96, 96, 96, 96)
    # Norm after each conv ("", "BN", "GN", "SyncBN").
    cfg.MODEL.KPEXT.GAUSSIAN.NORM = ""
    # Number of stride-2 transposed convs after the convs (1: 14x14 RoIs -> 28x28 heatmaps).
    cfg.MODEL.KPEXT.GAUSSIAN.NUM_UPSAMPLE = 1

    cfg.MODEL.KPEXT.HOURGLASS = CN()
    # Number of stacked hourglass modules.
    cfg.MODEL.KPEXT.HOURGLASS.NUM_STACKS = 2
    # Number of 2x poolings inside each hourglass.
    cfg.MODEL.KPEXT.HOURGLASS.DEPTH = 2
    # Channels of the hourglass features.
    cfg.MODEL.KPEXT.HOURGLASS.CHANNELS = 128
    # Norm inside residual blocks ("", "BN", "GN", "SyncBN"); GN: 32 groups, or the largest divisor
    # of the channels below that. Faces (projects/FaceLandmarks) need GN: BN there broke the detector.
    cfg.MODEL.KPEXT.HOURGLASS.NORM = "BN"
    # Stride-2 transposed convs before the first hourglass (1: 14x14 RoIs -> 28x28 heatmaps).
    cfg.MODEL.KPEXT.HOURGLASS.NUM_UPSAMPLE = 1
    # Loss weight of each stack's prediction (intermediate supervision); one per stack.
    cfg.MODEL.KPEXT.HOURGLASS.STACK_LOSS_WEIGHTS = (1.0, 1.0)

    cfg.DATASETS.KPEXT = CN()
    # Invalid records (bad keypoints, boxes, missing or unreadable training images): "error" stops
    # naming file and record; "skip" drops them with a warning that counts them.
    cfg.DATASETS.KPEXT.ON_INVALID = "error"

    cfg.TEST.KPEXT = CN()
    # Flip test for kpext heads: average with the heatmaps of mirrored RoI features (dataset flip map).
    cfg.TEST.KPEXT.FLIP = False
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
