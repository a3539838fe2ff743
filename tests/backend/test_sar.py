"""SAR rasters as analysts have them become the encoder's 8-bit grey image, the same whatever their form."""
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from backend.engine import modality_mismatch, run
from backend.jobs import SegmentJob
from backend.models.cache import ModelCache
from backend.raster.source import RasterSource, ReadOptions

TRANSFORM = from_origin(500000.0, 4650000.0, 10.0, 10.0)


def backscatter(height=120, width=150, seed=0, looks=4.4):
    """Sentinel-1-like sigma0 (linear power): water, fields and a bright town, with speckle."""
    truth = np.full((height, width), 0.06)
    truth[:, : width // 3] = 0.003
    truth[height // 3: height // 2, width // 2: width // 2 + 30] = 2.0
    return truth * np.random.default_rng(seed).gamma(looks, 1 / looks, truth.shape)


def write_sar(path, bands, descriptions=(), dtype=None, tags=None, nodata=None):
    bands = np.asarray(bands)
    bands = bands[None] if bands.ndim == 2 else bands
    dtype = dtype or bands.dtype
    with rasterio.open(path, "w", driver="GTiff", height=bands.shape[1], width=bands.shape[2], count=len(bands),
                       dtype=dtype, crs="EPSG:32633", transform=TRANSFORM, nodata=nodata) as out:
        out.write(bands.astype(dtype))
        for index, text in enumerate(descriptions, 1):
            out.set_band_description(index, text)
        if tags:
            out.update_tags(**tags)
    return path


@pytest.mark.parametrize("bands, descriptions, tags, dtype, expected", [
    (2, ("VH", "VV"), None, "float32", ("sar", "bands named VH, VV")),
    (1, (), {"MISSION": "SENTINEL-1A"}, "uint8", ("sar", "SENTINEL-1")),
    (1, (), None, "complex64", ("sar", "complex")),
    (1, (), None, "uint16", ("sar", "1 uint16 band")),
    (2, (), None, "float32", ("sar", "2 float32 bands")),
    (3, (), None, "uint8", ("optical", "3 uint8 bands")),
    (4, (), None, "uint16", ("optical", "4 uint16 bands")),
    (1, (), None, "uint8", ("optical", "like the model's optical imagery")),
])
def test_modality_is_told_from_names_metadata_data_type_and_band_count(tmp_path, bands, descriptions, tags, dtype,
                                                                        expected):
    path = write_sar(tmp_path / "scene.tif", np.ones((bands, 20, 20)), descriptions, dtype, tags)
    source = RasterSource.open(path)
    assert source.modality == expected[0]
    assert expected[1].lower() in source.modality_reason.lower()


def test_one_8_bit_band_follows_the_model_and_passes_through_as_it_is(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (1, 40, 50), dtype=np.uint8)
    path = write_sar(tmp_path / "oem_sar.tif", pixels)
    source = RasterSource.open(path, ReadOptions(model_modality="sar"))
    assert source.modality == "sar" and source.sar.scale == "8-bit" and source.sar.stretch is None
    out, _ = source.read_all()
    assert all(np.array_equal(out[i], pixels[0]) for i in range(3))  # as the paired data sets ship it


def test_power_amplitude_db_uint16_and_complex_files_give_the_same_image(tmp_path):
    power = backscatter()
    amplitude = np.sqrt(power)
    phase = np.exp(1j * np.random.default_rng(7).uniform(0, 2 * np.pi, power.shape))
    files = {
        "power": write_sar(tmp_path / "sigma0.tif", power, ("VV",), "float32"),
        "amplitude": write_sar(tmp_path / "amp.tif", amplitude, ("Amplitude_VV",), "float32"),
        "db": write_sar(tmp_path / "db.tif", 10 * np.log10(power), ("VV",), "float32"),
        "uint16 digital numbers": write_sar(tmp_path / "dn.tif", np.round(amplitude * 20000), (), "uint16"),
        "complex": write_sar(tmp_path / "slc.tif", amplitude * phase, ("VV",), "complex64"),
    }
    images = {}
    for name, path in files.items():
        source = RasterSource.open(path)
        assert source.modality == "sar"
        images[name] = source.read_all()[0].astype(int)
    assert RasterSource.open(files["db"]).sar.scale == "db"
    assert RasterSource.open(files["amplitude"]).sar.scale == "amplitude"
    assert RasterSource.open(files["uint16 digital numbers"]).sar.scale == "amplitude"
    reference = images.pop("power")
    assert np.array_equal(reference[0], reference[2])  # grey in R, G and B
    for name, image in images.items():
        assert np.abs(image - reference).max() <= 2, name  # float32 rounding and the 16-bit quantisation
    # the stretch is the scene's 2-98 % of dB, clamped
    decibels = 10 * np.log10(power)
    low, high = np.percentile(decibels, (2, 98))
    expected = np.round((np.clip(decibels, low, high) - low) * 255 / (high - low))
    assert np.abs(reference[0] - expected).max() <= 1


def test_dual_pol_gives_co_cross_and_ratio_channels_and_the_default_is_the_co_pol_grey(tmp_path):
    vv, vh = backscatter(seed=1), 0.2 * backscatter(seed=2)
    path = write_sar(tmp_path / "s1_grd.tif", np.stack([vh, vv]), ("VH", "VV"), "float32")
    grey = RasterSource.open(path)
    assert grey.bands == (2,) and grey.sar.names == ("VV",)
    dual = RasterSource.open(path, ReadOptions(bands=(2, 1)))
    image, _ = dual.read_all()
    for channel, decibels in enumerate((10 * np.log10(vv), 10 * np.log10(vh), 10 * np.log10(vv / vh))):
        low, high = dual.sar.stretch[channel]
        expected = np.round((np.clip(decibels, low, high) - low) * 255 / (high - low))
        assert np.abs(image[channel] - expected).max() <= 1
    assert "dual-pol colour composite" in dual.describe() and "R co-pol" in dual.describe()


def test_a_fixed_db_range_zeros_and_nodata(tmp_path):
    power = backscatter()
    power[:5] = 0.0  # a dark border without a nodata tag: black, still segmented
    power[-5:] = -9999.0
    path = write_sar(tmp_path / "rtc.tif", power, ("VV",), "float32", nodata=-9999.0)
    source = RasterSource.open(path, ReadOptions(stretch=(-25.0, 0.0), sar_scale="power"))
    image, valid = source.read_all()
    assert valid[:5].all() and (image[:, :5] == 0).all() and not valid[-5:].any()
    decibels = 10 * np.log10(power[10:20])
    assert np.array_equal(image[0, 10:20], np.round((np.clip(decibels, -25, 0) + 25) * 255 / 25).astype(np.uint8))


def test_the_stretch_comes_from_the_whole_scene_so_an_aoi_keeps_its_look(tmp_path):
    path = write_sar(tmp_path / "scene.tif", backscatter(), ("VV",), "float32")
    whole = RasterSource.open(path)
    part = RasterSource.open(path, ReadOptions(aoi="500300,4648800,500900,4649600", speckle="lee"))
    assert np.array_equal(whole.sar.stretch, part.sar.stretch)


@pytest.mark.parametrize("options", [ReadOptions(speckle="refined-lee", speckle_window=9),
                                     ReadOptions(speckle="lee", resize_long_side=101)])
def test_blocks_of_a_filtered_scene_equal_the_whole_image_bit_for_bit(tmp_path, options):
    path = write_sar(tmp_path / "scene.tif", np.stack([backscatter(seed=3), backscatter(seed=4)]), ("VV", "VH"),
                     "float32")
    source = RasterSource.open(path, options)
    whole, whole_valid = source.read_all()
    with source.reader() as read:
        for row, col, height, width in ((0, 0, 50, 60), (17, 41, 45, 39), (60, 90, 41, 11)):
            block, valid = read(row, col, height, width)
            assert np.array_equal(block, whole[:, row:row + height, col:col + width])
            assert np.array_equal(valid, whole_valid[row:row + height, col:col + width])
    unfiltered, _ = RasterSource.open(path, ReadOptions(resize_long_side=options.resize_long_side)).read_all()
    assert whole[0].std() < unfiltered[0].std()  # the filter did something
    assert source.sar.looks == pytest.approx(4.4, rel=0.3) or options.resize_long_side


def test_streamed_segmentation_of_a_filtered_scene_is_the_same_for_every_strip_width(tiny_files, tmp_path):
    path = write_sar(tmp_path / "scene.tif", backscatter(240, 330, seed=5), ("VV",), "float32")
    common = dict(classes="water; field; town", clip_weights=str(tiny_files["open_clip"]), no_upsampler=True,
                  model="segearth-ov-sar", offline=True, speckle="refined-lee",
                  batch_size=1)  # one window per model call: a batch's make-up moves the last bits of a matmul
    outputs, cache = [], ModelCache()
    for strip_width in (230, 4096):
        out = tmp_path / f"probs_{strip_width}.tif"
        result = run(SegmentJob(path, out_raster=tmp_path / f"c_{strip_width}.tif", out_probs=out,
                                strip_width=strip_width, **common), models=cache)
        with rasterio.open(out) as probs:
            outputs.append(probs.read())
    assert np.array_equal(outputs[0], outputs[1])
    assert result.notes[0].startswith("SAR (auto: bands named VV)") and "refined-lee 7×7" in result.notes[0]
    assert len(result.notes) == 1  # a SAR model on SAR: no warning


def test_a_model_of_the_other_modality_is_a_warning_with_the_fix():
    assert modality_mismatch("sar", "segearth-ov-sar") is None and modality_mismatch("optical", "segearth-ov") is None
    warning = modality_mismatch("sar", "segearth-ov")
    assert "read as SAR" in warning and "choose the model segearth-ov-sar" in warning
    assert "choose the model segearth-ov," in modality_mismatch("optical", "segearth-ov-sar")
