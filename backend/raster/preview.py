"""The PNG preview: the image and its colour-coded classes side by side, with a legend."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.raster.writers import CLASS_NODATA, class_colors


def write_preview_png(target: str | Path, photo: np.ndarray, classes: np.ndarray, class_names: list[str]) -> None:
    """The image (3, h, w) and its colour-coded classes (h, w) side by side, with a legend strip."""
    from PIL import Image, ImageDraw

    palette = np.array(class_colors(len(class_names)) + [(0, 0, 0)] * (256 - len(class_names)), dtype=np.uint8)
    photo = np.transpose(photo, (1, 2, 0))
    valid = classes != CLASS_NODATA
    blend = photo.copy()
    blend[valid] = (0.45 * photo[valid] + 0.55 * palette[classes[valid]]).astype(np.uint8)
    height, width = classes.shape
    legend_height = 18 * len(class_names) + 8
    canvas = Image.new("RGB", (2 * width + 10, height + legend_height), (255, 255, 255))
    canvas.paste(Image.fromarray(photo), (0, 0))
    canvas.paste(Image.fromarray(blend), (width + 10, 0))
    draw = ImageDraw.Draw(canvas)
    for index, name in enumerate(class_names):
        top = height + 4 + 18 * index
        draw.rectangle([4, top, 18, top + 14], fill=tuple(int(v) for v in palette[index]))
        share = 100.0 * float((classes[valid] == index).mean()) if valid.any() else 0.0
        draw.text((24, top + 1), f"{index} {name}  {share:.1f}%", fill=(0, 0, 0))
    canvas.save(target, format="PNG")
