"""The batch runner's bookkeeping when a process of its pool dies: scenes that finished count, the others fail."""
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

from backend.batch.inputs import Scene
from backend.batch.manifest import scene_row
from backend.batch.runner import _pool_round


class Job:
    def segment_job(self, scene: Scene) -> str:
        return scene.name


class BrokenPool:
    """A pool whose process of scene ``dead`` died after the others had finished theirs."""

    def __init__(self, dead: str) -> None:
        self.dead = dead

    def submit(self, function, scene: Scene, scene_job) -> Future:
        future = Future()
        if scene.name == self.dead:
            future.set_exception(BrokenProcessPool("a process died"))
        else:
            future.set_result(scene_row(scene, 1.0, error=f"{scene.name} ran"))  # a row the process returned
        return future


def test_a_broken_pool_records_the_finished_scenes_and_fails_only_the_others():
    for dead in ("a", "b", "c"):
        rows, waiting = [], [Scene(name, f"/{name}.tif") for name in ("a", "b", "c", "d")]
        _pool_round(Job(), BrokenPool(dead), 3, waiting, rows.append, None)
        assert [scene.name for scene in waiting] == ["d"]  # for the next pool
        assert [(row["scene"], row["error"].split(" (")[0]) for row in rows] == [
            (name, "a worker process of the batch died" if name == dead else f"{name} ran") for name in "abc"]
