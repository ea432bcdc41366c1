"""plot_head_curves.py: which rows of the head benchmark's reports become a network's points."""

import pytest


def _script():
    from script_loading import load_script

    return load_script("kpext_plot_head_curves", "projects", "Benchmarks", "plot_head_curves.py")


def _row(name, iterations, aps, regime=False, overrides=(), precision="bf16", **extra):
    row = {
        "name": name,
        "iterations": iterations,
        "ap_gt_runs": list(aps),
        "regime": regime,
        "overrides": list(overrides),
        "precision": precision,
    }
    row.update(extra)
    return row


def _report(seeds, rows):
    return {"seeds": list(seeds), "settings": {"val_set": "v"}, "rows": rows}


def test_stock_regime_rows_join_stock_and_checks_and_decoding_rows_stay_out():
    script = _script()
    short = _report(
        [0, 1],
        [
            _row("stock", 1600, [29.0, 30.0]),
            _row("hourglass", 1600, [35.0, 33.0]),
            _row("stock_x2", 3200, [33.0, 33.5], regime=True),
            _row("stock_x0.5", 800, [26.0, 26.5], regime=True),
            _row("stock_weak_28", 1600, [25.0, 24.0], True, ("POOLER_RESOLUTION", "7")),
            _row("stock_float32_x0.25", 400, [22.0, 21.0], True, precision="float32"),
            _row("kpext_krcnn_lr_person", 1600, [31.0, 31.5], weights_from="stock"),
        ],
    )
    long = _report(
        [0],
        [
            _row("stock", 6400, [34.9]),
            _row("hourglass", 6400, [45.1]),
            _row("stock_x2", 12800, [33.9], regime=True),
        ],
    )
    curves = script.collect_curves([short, long], seed=0)
    assert curves == {
        "stock": {800: 26.0, 1600: 29.0, 3200: 33.0, 6400: 34.9, 12800: 33.9},
        "hourglass": {1600: 35.0, 6400: 45.1},
    }
    # Seed 1 exists in the first report only: its points alone.
    assert script.collect_curves([short, long], seed=1)["hourglass"] == {1600: 33.0}
    assert script.collect_curves([long], seed=3) == {}
    table = script.markdown(curves)
    assert table.splitlines()[0] == "| network | 800 | 1600 | 3200 | 6400 | 12800 |"
    assert table.splitlines()[2].startswith("| stock | 26.0 | 29.0 | 33.0 | 34.9 | 33.9 |")
    assert "| hourglass |  | 35.0 |  | 45.1 |  |" in table


def test_the_figure_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    script = _script()
    path = tmp_path / "curves.png"
    script.plot({"stock": {400: 20.0, 800: 25.0}, "lone": {800: 30.0}}, 0, str(path))
    assert path.stat().st_size > 1000


def test_a_file_that_is_not_a_head_report_is_refused_by_name(tmp_path):
    script = _script()
    other = tmp_path / "end_to_end.json"
    other.write_text('{"rows": [], "config": "x"}')
    with pytest.raises(SystemExit, match="end_to_end.json: not a bench_heads.py report"):
        script.load_report(str(other))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(SystemExit, match="broken.json: cannot read"):
        script.load_report(str(broken))
