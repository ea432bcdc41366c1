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

    cfg.TEST.KPEXT = CN()
    # Number of validation images drawn with predictions after evaluation (train_net.py); 0 = none.
    cfg.TEST.KPEXT.NUM_VIS = 0
    # Detections below this score are not drawn in pictures of predictions.
    cfg.TEST.KPEXT.VIS_SCORE_THRESHOLD = 0.5
    # Keypoints below this score are not drawn in pictures of predictions.
    cfg.TEST.KPEXT.VIS_KEYPOINT_THRESHOLD = 0.05
    # Pictures are enlarged to at least this many pixels on the short side, so labels stay legible.
    cfg.TEST.KPEXT.VIS_MIN_SIZE = 512
