import pytest

from backend.raster.tiling import centred_padding, grid_count, slide_windows


@pytest.mark.parametrize("size,expected", [(224, 1), (225, 2), (336, 2), (337, 3), (448, 3), (1024, 9), (100, 1)])
def test_grid_count_follows_the_authors_formula(size, expected):
    assert grid_count(size, 224, 112) == expected


def test_windows_cover_the_image_and_the_last_is_shifted_to_the_edge():
    windows = slide_windows(500, 300)
    assert len(windows) == grid_count(500, 224, 112) * grid_count(300, 224, 112)
    covered = [[0] * 300 for _ in range(500)]
    for w in windows:
        assert (w.height, w.width) == (224, 224)
        for y in range(w.row_off, w.row_off + w.height, 37):
            for x in range(w.col_off, w.col_off + w.width, 37):
                covered[y][x] += 1
    assert windows[-1].row_off + 224 == 500 and windows[-1].col_off + 224 == 300
    assert windows[0].row_off == windows[0].col_off == 0
    assert max(w.col_off for w in windows) == 300 - 224


def test_small_images_get_one_clipped_window_padded_to_the_patch_size():
    (window,) = slide_windows(100, 150)
    assert (window.row_off, window.col_off, window.height, window.width) == (0, 0, 100, 150)
    left, right, top, bottom = centred_padding(100, 150, 16)
    assert (100 + top + bottom) % 16 == 0 and (150 + left + right) % 16 == 0
    assert (left, right, top, bottom) == (5, 5, 6, 6)
    assert centred_padding(224, 224, 16) == (0, 0, 0, 0)


def test_the_raster_package_runs_without_torch():
    import subprocess
    import sys

    code = ("import sys, importlib; "
            "[importlib.import_module('backend.raster.' + m) for m in "
            "('aoi', 'files', 'grid', 'preview', 'source', 'tiling', 'vectorize', 'writers')]; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
