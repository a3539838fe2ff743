"""Runs on a Ray cluster: one raster's column strips (``strips``) and many scenes (``backend.batch``)."""
