"""Progress as the service reports it: stage, megapixels, the segmenting rate and the time left."""
import time

import pytest

from backend.server.worker import LiveProgress


def test_rate_and_time_left_come_from_the_segmenting_stage_only():
    live = LiveProgress()
    assert live.snapshot() == {"stage": "queued", "done_mp": 0.0, "total_mp": None, "mp_per_s": None, "eta_s": None,
                               "unit": "MP"}
    live.report("loading model", 0.0, 4.0)
    time.sleep(0.05)  # loading is not segmenting: it does not lower the rate
    live.report("segmenting", 0.0, 4.0)
    time.sleep(0.1)
    live.report("segmenting", 1.0, 4.0)
    running = live.snapshot()
    assert running["stage"] == "segmenting" and 0 < running["mp_per_s"] <= 10.5  # 1 MP in >= 0.1 s
    assert running["eta_s"] == pytest.approx(3.0 / running["mp_per_s"])
    live.report("writing", 4.0, 4.0)
    finished = live.snapshot()
    time.sleep(0.05)
    assert live.snapshot()["mp_per_s"] == finished["mp_per_s"] and finished["eta_s"] is None
