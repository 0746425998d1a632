"""Shared fixtures: where the Rust binaries are, and the Python helpers."""
import os
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts" / "python"))


def _bin(name):
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = pathlib.Path(os.environ.get(f"{name.upper().replace('-', '_')}_BIN", target / "debug" / name))
    if not path.exists():
        pytest.fail(f"{path} not found: build it first (scripts/test.sh does)")
    return str(path)


@pytest.fixture(scope="session")
def chess_shards_bin():
    return _bin("chess-shards")
