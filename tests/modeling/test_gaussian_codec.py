"""GaussianCodec: exact sub-pixel targets, DARK decoding against a brute-force reference."""

import math

import numpy as np
import pytest
import torch

from kpext.modeling.codecs import GaussianCodec, GaussianTargets, OneHotCodec, build_codec

# ---------------------------------------------------------------------------
# Brute-force reference: one map at a time, numpy, written from the paper's recipe.
# ---------------------------------------------------------------------------


def blur_zero_padded(m: np.ndarray, sigma: float, size: int) -> np.ndarray:
    """2D Gaussian blur by summing shifted copies of the zero-padded map."""
    taps = np.arange(size) - size // 2
    k1 = np.exp(-(taps.astype(np.float64) ** 2) / (2 * sigma * sigma))
    k2 = np.outer(k1, k1) / k1.sum() ** 2
    h, w = m.shape
    pad = size // 2
    padded = np.zeros((h + 2 * pad, w + 2 * pad))
    padded[pad : pad + h, pad : pad + w] = m
    out = np.zeros((h, w))
    for a in range(size):
        for b in range(size):
            out += k2[a, b] * padded[a : a + h, b : b + w]
    return out


def raw_log_window(m: np.ndarray, i: int, j: int, sigma: float) -> np.ndarray:
    """log of the 3 x 3 raw values around (i, j), each raised to the lowest value that cell
    can hold around the argmax of a ``sigma`` Gaussian (its centre within half a cell)."""
    peak = max(m[i, j], 1e-10)
    window = np.empty((3, 3))
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            far_y, far_x = (1.5 if a else 0.5), (1.5 if b else 0.5)
            d2 = far_x**2 + far_y**2 if (a or b) else 0.0
            window[1 + a, 1 + b] = np.log(max(m[i + a, j + b], peak * np.exp(-d2 / (2 * sigma**2))))
    return window


def refine_one(m: np.ndarray, sigma: float, size: int, border=None):
    """(dx, dy, path) for one map: "dark", or the fallback's reason: "border",
    "saddle" (det <= 0), "minimum" (det > 0, trace >= 0) or "far" (step > 1 cell).
    ``border``: peaks fewer than this many cells from the edge are refined on the raw
    map (None: wherever the blur's support crosses the edge)."""
    h, w = m.shape
    i, j = np.unravel_index(np.argmax(m), m.shape)
    qx = 0.25 * np.sign(m[i, j + 1] - m[i, j - 1]) if 0 < j < w - 1 else 0.0
    qy = 0.25 * np.sign(m[i + 1, j] - m[i - 1, j]) if 0 < i < h - 1 else 0.0
    if not (0 < j < w - 1 and 0 < i < h - 1):
        return qx, qy, "border"
    border = size // 2 + 1 if border is None else border
    blurred = blur_zero_padded(m, sigma, size)
    if min(i, j) < border or i >= h - border or j >= w - border:
        # Near the edge: the raw map's log, unbiased for a Gaussian.
        L = raw_log_window(m, i, j, sigma)
    elif m.max() <= 0 or blurred.max() <= 0:
        L = np.full((3, 3), np.log(1e-10))
    else:
        log_map = np.log(np.maximum(blurred * (m.max() / blurred.max()), 1e-10))
        L = log_map[i - 1 : i + 2, j - 1 : j + 2]  # L[1 + dy, 1 + dx]
    grad = np.array([(L[1, 2] - L[1, 0]) / 2, (L[2, 1] - L[0, 1]) / 2])
    dxy = (L[2, 2] - L[2, 0] - L[0, 2] + L[0, 0]) / 4
    hess = np.array(
        [[L[1, 2] - 2 * L[1, 1] + L[1, 0], dxy], [dxy, L[2, 1] - 2 * L[1, 1] + L[0, 1]]]
    )
    if np.linalg.det(hess) <= 0:
        return qx, qy, "saddle"
    if np.trace(hess) >= 0:
        return qx, qy, "minimum"
    step = -np.linalg.solve(hess, grad)
    if np.abs(step).max() > 1:
        return qx, qy, "far"
    return step[0], step[1], "dark"


def decode_reference(heatmaps, boxes, sigma, kernel_size=None, border=None):
    """Per-RoI, per-keypoint DARK decoding. Returns (R x K x 3 numpy (x, y, score), R x K paths)."""
    hm = np.asarray(heatmaps, dtype=np.float64)
    bx = np.asarray(boxes, dtype=np.float64)
    size = kernel_size or 2 * math.ceil(3 * sigma) + 1
    r_count, k_count, h, w = hm.shape
    out = np.zeros((r_count, k_count, 3))
    paths = np.empty((r_count, k_count), dtype=object)
    for r in range(r_count):
        x0, y0, x1, y1 = bx[r]
        for k in range(k_count):
            m = hm[r, k]
            i, j = np.unravel_index(np.argmax(m), m.shape)
            dx, dy, paths[r, k] = refine_one(m, sigma, size, border)
            out[r, k, 0] = x0 + (j + 0.5 + dx) * (x1 - x0) / w
            out[r, k, 1] = y0 + (i + 0.5 + dy) * (y1 - y0) / h
            out[r, k, 2] = m[i, j]
    return out, paths


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def random_boxes(num: int, gen: torch.Generator) -> torch.Tensor:
    """Boxes 20-300 px per side, sides drawn independently (aspect ratios up to 15)."""
    xy = torch.rand(num, 2, generator=gen, dtype=torch.float64) * 200
    wh = torch.rand(num, 2, generator=gen, dtype=torch.float64) * 280 + 20
    return torch.cat([xy, xy + wh], dim=1)


def to_image(uv: torch.Tensor, boxes: torch.Tensor, size) -> torch.Tensor:
    """Continuous heatmap (u, v) -> image (x, y), written out instead of using geometry.py."""
    h, w = size
    x = boxes[:, None, 0] + uv[..., 0] * (boxes[:, None, 2] - boxes[:, None, 0]) / w
    y = boxes[:, None, 1] + uv[..., 1] * (boxes[:, None, 3] - boxes[:, None, 1]) / h
    return torch.stack([x, y], dim=2)


def error_in_cells(xy: torch.Tensor, uv: torch.Tensor, boxes: torch.Tensor, size) -> torch.Tensor:
    """R x K x 2 absolute error of image-space predictions, measured in heatmap cells."""
    h, w = size
    cells_per_px = torch.stack(
        [w / (boxes[:, 2] - boxes[:, 0]), h / (boxes[:, 3] - boxes[:, 1])], dim=1
    )
    return (xy - to_image(uv, boxes, size)).abs() * cells_per_px[:, None, :]


def random_interior_keypoints(num, k, size, margin, gen):
    """R x K x 2 continuous heatmap positions at least ``margin`` cells from the border."""
    h, w = size
    u = margin + torch.rand(num, k, generator=gen, dtype=torch.float64) * (w - 2 * margin)
    v = margin + torch.rand(num, k, generator=gen, dtype=torch.float64) * (h - 2 * margin)
    return torch.stack([u, v], dim=2)


def with_visibility(xy: torch.Tensor, v: float = 2.0) -> torch.Tensor:
    return torch.cat([xy, torch.full_like(xy[..., :1], v)], dim=2)


# ---------------------------------------------------------------------------
# Construction and factory
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sigma": 0.0},
        {"sigma": -1.0},
        {"sigma": float("nan")},
        {"sigma": float("inf")},
        {"refine": "taylor"},
        {"blur_kernel": 4},
        {"blur_kernel": 0},
        {"blur_kernel": -3},
        {"blur_kernel": 5.0},
    ],
)
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        GaussianCodec(**kwargs)


def test_default_blur_kernel_covers_three_sigma():
    assert GaussianCodec(sigma=2.0).blur_kernel == 13
    assert GaussianCodec(sigma=1.5).blur_kernel == 11
    assert GaussianCodec(sigma=2.0, blur_kernel=11).blur_kernel == 11


def test_build_codec():
    codec = build_codec("gaussian", sigma=3.0, refine="quarter")
    assert isinstance(codec, GaussianCodec) and codec.sigma == 3.0 and codec.refine == "quarter"
    assert isinstance(build_codec("onehot"), OneHotCodec)
    with pytest.raises(ValueError, match="gaussian.*onehot|onehot.*gaussian"):
        build_codec("heatmap")


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------


def test_encode_exact_cell_values():
    # 56 x 56 heatmap on a 112 x 28 box: 0.5 cell per px along x, 2 cells per px along y.
    sigma = 1.7
    boxes = torch.tensor([[10.0, 20.0, 122.0, 48.0]], dtype=torch.float64)
    keypoints = torch.tensor([[[70.3, 31.15, 2.0]]], dtype=torch.float64)
    u, v = (70.3 - 10.0) * 56 / 112, (31.15 - 20.0) * 56 / 28  # 30.15, 22.3
    targets = GaussianCodec(sigma=sigma).encode(keypoints, boxes, (56, 56))
    assert isinstance(targets, GaussianTargets)
    assert targets.heatmaps.shape == (1, 1, 56, 56) and targets.weights.tolist() == [[1.0]]
    for i, j in [(22, 30), (21, 31), (25, 27), (22, 40), (0, 0), (55, 55)]:
        expected = math.exp(-((j + 0.5 - u) ** 2 + (i + 0.5 - v) ** 2) / (2 * sigma**2))
        assert float(targets.heatmaps[0, 0, i, j]) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_encode_peak_cell_and_centroid_match_keypoint():
    gen = torch.Generator().manual_seed(1)
    size = (64, 48)
    sigma = 1.5
    boxes = random_boxes(10, gen)
    # 6 sigma from the border: the truncated tails move the centroid by < 1e-8 cell.
    uv = random_interior_keypoints(10, 7, size, 6 * sigma, gen)
    targets = GaussianCodec(sigma=sigma).encode(
        with_visibility(to_image(uv, boxes, size)), boxes, size
    )
    maps = targets.heatmaps
    mass = maps.sum(dim=(2, 3))
    cu = (maps.sum(dim=2) * (torch.arange(48, dtype=torch.float64) + 0.5)).sum(dim=2) / mass
    cv = (maps.sum(dim=3) * (torch.arange(64, dtype=torch.float64) + 0.5)).sum(dim=2) / mass
    torch.testing.assert_close(torch.stack([cu, cv], dim=2), uv, atol=1e-6, rtol=0)
    # The highest cell is the one containing the keypoint (the nearest cell centre).
    peak = maps.flatten(2).argmax(dim=2)
    assert torch.equal(peak % 48, uv[..., 0].floor().long())
    assert torch.equal(peak // 48, uv[..., 1].floor().long())
    assert torch.all(targets.weights == 1)


def test_encode_weights_visibility_and_roi_bounds():
    size = (56, 56)
    boxes = torch.tensor([[0.0, 0.0, 56.0, 112.0]])  # x: 1 cell/px, y: 0.5 cell/px
    uv_v = [
        (10.2, 20.7, 2),  # visible, inside
        (10.2, 20.7, 1),  # labelled but occluded: still a target
        (10.2, 20.7, 0),  # unlabelled
        (-0.01, 20.0, 2),  # left of the RoI
        (56.0, 20.0, 2),  # exactly on the far edge: outside [0, W)
        (0.0, 0.0, 2),  # exactly on the near corner: inside
        (20.0, 56.0, 2),  # below the RoI
        (20.0, -3.0, 2),  # above
        (55.99, 55.99, 2),  # last cell
    ]
    kp = torch.tensor([[[u, 2 * v, vis] for u, v, vis in uv_v]])
    targets = GaussianCodec().encode(kp, boxes, size)
    expected = [1, 1, 0, 0, 0, 1, 0, 0, 1]
    assert targets.weights[0].tolist() == expected
    assert targets.weights.dtype == torch.float32
    per_map_max = targets.heatmaps[0].flatten(1).amax(dim=1)
    assert torch.all(per_map_max[torch.tensor(expected) == 0] == 0)
    assert torch.all(per_map_max[torch.tensor(expected) == 1] > 0.5)


def test_encode_degenerate_box_and_no_rois():
    codec = GaussianCodec()
    boxes = torch.tensor([[5.0, 5.0, 5.0, 30.0]])  # zero width
    targets = codec.encode(torch.tensor([[[5.0, 10.0, 2.0]]]), boxes, (56, 56))
    assert targets.weights.tolist() == [[0.0]]
    assert torch.all(targets.heatmaps == 0)
    empty = codec.encode(torch.zeros(0, 17, 3), torch.zeros(0, 4), (64, 48))
    assert empty.heatmaps.shape == (0, 17, 64, 48) and empty.weights.shape == (0, 17)


# ---------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(56, 56), (64, 48)])
@pytest.mark.parametrize("sigma", [1.5, 2.3, 3.0])
def test_roundtrip_recovers_subpixel_keypoints(size, sigma):
    gen = torch.Generator().manual_seed(int(sigma * 10) + size[1])
    boxes = random_boxes(20, gen).float()
    # Away from the border the blurred (DARK) path is taken; see test_roundtrip_near_the_border.
    uv = random_interior_keypoints(20, 17, size, 2 * sigma, gen)
    keypoints = with_visibility(to_image(uv, boxes.double(), size)).float()
    targets = GaussianCodec(sigma=sigma).encode(keypoints, boxes, size)

    errors = {}
    for refine in ("dark", "quarter", "none"):
        decoded = GaussianCodec(sigma=sigma, refine=refine).decode(targets.heatmaps, boxes)
        assert decoded.shape == (20, 17, 3) and decoded.dtype == torch.float32
        errors[refine] = error_in_cells(decoded[..., :2].double(), uv, boxes.double(), size)
    assert errors["dark"].max() < 0.1
    # Quarter shift: the estimate is a quarter cell from the centre, at most 0.25 cell off.
    assert errors["quarter"].max() <= 0.25 + 1e-3
    # Cell centre: up to half a cell off, and it is that bad for some keypoints.
    assert errors["none"].max() <= 0.5 + 1e-3
    assert errors["none"].max() > 0.4
    assert errors["dark"].mean() < errors["quarter"].mean() / 5


@pytest.mark.parametrize(
    "sigma, dark_border, tolerance",
    [(1.5, None, 0.1), (2.0, None, 0.1), (1.5, 3, 0.1), (2.0, 3, 0.11)],
)
def test_roundtrip_near_the_border(sigma, dark_border, tolerance):
    """Keypoints 1-4 cells from an edge (feet and heads at the box edge) are recovered too.

    The raw-map rule (``dark_border=None``: wherever the blur reaches the border) is exact
    there; the default 3-cell band blurs from 3 cells on, where the zero padding still pulls
    an exact sigma-2 target by up to 0.105 cell (the band is chosen on predicted maps, see
    the module docstring)."""
    size = (28, 28)
    gen = torch.Generator().manual_seed(7)
    boxes = random_boxes(16, gen).double()
    uv = (
        torch.rand(16, 17, 2, generator=gen, dtype=torch.float64) * 3 + 1.0
    )  # 1..4 cells from the top/left
    flip = torch.rand(16, 17, 2, generator=gen) < 0.5
    uv = torch.where(flip, size[0] - uv, uv)  # ... or from the bottom/right
    keypoints = with_visibility(to_image(uv, boxes, size))
    targets = GaussianCodec(sigma=sigma).encode(keypoints, boxes, size)
    codec = GaussianCodec(sigma=sigma, refine="dark", dark_border=dark_border)
    decoded = codec.decode(targets.heatmaps, boxes)
    assert error_in_cells(decoded[..., :2], uv, boxes, size).max() < tolerance


def test_score_is_peak_cell_value():
    size = (56, 56)
    boxes = torch.tensor([[0.0, 0.0, 112.0, 56.0], [30.0, 40.0, 86.0, 152.0]], dtype=torch.float64)
    uv = torch.tensor(
        [[[20.5, 30.5], [10.5, 11.5]], [[33.2, 17.9], [40.75, 8.1]]], dtype=torch.float64
    )
    codec = GaussianCodec(sigma=2.0)
    targets = codec.encode(with_visibility(to_image(uv, boxes, size)), boxes, size)
    score = codec.decode(targets.heatmaps, boxes)[..., 2]
    # Keypoints on a cell centre peak at exactly 1.
    torch.testing.assert_close(score[0], torch.ones(2, dtype=torch.float64), atol=1e-12, rtol=0)
    nearest_centre = uv.floor() + 0.5
    expected = torch.exp(-((uv - nearest_centre) ** 2).sum(dim=2) / 8.0)
    torch.testing.assert_close(score, expected, atol=1e-12, rtol=0)


# ---------------------------------------------------------------------------
# Decoding against the brute-force reference
# ---------------------------------------------------------------------------


def crafted_maps(h: int, w: int):
    """Maps that steer decoding down each path, with the path the reference must take."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5

    def bump(cx, cy, s, a=1.0):
        return a * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s))

    one_hot = np.zeros((h, w))
    one_hot[7, 9] = 1.0
    # A narrow spike next to a broad, nearly as high hill: after the blur the hill
    # dominates, the Newton step heads for it and leaves the cell.
    far = bump(8.5, 10.5, 0.4) + bump(13.5, 10.5, 3.0, 0.9)
    # A spike between two broad hills: after the blur, it sits in a valley.
    valley = bump(11.5, 10.5, 0.3) + bump(6.5, 10.5, 2.0, 0.95) + bump(16.5, 10.5, 2.0, 0.95)
    # A spike off the middle of a crater: after the blur, it sits on the side of a pit.
    crater = bump(12.5, 10.5, 0.3) + 0.95 * np.exp(
        -((np.hypot(xx - 12.9, yy - 10.2) - 4.0) ** 2) / 2.0
    )
    # Negative everywhere, the highest cell beside a deep pit: nothing to refine,
    # although the negated map would have a maximum there.
    negative = -0.5 - 4 * bump(12.1, 10.9, 2.0)
    negative[10, 12] = -0.1
    return [
        (np.zeros((h, w)), "border"),  # flat: argmax is the first cell
        (np.full((h, w), 0.3), "border"),
        (bump(0.5, 0.5, 2.0), "border"),  # corner peak
        (bump(12.3, 0.4, 2.0), "border"),  # top edge
        (bump(w - 0.6, 9.7, 1.8), "border"),  # right edge
        (bump(9.8, 11.3, 2.0) - 2.0, "saddle"),  # all negative: the log is flat
        (one_hot, "dark"),
        (bump(5.2, 6.9, 2.0), "dark"),
        (far, "far"),
        (valley, "saddle"),
        (crater, "minimum"),
        (negative, "saddle"),
    ]


def random_peaked_maps(num: int, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Bumps of random width and height over smoothed noise, some at the border."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    maps = np.zeros((num, h, w))
    for n in range(num):
        cx, cy = rng.uniform(-1, w + 1), rng.uniform(-1, h + 1)
        s, a = rng.uniform(1.0, 3.5), rng.uniform(0.2, 1.2)
        noise = rng.normal(0, rng.choice([0.01, 0.05, 0.2]), (h + 2, w + 2))
        smooth = sum(noise[a_ : a_ + h, b_ : b_ + w] for a_ in range(3) for b_ in range(3)) / 9
        maps[n] = a * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s)) + smooth
    return maps


@pytest.fixture(scope="module")
def reference_case():
    """R x K maps (random rows + crafted rows), boxes, and the reference decoding."""
    rng = np.random.default_rng(7)
    h, w, k = 22, 24, 12
    random_rows = random_peaked_maps(6 * k, h, w, rng).reshape(6, k, h, w)
    crafted = crafted_maps(h, w)
    crafted_row = np.stack([m for m, _ in crafted])[None]
    maps = np.concatenate([random_rows, crafted_row])
    boxes = np.concatenate([rng.uniform(0, 200, (7, 2)), np.zeros((7, 2))], axis=1)
    boxes[:, 2:] = boxes[:, :2] + rng.uniform(50, 300, (7, 2))
    sigma = 2.0
    expected, paths = decode_reference(maps, boxes, sigma, border=3)  # the codec's default band
    return maps, boxes, sigma, expected, paths, [p for _, p in crafted]


def test_reference_hits_every_path(reference_case):
    _, _, _, _, paths, crafted_paths = reference_case
    assert list(paths[-1]) == crafted_paths
    # The random maps exercise DARK and the border fallback too ("far": the crafted maps).
    counts = {
        p: int((paths[:-1] == p).sum()) for p in ("dark", "border", "saddle", "minimum", "far")
    }
    assert counts["dark"] >= 20 and counts["border"] >= 3, counts


def test_decode_matches_reference_float64(reference_case):
    maps, boxes, sigma, expected, _, _ = reference_case
    decoded = GaussianCodec(sigma=sigma).decode(torch.from_numpy(maps), torch.from_numpy(boxes))
    assert decoded.dtype == torch.float64
    np.testing.assert_allclose(decoded.numpy(), expected, atol=1e-4, rtol=0)


def test_decode_matches_reference_float32_in_cells(reference_case):
    maps, boxes, sigma, expected, _, _ = reference_case
    h, w = maps.shape[-2:]
    coords, score = GaussianCodec(sigma=sigma).locate(torch.from_numpy(maps).float())
    # Reference image coordinates back to heatmap cells.
    origin, extent = boxes[:, None, :2], boxes[:, None, 2:] - boxes[:, None, :2]
    expected_cells = (expected[..., :2] - origin) / extent * np.array([w, h])
    np.testing.assert_allclose(coords.numpy(), expected_cells, atol=1e-4, rtol=0)
    np.testing.assert_allclose(score.numpy(), expected[..., 2], atol=1e-6, rtol=0)


def test_quarter_refinement_by_hand():
    maps = torch.zeros(1, 3, 10, 12)
    maps[0, 0, 4, 6] = 1.0
    maps[0, 0, 4, 7], maps[0, 0, 4, 5] = 0.5, 0.4  # right higher
    maps[0, 0, 3, 6], maps[0, 0, 5, 6] = 0.6, 0.2  # upper higher
    maps[0, 1, 0, 3] = 1.0  # top border: no vertical shift
    maps[0, 1, 0, 4] = 0.3
    maps[0, 2, 6, 2] = 1.0  # symmetric neighbours: no shift
    coords, score = GaussianCodec(refine="quarter").locate(maps)
    expected = torch.tensor([[[6.75, 4.25], [3.75, 0.5], [2.5, 6.5]]])
    torch.testing.assert_close(coords, expected)
    torch.testing.assert_close(score, torch.ones(1, 3))


def test_decode_no_rois_flat_maps_and_half_precision():
    codec = GaussianCodec()
    assert codec.decode(torch.zeros(0, 17, 56, 56), torch.zeros(0, 4)).shape == (0, 17, 3)
    boxes = torch.tensor([[10.0, 20.0, 66.0, 132.0]])
    flat = codec.decode(torch.zeros(1, 2, 56, 56), boxes)
    assert torch.all(torch.isfinite(flat))
    # First cell, no shift: centre of cell (0, 0) is 0.5 cell from the box corner.
    torch.testing.assert_close(flat[0, 0], torch.tensor([10.5, 21.0, 0.0]))

    gen = torch.Generator().manual_seed(3)
    uv = random_interior_keypoints(4, 5, (56, 56), 5.0, gen)
    b16_boxes = random_boxes(4, gen).float()
    targets = codec.encode(
        with_visibility(to_image(uv, b16_boxes.double(), (56, 56))).float(), b16_boxes, (56, 56)
    )
    half = targets.heatmaps.bfloat16()
    out = codec.decode(half, b16_boxes)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, codec.decode(half.float(), b16_boxes))


@pytest.mark.parametrize("border", [0, 2, 4])
def test_decode_matches_reference_with_other_border_bands(reference_case, border):
    maps, boxes, sigma, _, _, _ = reference_case
    expected, paths = decode_reference(maps, boxes, sigma, border=border)
    codec = GaussianCodec(sigma=sigma, dark_border=border)
    decoded = codec.decode(torch.from_numpy(maps), torch.from_numpy(boxes))
    np.testing.assert_allclose(decoded.numpy(), expected, atol=1e-4, rtol=0)


def test_a_negative_neighbour_does_not_throw_the_peak_across_the_cell():
    """MSE heads output small negatives: peak 0.5, neighbours 0.4 and -0.01 (the fixed
    1e-10 log floor moved this peak by +0.49 cell towards the 0.4 side)."""
    maps = torch.zeros(1, 1, 28, 28)
    maps[0, 0, 10, 9], maps[0, 0, 10, 10], maps[0, 0, 10, 11] = 0.4, 0.5, -0.01
    maps[0, 0, 9, 10] = maps[0, 0, 11, 10] = 0.45
    codec = GaussianCodec(sigma=1.5, dark_border=28)  # every peak on the raw-map path
    coords, _ = codec.locate(maps)
    dx = float(coords[0, 0, 0]) - 10.5
    # Towards the higher neighbour, by less than the quarter-cell rule's shift.
    assert -0.25 < dx < 0


def test_dark_border_rejects_negative_bands():
    with pytest.raises(ValueError, match="dark_border"):
        GaussianCodec(dark_border=-1)


def noisy_gaussian_maps(distance: float, noise: float, n: int, seed: int):
    """n 28 x 28 maps: a sigma-1.5 Gaussian (height 0.5-1) whose centre lies ``distance``
    (+-0.5) cells from the left border, plus white noise. Returns (maps, true (u, v))."""
    g = torch.Generator().manual_seed(seed)
    u = distance + torch.rand(n, generator=g, dtype=torch.float64) - 0.5
    v = 8 + 12 * torch.rand(n, generator=g, dtype=torch.float64)
    cells = torch.arange(28, dtype=torch.float64) + 0.5
    gx = torch.exp(-((cells - u[:, None]) ** 2) / (2 * 1.5**2))
    gy = torch.exp(-((cells - v[:, None]) ** 2) / (2 * 1.5**2))
    height = 0.5 + 0.5 * torch.rand(n, generator=g, dtype=torch.float64)
    maps = height[:, None, None] * gy[:, :, None] * gx[:, None, :]
    maps = maps + noise * torch.randn(n, 28, 28, generator=g, dtype=torch.float64)
    return maps[:, None], torch.stack([u, v], dim=1)


def mean_error(codec, maps, truth) -> float:
    coords, _ = codec.locate(maps)
    return float((coords[:, 0] - truth).norm(dim=1).mean())


@pytest.mark.parametrize("distance", [4.5, 5.5])
def test_on_noisy_maps_the_default_band_matches_the_papers_recipe_away_from_the_border(distance):
    """3-6 cells from the border the earlier rule (raw map wherever the blur reached the
    border) cost 3x the paper's recipe (blur everywhere) on noisy maps; the 3-cell band
    blurs there, as the paper does."""
    maps, truth = noisy_gaussian_maps(distance, noise=0.05, n=1500, seed=int(distance * 10))
    paper = mean_error(GaussianCodec(sigma=1.5, dark_border=0), maps, truth)
    default = mean_error(GaussianCodec(sigma=1.5), maps, truth)
    earlier = mean_error(GaussianCodec(sigma=1.5, dark_border=None), maps, truth)
    assert default == pytest.approx(paper, rel=1e-9)
    assert earlier > 2 * paper


def test_on_maps_at_the_border_the_raw_map_beats_the_papers_blur():
    """A peak 1-2 cells from the edge: the zero-padded blur pulls it inwards."""
    maps, truth = noisy_gaussian_maps(1.5, noise=0.01, n=1500, seed=3)
    paper = mean_error(GaussianCodec(sigma=1.5, dark_border=0), maps, truth)
    default = mean_error(GaussianCodec(sigma=1.5), maps, truth)
    assert default < 0.7 * paper
