"""Draw docs/sar-conversions.png: one simulated dual-pol scene read each way ``rsov segment`` can read it.

The scene is simulated from the bundled optical sample (no SAR data ships with the project):
each pixel gets a Sentinel-1-like VV and VH backscatter for what it looks like (water, vegetation,
bright built-up ground, the rest), then multiplicative gamma speckle of 4.4 looks (IW GRDH).
Every panel is the engine's own reading (``RasterSource``) of that file.

    .venv/bin/python docs/make_sar_figure.py            # writes docs/sar-conversions.png
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.raster.source import RasterSource, ReadOptions  # noqa: E402

SAMPLE = ROOT / "resources" / "samples" / "sample.tif"
TARGET = ROOT / "docs" / "sar-conversions.png"
CROP = 240  # pixels of the scene's centre shown per panel
LOOKS = 4.4
PANELS = (  # ASCII titles: the default font has no typographic dashes
    ("linear power, 2-98 % (as optical)", ReadOptions(modality="optical", bands=(1,))),
    ("dB, scene 2-98 % (default)", ReadOptions()),
    ("dB, fixed -25...0 dB", ReadOptions(stretch=(-25.0, 0.0))),
    ("Lee 7x7, then dB", ReadOptions(speckle="lee")),
    ("refined Lee 7x7, then dB", ReadOptions(speckle="refined-lee")),
    ("dual-pol: VV, VH, VV-VH", ReadOptions(bands=(1, 2))),
)


def simulate_sentinel1(target: Path, seed: int = 0) -> Path:
    """A VV/VH sigma0 (linear power) GeoTIFF on the sample's grid, classes guessed from its colours."""
    with rasterio.open(SAMPLE) as sample:
        rgb = sample.read().astype(np.float64) / 255
        profile = sample.profile
    red, green, blue = rgb
    brightness = rgb.mean(axis=0)
    water = (blue > red) & (brightness < 0.35)
    vegetation = (green > red) & ~water
    built = (brightness > 0.55) & ~water
    vv_db = np.select([water, built, vegetation], [-22.0, -3.0, -11.0], -14.0) + 4 * (brightness - 0.5)
    vh_db = vv_db - np.select([water, built, vegetation], [7.0, 9.0, 5.0], 6.0)
    rng = np.random.default_rng(seed)
    bands = [10 ** (db / 10) * rng.gamma(LOOKS, 1 / LOOKS, db.shape) for db in (vv_db, vh_db)]
    profile.update(count=2, dtype="float32", photometric="MINISBLACK", nodata=None)
    with rasterio.open(target, "w", **profile) as out:
        out.write(np.stack(bands).astype(np.float32))
        out.set_band_description(1, "VV")
        out.set_band_description(2, "VH")
        out.update_tags(MISSION="simulated Sentinel-1 IW GRDH", UNITS="sigma0, linear power")
    return target


def panel(path: Path, options: ReadOptions) -> Image.Image:
    source = RasterSource.open(path, options)
    pixels, _ = source.read_all()
    top, left = (source.height - CROP) // 2, (source.width - CROP) // 2
    return Image.fromarray(np.moveaxis(pixels[:, top:top + CROP, left:left + CROP], 0, -1))


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        scene = simulate_sentinel1(Path(folder) / "s1_simulated.tif")
        images = [(title, panel(scene, options)) for title, options in PANELS]
    font = ImageFont.load_default(size=14)
    label, gap, columns = 26, 6, 3
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * (CROP + gap) + gap, rows * (CROP + label + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for index, (title, image) in enumerate(images):
        x = gap + (index % columns) * (CROP + gap)
        y = gap + (index // columns) * (CROP + label + gap)
        draw.text((x, y + 4), title, fill="black", font=font)
        sheet.paste(image, (x, y + label))
    sheet.save(TARGET, optimize=True)
    print(f"wrote {TARGET} ({TARGET.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
