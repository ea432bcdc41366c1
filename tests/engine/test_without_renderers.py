"""kpext is the library users install: importing it and training need none of the renderers
(datasets/kpext_synth, in the repository only). The tiny set is generated beforehand."""

import ast
import os
import subprocess
import sys

from engine_helpers import BASE_CONFIG, REPO, TINY_OVERRIDES

RENDERERS = "kpext_synth"

# Run in a fresh interpreter: kpext_synth is not on its path (pytest.ini's pythonpath is this
# process's only), and a finder refuses it should anything under kpext still ask for it.
TRAIN_ONE_STEP = f"""
import importlib.abc
import importlib.util
import sys


class NoRenderers(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {RENDERERS!r}:
            raise ImportError(name + ": kpext imported the renderers")
        return None


assert importlib.util.find_spec({RENDERERS!r}) is None, "the renderers are on sys.path"
sys.meta_path.insert(0, NoRenderers())

import kpext  # noqa: E402
from kpext.engine import KpextTrainer  # noqa: E402

from detectron2.config import get_cfg  # noqa: E402

cfg = get_cfg()
kpext.add_kpext_config(cfg)
cfg.merge_from_file(sys.argv[1])
cfg.merge_from_list(sys.argv[3:])
cfg.merge_from_list(["SOLVER.MAX_ITER", "1", "DATASETS.TEST", "()", "OUTPUT_DIR", sys.argv[2]])
trainer = KpextTrainer(cfg)
trainer.resume_or_load(resume=False)
trainer.train()
loaded = sorted(m for m in sys.modules if m.split(".")[0] == {RENDERERS!r})
print("trained", trainer.iter, "step(s); renderer modules loaded:", loaded)
"""


def test_no_module_of_kpext_imports_the_renderers():
    kpext_dir = os.path.join(REPO, "kpext")
    importers = []
    for folder, _, files in os.walk(kpext_dir):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    modules = [node.module or ""]
                else:
                    continue
                if any(m.split(".")[0] in (RENDERERS, "datasets") for m in modules):
                    importers.append(f"{os.path.relpath(path, REPO)}:{node.lineno}")
    assert not importers, f"kpext imports the renderers: {importers}"
    assert not os.path.exists(os.path.join(kpext_dir, "data", "synthetic"))


def test_import_and_a_training_step_without_the_renderers(tiny_synthetic_root, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["KPEXT_DATASETS"] = str(tiny_synthetic_root)  # kpext_synth_train: registered on import
    proc = subprocess.run(
        [sys.executable, "-c", TRAIN_ONE_STEP, BASE_CONFIG, str(tmp_path / "run"), *TINY_OVERRIDES],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "trained 1 step(s); renderer modules loaded: []" in proc.stdout
    assert (tmp_path / "run" / "model_final.pth").is_file()
