"""Helpers shared by the synthetic-generator tests."""

import json

from kpext_synth.people import generate_split


def generate_and_read(root, cfg, split="train"):
    """Generate ``split`` under ``root``; returns (json path, raw JSON bytes, parsed JSON)."""
    path = generate_split(str(root), split, cfg, show_progress=False)
    with open(path, "rb") as f:
        raw = f.read()
    return path, raw, json.loads(raw)
