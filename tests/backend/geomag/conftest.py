"""Session-wide tiny GeoMag base models (written once) and one shared GeoMag (tests must not change it)."""
from __future__ import annotations

import pytest
import torch

from tests.helpers.geomag import tiny_geomag, tiny_geomag_config

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def geomag_folder(tmp_path_factory):
    """A folder holding the tiny LLaVA, BERT and SAM2 base models (built on first use)."""
    folder = tmp_path_factory.mktemp("geomag-bases")
    tiny_geomag_config(folder)
    return folder


@pytest.fixture(scope="session")
def geomag_model(geomag_folder):
    """A tiny GeoMag with randomised trainable parts, shared read-only by the tests of a session."""
    return tiny_geomag(geomag_folder)
