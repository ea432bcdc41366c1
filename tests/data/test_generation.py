"""kpext_synth.generation: settings errors, per-split settings, all-or-nothing output files."""

import json
import os
from dataclasses import dataclass

import pytest

from kpext_synth.generation import (
    check_count_and_seed,
    configs_for_splits,
    write_json_atomically,
)


@dataclass(frozen=True)
class Settings:
    num_images: int
    seed: int = 0

    def validate(self):
        check_count_and_seed(self, ())


DEFAULTS = {"train": Settings(100, seed=0), "val": Settings(10, seed=1)}


def test_splits_get_their_defaults_with_the_overrides():
    configs = configs_for_splits(None, DEFAULTS, DEFAULTS["val"], {"num_images": 5})
    assert configs == {"train": Settings(5, 0), "val": Settings(5, 1)}
    assert configs_for_splits(["extra"], DEFAULTS, DEFAULTS["val"], {}) == {
        "extra": Settings(10, 1)
    }


@pytest.mark.parametrize(
    "names, overrides, message",
    [
        (["../up"], {}, "split names may only use"),
        (["val"], {"num_images": 0}, "at least 1"),
        (["val"], {"seed": -1}, r"seed \(--seed\) must be >= 0, got -1"),
        (["val"], {"seed": True}, r"seed \(--seed\) must be an integer, got True"),
        (["val"], {"num_images": 2.5}, r"num_images \(--num-images\) must be an integer"),
    ],
)
def test_bad_names_and_settings_are_refused(names, overrides, message):
    with pytest.raises(ValueError, match=message):
        configs_for_splits(names, DEFAULTS, DEFAULTS["val"], overrides)


def test_json_is_written_whole_into_a_new_folder(tmp_path):
    path = tmp_path / "a" / "b.json"
    write_json_atomically(str(path), {"x": [1, 2]})
    assert json.loads(path.read_text()) == {"x": [1, 2]}
    assert os.listdir(path.parent) == ["b.json"]
