import threading

import pytest
import torch
import torch.nn.functional as F

from backend.models.cpu_workers import on_cores
from tests.helpers.checkpoints import tiny_clip, tiny_simfeatup
from tests.helpers.models import segmentor


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def state(_):
    return (threading.current_thread().name, torch.get_num_threads(), torch.is_grad_enabled(),
            torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))


def test_workers_run_on_one_core_each_under_the_callers_modes(two_threads):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        states = on_cores(state, range(4))
    assert all(name.startswith("rsov-cpu") for name, *_ in states)
    assert {tuple(rest) for _, *rest in states} == {(1, False, True, torch.bfloat16)}
    assert torch.get_num_threads() == 2  # given back to the caller


def test_one_thread_runs_in_the_callers_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert on_cores(state, range(2))[0][0] == threading.current_thread().name
    finally:
        torch.set_num_threads(before)


def test_windows_shared_among_workers_give_the_single_thread_logits(two_threads):
    model = segmentor(tiny_clip(), tiny_simfeatup())
    generator = torch.Generator().manual_seed(0)
    windows = torch.randn(3, 3, 64, 80, generator=generator)
    queries = F.normalize(torch.randn(4, 32, generator=generator), dim=-1)
    shared = model.net(windows, queries)
    torch.set_num_threads(1)
    alone = model.net(windows, queries)
    assert torch.equal(shared, alone)  # a window's logits do not depend on the number of cores
    torch.set_num_threads(2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model.net(windows, queries)
    assert mixed.dtype == torch.bfloat16  # the workers ran the ViT under the caller's autocast
    torch.testing.assert_close(mixed.float(), shared, rtol=0, atol=0.02)
