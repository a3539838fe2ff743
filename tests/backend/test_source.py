"""Reading: bands, one stretch per raster, nodata/mask/alpha, AOIs in any CRS, resampling on read."""
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from backend.errors import UserInputError
from backend.raster.source import ReadOptions, RasterSource

UTM = "EPSG:32633"
ORIGIN = from_origin(500000.0, 4650000.0, 2.0, 2.0)


def write(path, data, crs=UTM, transform=ORIGIN, **profile):
    count, height, width = data.shape
    with rasterio.open(path, "w", driver="GTiff", height=height, width=width, count=count, dtype=data.dtype,
                       crs=crs, transform=transform, **profile) as out:
        out.write(data)
    return path


def test_bands_are_chosen_and_stretched_alike_in_every_block(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 4000, (4, 300, 200)).astype(np.uint16)
    data[3] += 6000  # band 4 brighter: its own stretch
    source = RasterSource.open(write(tmp_path / "s2.tif", data), ReadOptions(bands=(4, 3, 2)))
    assert source.bands == (4, 3, 2)
    low, high = source.stretch[0]
    assert 6000 < low < 6200 and 9700 < high < 10000  # 2nd and 98th percentiles of band 4
    whole, valid = source.read_all()
    with source.reader() as read:
        block, _ = read(100, 50, 120, 90)
    assert np.array_equal(block, whole[:, 100:220, 50:140]) and valid.all()
    expected = np.clip((data[3].astype(np.float32) - low) * np.float32(255 / (high - low)), 0, 255).round()
    assert np.array_equal(whole[0], expected.astype(np.uint8))


def test_one_band_is_repeated_and_a_given_stretch_is_used(tmp_path):
    data = np.linspace(-10, 30, 40 * 50, dtype=np.float32).reshape(1, 40, 50)
    source = RasterSource.open(write(tmp_path / "sar.tif", data), ReadOptions(stretch=(0.0, 20.0)))
    pixels, _ = source.read_all()
    assert np.array_equal(pixels[0], pixels[2])
    assert pixels[0, 0, 0] == 0 and pixels[0, -1, -1] == 255
    assert pixels[0].flat[np.argmin(np.abs(data[0].ravel() - 10.0))] in (127, 128)


def test_nodata_mask_and_alpha_are_never_valid(tmp_path):
    data = np.full((3, 30, 40), 100, np.uint8)
    data[:, :10] = 0
    source = RasterSource.open(write(tmp_path / "nodata.tif", data, nodata=0))
    assert not source.read_all()[1][:10].any() and source.read_all()[1][10:].all()
    rgba = np.concatenate([np.full((3, 30, 40), 100, np.uint8), np.full((1, 30, 40), 255, np.uint8)])
    rgba[3, :, :5] = 0
    alpha = write(tmp_path / "rgba.tif", rgba, photometric="RGB", alpha="YES")
    assert not RasterSource.open(alpha).read_all()[1][:, :5].any()
    floats = np.ones((3, 30, 40), np.float32)
    floats[1, 3, 4] = np.nan
    assert RasterSource.open(write(tmp_path / "nan.tif", floats)).read_all()[1].sum() == 30 * 40 - 1


def test_aoi_in_another_crs_limits_the_grid_and_masks_outside_the_polygon(tmp_path):
    path = write(tmp_path / "scene.tif", np.full((3, 200, 300), 50, np.uint8))
    from pyproj import Transformer

    to_wgs84 = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    # a triangle over columns 100-200, rows 50-150, given in lon/lat
    corners = [(500000 + 2 * c, 4650000 - 2 * r) for c, r in ((100, 150), (200, 150), (150, 50))]
    triangle = shapely.Polygon([to_wgs84.transform(x, y) for x, y in corners])
    source = RasterSource.open(path, ReadOptions(aoi=triangle.wkt, aoi_crs="EPSG:4326"))
    assert (source.window.col_off, source.window.row_off) == (100, 50)
    assert source.width == 100 and source.height in (100, 101)  # the lon/lat edge bows by millimetres
    _, valid = source.read_all()
    assert valid[95, 50] and not valid[5, 5] and not valid[60, 10]
    assert abs(valid.sum() - 5000) < 150 and not valid[100:].any()  # half of the 100 x 100 box
    file_aoi = tmp_path / "aoi.gpkg"
    import geopandas as gpd

    gpd.GeoDataFrame(geometry=[triangle], crs="EPSG:4326").to_file(file_aoi, layer="area")
    from_file = RasterSource.open(path, ReadOptions(aoi=str(file_aoi)))
    assert np.array_equal(from_file.read_all()[1], valid)
    box = RasterSource.open(path, ReadOptions(aoi="500020,4649800,500100,4649900"))
    assert (box.window.col_off, box.window.row_off, box.width, box.height) == (10, 50, 40, 50)


def test_gsd_resamples_on_read(tmp_path):
    data = np.repeat(np.repeat(np.arange(50, dtype=np.uint8).reshape(1, 5, 10), 40, axis=1), 40, axis=2)
    source = RasterSource.open(write(tmp_path / "fine.tif", np.repeat(data, 3, axis=0)), ReadOptions(gsd=8.0))
    assert (source.height, source.width) == (50, 100) and source.resampled
    assert source.transform.a == 8.0 and source.transform.c == 500000.0
    pixels, _ = source.read_all()
    assert pixels[0, 0, 0] == 0 and pixels[0, 49, 99] == 49  # 4x4 averages of constant 40x40 blocks


@pytest.mark.parametrize("options,message", [
    (ReadOptions(bands=(4, 3, 2)), "has no band 4; it has bands 1 to 3"),
    (ReadOptions(aoi="0,0,10,10"), "aoi does not intersect"),
    (ReadOptions(aoi="POLYGON((500000 4649000, 500100 4649100, 500100 4649000, 500000 4649100, 500000 4649000))"),
     "is not a valid geometry \\(Self-intersection"),
    (ReadOptions(aoi="POINT (1 2)"), "has no area"),
    (ReadOptions(aoi="not a geometry"), "is neither XMIN,YMIN,XMAX,YMAX, a WKT geometry, nor an existing vector"),
    (ReadOptions(aoi="500000,4649000,500100,4649100", aoi_crs="EPSG:999999"), "aoi_crs 'EPSG:999999' is not a"),
    (ReadOptions(aoi="5,4,1,2"), "XMIN < XMAX"),
    (ReadOptions(gsd=-1.0), "gsd -1.0 must be a positive number"),
    (ReadOptions(gsd=2.0, resize_long_side=100), "give only one"),
])
def test_bad_read_options_are_explained(tmp_path, options, message):
    path = write(tmp_path / "scene.tif", np.zeros((3, 600, 600), np.uint8))
    with pytest.raises(UserInputError, match=message):
        RasterSource.open(path, options)


def test_bad_rasters_are_explained(tmp_path):
    with pytest.raises(UserInputError, match="does not exist; check the path"):
        RasterSource.open(tmp_path / "missing.tif")
    truncated = tmp_path / "truncated.tif"
    write(truncated, np.random.default_rng(0).integers(0, 255, (3, 512, 512)).astype(np.uint8), compress="deflate")
    truncated.write_bytes(truncated.read_bytes()[:3000])
    with pytest.raises(UserInputError, match="truncated.tif cannot be read"):
        RasterSource.open(truncated)
    no_crs = write(tmp_path / "no_crs.tif", np.zeros((3, 20, 20), np.uint8), crs=None)
    with pytest.raises(UserInputError, match="has a geotransform but no CRS; assign one"):
        RasterSource.open(no_crs)
    plain = tmp_path / "photo.png"
    with rasterio.open(plain, "w", driver="PNG", height=20, width=30, count=3, dtype="uint8") as out:
        out.write(np.zeros((3, 20, 30), np.uint8))
    source = RasterSource.open(plain)
    assert source.crs is None and (source.height, source.width) == (20, 30)
    with pytest.raises(UserInputError, match="needs a georeferenced raster"):
        RasterSource.open(plain, ReadOptions(gsd=1.0))


def test_aoi_file_layers(tmp_path):
    import geopandas as gpd

    path = write(tmp_path / "scene.tif", np.zeros((3, 100, 100), np.uint8))
    aoi = tmp_path / "aoi.gpkg"
    gpd.GeoDataFrame(geometry=[shapely.box(500010, 4649900, 500050, 4649950)], crs=UTM).to_file(aoi, layer="fields")
    with pytest.raises(UserInputError, match="has no layer 'roads'; its layers are fields"):
        RasterSource.open(path, ReadOptions(aoi=str(aoi), aoi_layer="roads"))
    assert RasterSource.open(path, ReadOptions(aoi=str(aoi), aoi_layer="fields")).width == 20


def test_aoi_edges_take_every_pixel_they_touch(tmp_path):
    path = write(tmp_path / "scene.tif", np.zeros((3, 100, 100), np.uint8))
    source = RasterSource.open(path, ReadOptions(aoi="500011,4649831,500022.5,4649842.4"))  # columns 5.5-11.25
    assert (source.window.col_off, source.window.width, source.window.row_off, source.window.height) == (5, 7, 78, 7)
    thin = RasterSource.open(path, ReadOptions(aoi="500011,4649831,500011.4,4649842"))  # narrower than a pixel
    assert thin.window.width == 1
    circle = shapely.Point(500100, 4649900).buffer(40, quad_segs=64)
    assert len(circle.wkt) > 300  # longer than a file name may be
    assert RasterSource.open(path, ReadOptions(aoi=circle.wkt)).window.width == 40


def test_aoi_in_pixel_coordinates_on_a_plain_image(tmp_path):
    plain = tmp_path / "photo.png"
    with rasterio.open(plain, "w", driver="PNG", height=200, width=300, count=3, dtype="uint8") as out:
        out.write(np.zeros((3, 200, 300), np.uint8))
    source = RasterSource.open(plain, ReadOptions(aoi="10,20,110,220"))
    assert (source.window.col_off, source.window.row_off, source.width, source.height) == (10, 20, 100, 180)
