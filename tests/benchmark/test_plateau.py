"""bench_plateau: the warmup-stable-decay schedule each run is given (checked against the
recipe's ordinary schedule), how branches start from the stable run's checkpoints, when 16x
runs, and where the table puts the plateau."""

import contextlib
import io
import json
import os

import pytest
from script_loading import load_script

import kpext

from detectron2.config import get_cfg

plateau = load_script("kpext_bench_plateau", "projects", "Benchmarks", "bench_plateau.py")


def settings(tmp_path, **env):
    return plateau.Settings({"BENCH_OUT": str(tmp_path), **env})


def cfg_of(command):
    """The config a train_net.py command line builds (its --config-file and options)."""
    args = command[2:]
    config = args[args.index("--config-file") + 1]
    opts = [a for a in args if a not in ("--config-file", config, "--eval-only", "--resume")]
    cfg = get_cfg()
    kpext.add_kpext_config(cfg)
    cfg.merge_from_file(os.path.join(plateau.runs.REPO, config))
    cfg.merge_from_list(opts)
    return cfg


def lr_at(cfg, iteration):
    """The rate Detectron2's WarmupMultiStepLR gives at ``iteration`` after warm-up, by hand."""
    steps = [s for s in cfg.SOLVER.STEPS if s <= cfg.SOLVER.MAX_ITER]
    return cfg.SOLVER.BASE_LR * cfg.SOLVER.GAMMA ** sum(iteration >= s for s in steps)


def test_every_length_follows_the_recipes_schedule_shape(tmp_path):
    s = settings(tmp_path)
    recipe = s.cfg  # the demo config: steps at 0.8 and 0.943 of its length
    assert s.schedule.base == 700 and s.multiples == [1, 2, 4, 8, 16]
    stable = cfg_of(plateau.stable_command(s, 1, [1, 2, 4, 8]))
    assert stable.SOLVER.STEPS == () and stable.SOLVER.MAX_ITER == 8 * 560
    assert stable.SOLVER.CHECKPOINT_PERIOD == 560 and stable.DATASETS.TEST == ()
    for m in (1, 2, 4, 8):
        branch = cfg_of(plateau.branch_command(s, 1, m))
        assert branch.SOLVER.MAX_ITER == 700 * m
        # The same rate as the ordinary schedule scaled to this length, at every iteration
        # after the branch point; and the stable run's rate before it.
        scaled = recipe.clone()
        scaled.SOLVER.MAX_ITER = 700 * m
        scale = 700 * m / recipe.SOLVER.MAX_ITER
        scaled.SOLVER.STEPS = tuple(round(x * scale) for x in recipe.SOLVER.STEPS)
        for it in range(560 * m, 700 * m, 7):
            assert lr_at(branch, it) == pytest.approx(lr_at(scaled, it), rel=0.02), (m, it)
        for it in range(recipe.SOLVER.WARMUP_ITERS, 560 * m, 13):
            assert lr_at(stable, it) == lr_at(scaled, it) == recipe.SOLVER.BASE_LR
        assert 560 * m % stable.SOLVER.CHECKPOINT_PERIOD == 0  # its checkpoint exists
        assert branch.SEED == stable.SEED == 1
    ordinary = cfg_of(plateau.ordinary_command(s, 1))
    # The base length (700, the demo's length before issue 31's speed-up) at the recipe's
    # fractions: by hand, 0.8 * 700 and 0.943 * 700.
    assert ordinary.SOLVER.STEPS == (560, 660) and ordinary.SOLVER.MAX_ITER == 700


def test_a_recipe_without_decay_or_with_decay_inside_warmup_is_refused(tmp_path):
    with pytest.raises(ValueError, match="warm-up"):
        settings(tmp_path, BENCH_PLATEAU_BASE="100")  # 80 < the demo's 100 warm-up iterations


def fake_train_net(calls, ap_of_length):
    """A stand-in for train_net.py: writes what a run leaves (checkpoints, summary) with a
    keypoint AP given by the run's length."""

    def run(command, cwd, stdout, stderr):
        calls.append(command)
        folder = command[command.index("OUTPUT_DIR") + 1]
        cfg = cfg_of(command)
        if "--eval-only" not in command:
            for it in range(cfg.SOLVER.CHECKPOINT_PERIOD, cfg.SOLVER.MAX_ITER + 1,
                            cfg.SOLVER.CHECKPOINT_PERIOD):  # fmt: skip
                open(os.path.join(folder, f"model_{it - 1:07d}.pth"), "w").close()
        ap = ap_of_length(cfg.SOLVER.MAX_ITER)
        with open(os.path.join(folder, "summary.json"), "w") as f:
            json.dump({"datasets": [{"keypoint_ap": ap}]}, f)

        class Done:
            returncode = 0

        return Done()

    return run


@pytest.mark.parametrize("gain_at_8x, expected", [(3.0, [1, 2, 4, 8, 16]), (0.5, [1, 2, 4, 8])])
def test_branches_start_from_the_stable_checkpoints_and_16x_runs_only_while_8x_gains(
    tmp_path, monkeypatch, gain_at_8x, expected
):
    s = settings(tmp_path)
    calls = []
    aps = {700: 10.0, 1400: 18.0, 2800: 25.0, 5600: 25.0 + gain_at_8x, 11200: 30.0}
    monkeypatch.setattr(plateau.runs.subprocess, "run", fake_train_net(calls, aps.get))
    monkeypatch.setattr(plateau.runs, "make_synthetic_data", lambda: None)
    with contextlib.redirect_stdout(io.StringIO()):
        multiples, variants = plateau.train_all(s)
    assert multiples == expected
    # The facing prior's variant only where the recipe trains a facing branch.
    facing = s.cfg.MODEL.KPEXT.FACING.LOSS_WEIGHT > 0
    assert [v.name for v in variants] == ["keypointwise"] + (["no_facing_prior"] if facing else [])
    for m in expected:
        folder = plateau.branch_dir(s, 1, m)
        start = plateau.checkpoint_name(560 * m)
        with open(os.path.join(folder, "last_checkpoint")) as f:
            assert f.read() == start  # what --resume loads: the stable run's checkpoint
        assert os.path.exists(os.path.join(folder, start))
    stable_runs = [c for c in calls if c[c.index("OUTPUT_DIR") + 1].endswith("stable")]
    assert len(stable_runs) == (2 if 16 in expected else 1)  # extended once for 16x
    # Run again: everything is reused.
    calls.clear()
    with contextlib.redirect_stdout(io.StringIO()):
        assert plateau.train_all(s)[0] == expected
    assert calls == []


def test_a_stable_run_of_other_options_is_not_extended(tmp_path, monkeypatch):
    s = settings(tmp_path)
    calls = []
    monkeypatch.setattr(plateau.runs.subprocess, "run", fake_train_net(calls, lambda n: 1.0))
    with contextlib.redirect_stdout(io.StringIO()):
        plateau.run_stable(s, 1, [1, 2])
    other = settings(tmp_path, BENCH_PLATEAU_OPTS="SOLVER.BASE_LR 0.01")
    with pytest.raises(SystemExit, match="stable run of other options"):
        plateau.run_stable(other, 1, [1, 2, 4])


def test_the_plateau_is_the_first_doubling_under_one_ap():
    rows = [
        {"iterations": 700},
        {"iterations": 1400, "gain": 9.0},
        {"iterations": 2800, "gain": 0.7},
        {"iterations": 5600, "gain": 2.0},
    ]
    assert plateau.plateau_length(rows) == 1400
    assert plateau.plateau_length(rows[:2]) is None


def test_error_shares_average_the_seeds_per_view_and_keypoint():
    def breakdown(good_back, lr_back):
        return {
            "keypoints": 10,
            "shares": {"good": 0.5, "inversion_left_right": 0.1},
            "by_view": {
                "back": {
                    "share_of_keypoints": 0.2,
                    "shares": {
                        "good": good_back,
                        "inversion_left_right": lr_back,
                        "inversion": lr_back,
                    },
                },  # fmt: skip
            },
            "by_keypoint": [
                {"shares": {"good": 1.0, "inversion": 0.0, "inversion_left_right": 0.0}}
            ],  # fmt: skip
        }

    shares = plateau.error_shares([breakdown(0.1, 0.5), breakdown(0.3, 0.3), {}])
    assert shares["by_view"]["back"]["good"] == pytest.approx(0.2)
    assert shares["by_view"]["back"]["inversion_left_right"] == pytest.approx(0.4)
    assert shares["errors"]["good"] == pytest.approx(0.5)
    assert shares["by_keypoint"][0]["good"] == 1.0
