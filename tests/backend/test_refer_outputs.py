"""The refer mask on the raster's grid: the model's probability placed in its box, sampled, thresholded."""
import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box as shapely_box

from backend.describe.area import fitted_size
from backend.describe.refer import write_mask_rasters
from backend.models.geomag.config import Box
from backend.raster.grid import Grid

GRID = Grid(60, 80, from_origin(1000.0, 2000.0, 2.0, 2.0), rasterio.crs.CRS.from_epsg(32633))


def _written(tmp_path, probability, box, threshold=0.5, aoi=None):
    mask, confidence = tmp_path / "mask.tif", tmp_path / "confidence.tif"
    count = write_mask_rasters(GRID, aoi, probability, box, threshold, mask, confidence)
    with rasterio.open(mask) as out:
        return count, out.read(1), out.read(2)


def test_the_probability_fills_its_box_and_nothing_else(tmp_path):
    probability = np.zeros((10, 20), np.float32)
    probability[:, :10] = 1.0  # the left half of the box is the target
    count, target, percent = _written(tmp_path, probability, Box(20, 10, 60, 30))
    assert count == (target == 1).sum()
    inside = target[10:30, 20:60]
    assert (inside[:, :19] == 1).all() and (inside[:, 21:] == 0).all()  # one sampled column of blend at the edge
    outside = target.copy()
    outside[10:30, 20:60] = 0
    assert (outside == 0).all() and (percent[target == 0] < 50).all()
    assert percent[15, 25] == 100


def test_the_aoi_is_nodata_outside_and_the_threshold_applies(tmp_path):
    probability = np.full((4, 4), 0.4, np.float32)
    aoi = shapely_box(1000.0, 2000.0 - 40.0, 1080.0, 2000.0)  # the top 20 rows, the left 40 columns
    count, target, percent = _written(tmp_path, probability, Box(0, 0, 80, 60), threshold=0.35, aoi=aoi)
    assert (target[:20, :40] == 1).all() and (target[20:, :] == 255).all() and (target[:, 40:] == 255).all()
    assert count == 20 * 40 and (percent[:20, :40] == 40).all()


def test_fitted_size_never_scales_up():
    assert fitted_size(300, 400, 1024) == (300, 400)
    assert fitted_size(4096, 2048, 1024) == (1024, 512)
