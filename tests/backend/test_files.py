"""Staged outputs, the clean-up after runs that were killed outright, and a full disk in one sentence."""
import errno
import os
import subprocess
import sys

import pytest

from backend.errors import UserInputError
from backend.raster.files import SCRATCH_PREFIX, Staging, _host, disk_errors, remove_debris


def test_staged_files_replace_their_targets_only_at_commit(tmp_path):
    target = tmp_path / "result.tif"
    target.write_text("old")
    with Staging() as staging:
        staged = staging.path_for(target)
        staged.write_text("new")
        assert target.read_text() == "old"
        staging.commit()
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["result.tif"]  # the scratch folder is gone


def test_an_error_before_commit_leaves_targets_and_no_scratch(tmp_path):
    target = tmp_path / "result.tif"
    target.write_text("old")
    with pytest.raises(RuntimeError), Staging() as staging:
        staging.path_for(target).write_text("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["result.tif"]


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_debris_of_dead_runs_on_this_host_is_removed(tmp_path):
    dead = tmp_path / f"{SCRATCH_PREFIX}{_host()}-{dead_pid()}-abc123"
    alive = tmp_path / f"{SCRATCH_PREFIX}{_host()}-{os.getppid()}-def456"
    other_host = tmp_path / f"{SCRATCH_PREFIX}another-machine-{dead_pid()}-ghi789"
    for folder in (dead, alive, other_host):
        folder.mkdir()
        (folder / "classes.tif").write_bytes(b"\0" * 1000)
    (tmp_path / "user-file.tif").write_text("mine")
    assert remove_debris(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other_host.name, "user-file.tif"])


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("TIFFAppendToStrip: Write error: No space left on device")])
def test_a_full_disk_is_one_sentence_naming_the_output(tmp_path, error):
    with pytest.raises(UserInputError, match=r"no space left on device writing .*c\.tif; free some space"):
        with disk_errors(tmp_path / "c.tif"):
            raise error
    with pytest.raises(ValueError):  # other errors pass through unchanged
        with disk_errors(tmp_path / "c.tif"):
            raise ValueError("something else")
