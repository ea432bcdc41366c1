"""bench_heads.py's report (kpext_bench.heads_report): the regime checks read the right rows
and give the right verdicts, the figure's labels do not collide, and the report is written
whole."""

import json
import os

import pytest
from kpext_bench import heads_report as bench


def _row(name, ap, iterations=200, diff=0.0, ci=(0.0, 0.0), regime=False, overrides=()):
    return {
        "name": name,
        "ap_gt": ap,
        "iterations": iterations,
        "diff_gt_vs_stock": diff,
        "diff_gt_ci95": list(ci),
        "regime": regime,
        "overrides": list(overrides),
    }


def _report(stock_ap=42.0, doubled=(0.4, (-0.2, 1.0)), weak=(-3.0, (-4.0, -2.0))):
    pooler = ("MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION", "7")
    return {
        "rows": [
            _row("stock", stock_ap),
            _row("gaussian", 30.0, diff=-12.0, ci=(-13.0, -11.0)),
            _row("stock_x0.25", 20.0, 50, -22.0, (-23.0, -21.0), regime=True),
            _row("stock_x2", stock_ap + doubled[0], 400, doubled[0], doubled[1], regime=True),
            _row("stock_x0.5", 35.0, 100, -7.0, (-8.0, -6.0), regime=True),
            _row("stock_weak_28", stock_ap + weak[0], 200, weak[0], weak[1], True, pooler),
        ]
    }


def _verdicts(report):
    return {c["check"]: c for c in bench.regime_checks(report)}


def test_a_converged_stock_and_a_visible_weakening_meet_every_check():
    checks = _verdicts(_report())
    assert checks["stock AP on gt boxes"]["ok"] is True
    curve = checks["stock's curve (head iterations: AP on gt boxes)"]
    assert curve["value"] == "50: 20.0, 100: 35.0, 200: 42.0, 400: 42.4"  # sorted by length
    assert checks["doubling stock's iterations: AP change [95% CI]"]["ok"] is True
    assert checks["weakened stock (28 x 28 maps) vs stock [95% CI]"]["ok"] is True
    markdown = bench.regime_markdown(_report())
    assert markdown.count("| met |") == 3 and "missed" not in markdown


def test_each_check_fails_on_its_own_condition():
    assert _verdicts(_report(stock_ap=30.0))["stock AP on gt boxes"]["ok"] is False
    rising = _verdicts(_report(doubled=(2.5, (1.5, 3.5))))
    assert rising["doubling stock's iterations: AP change [95% CI]"]["ok"] is False
    unseen = _verdicts(_report(weak=(-1.0, (-2.5, 0.4))))  # interval reaches 0: not seen
    assert unseen["weakened stock (28 x 28 maps) vs stock [95% CI]"]["ok"] is False
    assert "**missed**" in bench.regime_markdown(_report(stock_ap=30.0))


def test_rows_missing_from_the_run_are_left_out():
    report = {"rows": [_row("stock", 12.0)]}
    assert [c["check"] for c in bench.regime_checks(report)] == ["stock AP on gt boxes"]


def test_a_report_is_written_whole_or_not_at_all(tmp_path):
    from kpext_bench.reports import write_report

    json_path, md_path = write_report(str(tmp_path), "heads", {"rows": [1]}, "| a |\n")
    assert json.load(open(json_path)) == {"rows": [1]} and open(md_path).read() == "| a |\n"
    with pytest.raises(TypeError):  # not JSON: the run fails while writing its report
        write_report(str(tmp_path), "heads", {"rows": [object()]}, "| b |\n")
    assert json.load(open(json_path)) == {"rows": [1]}  # the previous report, whole
    assert sorted(os.listdir(tmp_path)) == ["heads.json", "heads.md"]


def test_crowded_labels_are_spread_apart_in_order_around_their_points():
    ys = [17.0, 17.1, 16.9, 12.0, 17.05]
    heights = bench.spread_label_heights(ys, min_gap=0.5)
    ranked = sorted(range(len(ys)), key=lambda i: ys[i])
    gaps = [heights[b] - heights[a] for a, b in zip(ranked, ranked[1:])]
    assert min(gaps) >= 0.5 - 1e-9  # no two labels closer than the gap, order kept
    assert abs(sum(heights) / 5 - sum(ys) / 5) < 1e-9  # centred on the points, not drifting up
    assert heights[3] == 12.0  # a label with room stays at its point
    assert bench.spread_label_heights([1.0, 5.0, 9.0], min_gap=0.5) == [1.0, 5.0, 9.0]


def test_label_columns_group_points_that_are_close_in_x():
    columns = bench.label_columns([1.0, 0.65, 1.3, 0.66, 1.02, 0.6], width=0.1)
    assert sorted(sorted(c) for c in columns) == [[0, 4], [1, 3, 5], [2]]


def test_the_figure_draws_from_a_saved_report(tmp_path):
    docs = os.path.join(os.path.dirname(__file__), "..", "..", "docs")
    with open(os.path.join(docs, "bench_heads.json")) as f:
        report = json.load(f)
    path = str(tmp_path / "heads.png")
    bench.plot(report, path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_bench_heads_reports_through_heads_report():
    """The script imports (its renderers through kpext_bench) and writes this report."""
    from script_loading import load_script

    script = load_script("kpext_bench_heads", "projects", "Benchmarks", "bench_heads.py")
    assert script.markdown_table is bench.markdown_table and script.plot is bench.plot


def _precision_pair(diff, ci, ratio=0.5):
    bf16 = _row("stock_x0.25", 20.0, 50, -22.0, (-23.0, -21.0), regime=True)
    bf16["precision"] = "bf16 autocast"
    fp32 = _row("stock_float32_x0.25", 20.0 + diff, 50, -22.0 + diff, (-23.0, -21.0), True)
    fp32.update(
        precision="float32",
        compare_with="stock_x0.25",
        diff_gt_vs_pair=diff,
        diff_gt_vs_pair_ci95=list(ci),
        train_vs_pair=1 / ratio,
    )
    return bf16, fp32


def test_the_precision_check_pairs_rows_of_one_length_and_stays_off_stocks_curve():
    stock = _row("stock", 40.0)
    stock["precision"] = "bf16 autocast"
    bf16, fp32 = _precision_pair(0.3, (-0.8, 1.1))
    checks = _verdicts({"rows": [stock, bf16, fp32]})
    # The float32 row is not a point of stock's (bf16) curve.
    assert (
        checks["stock's curve (head iterations: AP on gt boxes)"]["value"] == "50: 20.0, 200: 40.0"
    )
    (name,) = [c for c in checks if c.startswith("float32 minus bf16 autocast")]
    assert "50 iterations" in name
    assert checks[name]["ok"] is True and checks[name]["value"] == "+0.3 [-0.8, +1.1] (2.00x)"
    _, apart = _precision_pair(-1.5, (-2.5, -0.4))  # the interval misses 0: precision matters
    assert _verdicts({"rows": [stock, bf16, apart]})[name]["ok"] is False


def _bench_heads():
    from script_loading import load_script

    return load_script("kpext_bench_heads", "projects", "Benchmarks", "bench_heads.py")


def test_each_regime_has_its_rows_length_precision_and_report():
    script = _bench_heads()
    short = script.Settings({})
    plateau = script.Settings({"BENCH_REGIME": "plateau"})
    assert (short.head_iters, short.report_name, len(short.seeds)) == (200, "heads", 3)
    assert (plateau.head_iters, plateau.report_name, len(plateau.seeds)) == (
        6400,
        "heads_plateau",
        2,
    )
    hour = script.Settings({"BENCH_REGIME": "plateau", "BENCH_ITERS": "1600", "BENCH_SEEDS": "1"})
    assert (hour.head_iters, len(hour.seeds)) == (1600, 1)
    assert plateau.skip_fullsize and not short.skip_fullsize
    short_rows = {v.name for v in short.variants}
    plateau_rows = {v.name for v in plateau.variants}
    assert "gaussian_oks" in short_rows - plateau_rows
    assert {"gaussian_argmax", "kpext_krcnn_context", "stock_float32_x0.25"} <= (
        plateau_rows - short_rows
    )
    # Every row a plateau row reads (weights, timing, pair) is in the plateau's table.
    for v in plateau.variants:
        assert {v.weights_from, v.timing_from, v.compare_with} - {None} <= plateau_rows, v.name
    assert short.precision.label == "float32"
    fp32_row = next(v for v in plateau.variants if v.precision == "float32")
    assert plateau.variant_precision(fp32_row).label == "float32"
    with pytest.raises(SystemExit, match="BENCH_REGIME"):
        script.Settings({"BENCH_REGIME": "long"})
    with pytest.raises(SystemExit, match="BENCH_HEADS"):  # a plateau row is unknown to short
        script.Settings({"BENCH_HEADS": "gaussian_argmax"})


def test_the_plateau_trains_in_bf16_only_where_the_device_computes_it(monkeypatch):
    script = _bench_heads()
    monkeypatch.setattr(script, "native_bf16_flags", lambda: ("avx512_bf16",))
    assert script.head_precision("plateau", "cpu").label == "bf16 autocast + channels-last"
    assert script.head_precision("plateau", "cuda").label == "bf16 autocast"
    assert script.head_precision("short", "cpu").label == "float32"
    monkeypatch.setattr(script, "native_bf16_flags", lambda: ())
    assert script.head_precision("plateau", "cpu").label == "float32 + channels-last"
    env = {"BENCH_HEAD_PRECISION": "bf16", "BENCH_CHANNELS_LAST": "0"}
    assert script.head_precision("plateau", "cpu", env).label == "bf16 autocast"
    with pytest.raises(SystemExit, match="BENCH_HEAD_PRECISION"):
        script.head_precision("plateau", "cpu", {"BENCH_HEAD_PRECISION": "fp16"})
