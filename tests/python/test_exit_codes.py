"""The same mistake gets the same exit code, and the same kind of message,
from every tool (chess_cli's map: 1 check failed, 2 usage, 3 input,
4 output, 5 runtime), run as a user would run them."""
import re
import shutil
import subprocess

import pytest

from conftest import _bin

TOOLS = ("chess-ingest", "chess-shards", "chess-train")


@pytest.fixture(scope="module")
def bins():
    return {t: _bin(t) for t in TOOLS}


@pytest.fixture(scope="module")
def dataset(bins, tmp_path_factory):
    root = tmp_path_factory.mktemp("exit") / "ds"
    subprocess.run([bins["chess-shards"], "demo", "--out", str(root), "--count", "8", "--size", "32", "-q"], check=True)
    return root


def run(bins, tool, *args):
    r = subprocess.run([bins[tool], *map(str, args)], capture_output=True, text=True, timeout=300)
    return r.returncode, r.stderr


def assert_one_error_line(tool, stderr, *names):
    lines = [l for l in stderr.splitlines() if l.startswith(f"{tool}: error: ")]
    assert len(lines) == 1, stderr
    for n in names:
        assert str(n) in lines[0], (n, lines[0])
    # Each cause is said once (no "X: X" from a cause repeated by its wrapper).
    parts = [p.strip() for p in lines[0].split(": ")[2:] if len(p.strip()) > 8]
    assert len(parts) == len(set(parts)), lines[0]


def test_a_missing_input_is_3_everywhere(bins, tmp_path):
    missing = tmp_path / "no-such-thing"
    cases = {
        "chess-ingest": ["dicom", missing, "--out", tmp_path / "o1"],
        "chess-shards": ["verify", missing],
        "chess-train": ["pretrain", missing, "--out", tmp_path / "o2", "--steps", "1"],
    }
    for tool, args in cases.items():
        code, err = run(bins, tool, *args)
        assert code == 3, (tool, code, err)
        assert_one_error_line(tool, err, missing)


def test_a_bad_value_or_flag_is_2_everywhere(bins, dataset, tmp_path):
    cases = {
        "chess-ingest": ["dicom", dataset, "--out", tmp_path / "o1", "--size", "0"],
        "chess-shards": ["demo", "--out", tmp_path / "o2", "--size", "0"],
        "chess-train": ["pretrain", dataset, "--out", tmp_path / "o3", "--size", "0", "--steps", "1"],
    }
    for tool, args in cases.items():
        code, err = run(bins, tool, *args)
        assert code == 2, (tool, code, err)
        assert_one_error_line(tool, err, "size")
        code, err = run(bins, tool, "--no-such-flag")
        assert code == 2, (tool, code, err)


def test_an_unwritable_output_is_4_everywhere(bins, dataset, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "out"
    inp = tmp_path / "in"
    inp.mkdir()
    cases = {
        "chess-ingest": ["dicom", inp, "--out", out],
        "chess-shards": ["demo", "--out", out, "--count", "2", "--size", "16"],
        "chess-train": ["pretrain", dataset, "--out", out, "--steps", "1", "--size", "32", "--batch-size", "4",
                        "--queue", "8", "--threads", "1"],
    }
    for tool, args in cases.items():
        code, err = run(bins, tool, *args)
        assert code == 4, (tool, code, err)
        assert_one_error_line(tool, err, out)


def test_an_existing_dataset_at_the_output_is_4(bins, dataset, tmp_path):
    code, err = run(bins, "chess-shards", "demo", "--out", dataset, "--count", "2", "--size", "16")
    assert code == 4, err
    assert_one_error_line("chess-shards", err, dataset)
    # An import into a dataset it did not make (here chess-shards demo's).
    csv = tmp_path / "pairs.csv"
    csv.write_text("source,target\n")
    code, err = run(bins, "chess-ingest", "pairs", csv, "--out", dataset, "-q")
    assert code == 4, err
    assert_one_error_line("chess-ingest", err, dataset)


def test_a_failed_check_is_1(bins, dataset, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    assert run(bins, "chess-shards", "verify", copy)[0] == 0
    shard = sorted((copy / "shards").glob("*.tar"))[0]
    data = bytearray(shard.read_bytes())
    data[1024:1040] = b"\xff" * 16  # inside the first member's data
    shard.write_bytes(bytes(data))
    code, err = run(bins, "chess-shards", "verify", copy)
    assert code == 1, err


@pytest.mark.parametrize("tool", TOOLS)
def test_every_help_ends_with_the_table(bins, tool):
    out = subprocess.run([bins[tool], "--help"], capture_output=True, text=True, check=True).stdout
    table = out[out.index("Exit codes"):]
    assert re.findall(r"^\s+([0-5])\s", table, re.M) == list("012345"), table
