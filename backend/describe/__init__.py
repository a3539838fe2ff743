"""``refer`` and ``ask`` jobs: a sentence about an area of a raster, answered by GeoMag as a mask or as text."""
