"""Staged outputs, the clean-up after runs that were killed outright, and a full disk in one sentence."""
import errno
import os
import subprocess
import sys

import pytest

from backend.errors import UserInputError
from backend.raster.files import LOCK_NAME, SCRATCH_PREFIX, Staging, _host, disk_errors, remove_debris


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
    import fcntl

    dead = tmp_path / f"{SCRATCH_PREFIX}{_host()}-{dead_pid()}-abc123"
    live = tmp_path / f"{SCRATCH_PREFIX}{_host()}-{dead_pid()}-def456"  # its PID means nothing here: it holds its lock
    other_host = tmp_path / f"{SCRATCH_PREFIX}another-machine-{dead_pid()}-ghi789"
    users_own = tmp_path / f"{SCRATCH_PREFIX}{_host()}-{dead_pid()}-my_backup"  # no lock file: not a run's folder
    for folder in (dead, live, other_host, users_own):
        folder.mkdir()
        (folder / "classes.tif").write_bytes(b"\0" * 1000)
        if folder is not users_own:
            (folder / LOCK_NAME).touch()
    with open(live / LOCK_NAME) as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the live run in another PID namespace does
        assert remove_debris(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other_host.name, users_own.name])


def test_a_dead_run_that_had_our_pid_is_debris(tmp_path):

    restarted = tmp_path / f"{SCRATCH_PREFIX}{_host()}-{os.getpid()}-abc123"  # PID 1 again after a container restart
    restarted.mkdir()
    (restarted / LOCK_NAME).touch()
    assert remove_debris(tmp_path) == [restarted]


def test_a_live_staging_folder_is_never_debris(tmp_path):
    with Staging() as staging:
        scratch = staging.scratch(tmp_path)
        assert remove_debris(tmp_path) == [] and scratch.exists()


def test_a_failed_commit_puts_every_old_file_back(tmp_path):
    first, second = tmp_path / "a.tif", tmp_path / "b.gpkg"
    first.write_text("old a")
    second.mkdir()  # a folder where the file should go: its rename fails
    with pytest.raises(OSError), Staging() as staging:
        staging.path_for(first).write_text("new a")
        staging.path_for(second).write_text("new b")
        staging.commit()
    assert first.read_text() == "old a" and second.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.gpkg"]


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   RuntimeError("TIFFAppendToStrip: Write error: No space left on device")])
def test_a_full_disk_is_one_sentence_naming_the_output(tmp_path, error):
    with pytest.raises(UserInputError, match=r"no space left on device writing .*c\.tif; free some space"):
        with disk_errors(tmp_path / "c.tif"):
            raise error
    with pytest.raises(ValueError):  # other errors pass through unchanged
        with disk_errors(tmp_path / "c.tif"):
            raise ValueError("something else")


def test_a_run_that_does_not_commit_removes_only_the_folders_it_made(tmp_path):
    (tmp_path / "keep").mkdir()  # the analyst's empty folder, named through a path that passes a missing one
    with Staging() as staging:
        staging.path_for(tmp_path / "new" / ".." / "keep" / "c.tif").write_text("partial")
        staging.path_for(tmp_path / "made" / "deeper" / "p.gpkg").write_text("partial")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"] and not any((tmp_path / "keep").iterdir())


def test_a_committed_run_keeps_the_folders_it_made(tmp_path):
    with Staging() as staging:
        staging.path_for(tmp_path / "new" / ".." / "keep" / "c.tif").write_text("classes")
        staging.commit()
    assert (tmp_path / "keep" / "c.tif").read_text() == "classes" and (tmp_path / "new").is_dir()
