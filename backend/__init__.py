"""rs-openvocab engine: open-vocabulary segmentation of remote-sensing rasters."""
from backend.version import __version__

__all__ = ["__version__"]
