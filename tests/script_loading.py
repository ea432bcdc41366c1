"""Import a script of the repository (projects/*/name.py, datasets/*.py, tools/*.py: not a
package) as a module for its tests: the one loader every test uses."""

import importlib.util
import os
import sys
from types import ModuleType

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(module_name: str, *path_in_repo: str) -> ModuleType:
    """``load_script("kpext_pose_demo", "projects", "PoseEstimation", "demo.py")``."""
    spec = importlib.util.spec_from_file_location(module_name, os.path.join(REPO, *path_in_repo))
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as an import would: dataclasses look their module up there.
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
