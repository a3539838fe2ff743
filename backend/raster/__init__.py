"""Raster input/output and the window grid that inference slides over."""
