"""What every trainer's tests read back from a run: its log, its last.pt, a command's error line."""
from __future__ import annotations

import csv
from pathlib import Path

import torch


def log_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def last_state(out_dir: Path) -> dict:
    return torch.load(out_dir / "last.pt", weights_only=True)


def error_line(capsys) -> str:
    """The one 'error:' line a training command printed, with no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def assert_same_end(out_dir: Path, reference_state: dict, reference_rows: list[dict], steps: int) -> None:
    """A resumed run ends where the uninterrupted one did: step, weights, and each step logged once, equal."""
    state = last_state(out_dir)
    assert (state["step"], state["epoch"], state["batch"]) == (steps, 2, 0)
    assert state["module"].keys() == reference_state["module"].keys()
    for key, value in reference_state["module"].items():
        assert torch.allclose(state["module"][key], value, rtol=0, atol=1e-6), key
    rows = log_rows(out_dir / "log.csv")
    assert [int(row["step"]) for row in rows] == list(range(1, steps + 1))  # each step logged once
    assert [row["total"] for row in rows] == [row["total"] for row in reference_rows]
