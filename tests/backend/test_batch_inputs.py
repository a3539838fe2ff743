"""The scenes of a batch: every form of INPUTS, the names outputs get, and one sentence for each bad input."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from backend.batch.inputs import Scene, base_folder, gdal_source, list_scenes
from backend.errors import UserInputError
from tests.helpers.rasters import write_scene


@pytest.fixture
def tiles(tmp_path):
    """tiles/a.tif, tiles/b.tif, tiles/sub/c.tif, and files that are no rasters."""
    folder = tmp_path / "tiles"
    for name in ("a.tif", "b.tif", "sub/c.tif"):
        write_scene(folder / name, 8, 8)
    (folder / "notes.txt").write_text("not a raster")
    (folder / "a.tif.aux.xml").write_text("<PAMDataset/>")
    return folder


def test_a_folder_gives_every_raster_in_it_and_its_subfolders_named_by_stem(tiles):
    scenes = list_scenes(str(tiles))
    assert scenes == [Scene("a", str(tiles / "a.tif")), Scene("b", str(tiles / "b.tif")),
                      Scene("c", str(tiles / "sub" / "c.tif"))]


def test_a_glob_gives_the_rasters_it_matches(tiles):
    assert [scene.name for scene in list_scenes(str(tiles / "*.tif"))] == ["a", "b"]
    assert [scene.name for scene in list_scenes(str(tiles / "**" / "*.tif"))] == ["a", "b", "c"]


def test_a_text_list_skips_comments_and_blank_lines_and_reads_urls_through_gdal(tiles):
    listing = tiles / "scenes.txt"
    listing.write_text("# my scenes\n\na.tif\n  sub/c.tif  \nhttps://example.com/cogs/d.tif?sig=1\n"
                       "s3://bucket/e.tif\ngs://bucket/f.tif\n/vsizip/g.zip/g.tif\n")
    scenes = list_scenes(str(listing))
    assert [scene.name for scene in scenes] == ["a", "c", "d", "e", "f", "g"]
    assert [scene.source for scene in scenes] == [
        str(tiles / "a.tif"), str(tiles / "sub" / "c.tif"), "/vsicurl/https://example.com/cogs/d.tif?sig=1",
        "/vsis3/bucket/e.tif", "/vsigs/bucket/f.tif", "/vsizip/g.zip/g.tif"]


@pytest.mark.parametrize("header,column", [("id,href,cloud", 1), ("name,Path", 1), ("file,other", 0)])
def test_a_csv_list_takes_the_path_url_href_or_source_column_else_the_first(tiles, header, column):
    listing = tiles / "scenes.csv"
    rows = [["x", "y", "z"][:len(header.split(","))] for _ in range(2)]
    rows[0][column], rows[1][column] = "a.tif", "b.tif"
    listing.write_text(header + "\n" + "\n".join(",".join(row) for row in rows) + "\n")
    assert [scene.source for scene in list_scenes(str(listing))] == [str(tiles / "a.tif"), str(tiles / "b.tif")]


def test_repeated_names_get_a_number_in_input_order_and_names_are_file_name_safe(tiles):
    write_scene(tiles / "x" / "a.tif", 8, 8)
    write_scene(tiles / "y" / "A.tif", 8, 8)
    write_scene(tiles / "z" / "a-probs.tif", 8, 8)  # a's probability raster would have its name
    listing = tiles / "scenes.txt"
    listing.write_text("a.tif\nx/a.tif\ny/A.tif\nz/a-probs.tif\nhttps://h/w%20eird%3Bname.tif\nhttps://h/...tif\n")
    assert [scene.name for scene in list_scenes(str(listing))] == ["a", "a-2", "A-3", "a-probs-2", "w_20eird_3Bname",
                                                                   "scene"]


def stac_item(item_id, assets):
    return {"type": "Feature", "stac_version": "1.0.0", "id": item_id, "properties": {}, "geometry": None,
            "assets": assets, "links": []}


def test_a_stac_item_collection_gives_each_items_visual_asset_by_item_id(tiles):
    collection = {"type": "FeatureCollection", "features": [
        stac_item("S2A_1", {"visual": {"href": "./a.tif", "type": "image/tiff; application=geotiff"},
                            "thumbnail": {"href": "a.jpg", "type": "image/jpeg"}, "B04": {"href": "a4.tif"}}),
        stac_item("S2A_2", {"visual": {"href": "https://example.com/b.tif"}, "B04": {"href": "b4.tif"}})]}
    (tiles / "search.json").write_text(json.dumps(collection))
    assert list_scenes(str(tiles / "search.json")) == [Scene("S2A_1", str(tiles / "a.tif")),
                                                      Scene("S2A_2", "/vsicurl/https://example.com/b.tif")]
    assert [scene.source for scene in list_scenes(str(tiles / "search.json"), "B04")] == [str(tiles / "a4.tif"),
                                                                                          str(tiles / "b4.tif")]


def test_without_visual_each_items_one_geotiff_asset_is_taken_and_one_item_is_accepted(tiles):
    item = stac_item("one", {"data": {"href": "sub/c.tif"}, "meta": {"href": "c.xml", "type": "application/xml"}})
    (tiles / "item.geojson").write_text(json.dumps(item))
    assert list_scenes(str(tiles / "item.geojson")) == [Scene("one", str(tiles / "sub" / "c.tif"))]


def test_items_with_several_geotiffs_ask_for_the_asset_by_its_keys(tiles):
    collection = {"type": "FeatureCollection", "features": [
        stac_item("two", {"B04": {"href": "b4.tif"}, "B08": {"href": "b8.tif"}})]}
    (tiles / "search.json").write_text(json.dumps(collection))
    with pytest.raises(UserInputError) as caught:
        list_scenes(str(tiles / "search.json"))
    assert "item two has 2 GeoTIFF assets" in str(caught.value) and "B04, B08" in str(caught.value)
    assert caught.value.render(lambda name: "--" + name).count("--asset") == 1
    with pytest.raises(UserInputError, match=r"asset 'visual' is not an asset of item two .*\(its assets: B04, B08\)"):
        list_scenes(str(tiles / "search.json"), "visual")


@pytest.mark.parametrize("name,content,words", [
    ("missing.txt", None, "missing.txt does not exist; check the path"),
    ("empty.txt", "# nothing yet\n\n", "names no scene"),
    ("bad.json", "{not json", "is not valid JSON (Expecting property name"),
    ("plain.json", '{"type": "FeatureCollection", "features": [{"type": "Feature"}]}', "is not a STAC ItemCollection"),
    ("noheader.csv", "", "has no header row"),
    ("latin.txt", b"caf\xe9.tif\n", "is not UTF-8 text"),
    ("notes.pdf", "x", "is neither a list (.txt, .csv), a STAC ItemCollection (.json) nor a raster"),
    ("nomatch/*.tif", None, "matches no raster file"),
])
def test_a_bad_input_is_one_sentence_naming_inputs(tmp_path, name, content, words):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(UserInputError) as caught:
        list_scenes(str(path))
    sentence = caught.value.render(lambda field: "INPUTS" if field == "inputs" else "--" + field)
    assert words in sentence and sentence.startswith("INPUTS ") and sentence.endswith(".")
    assert "\n" not in sentence


def test_sources_keep_urls_whole_and_resolve_relative_paths_from_the_list(tmp_path):
    assert gdal_source("http://127.0.0.1:8000/a.tif", tmp_path) == "/vsicurl/http://127.0.0.1:8000/a.tif"
    assert gdal_source("file:///data/a.tif", tmp_path) == "/data/a.tif"
    assert gdal_source("../a.tif", tmp_path / "lists") == str(tmp_path / "lists" / ".." / "a.tif")
    assert base_folder(str(tmp_path / "tiles" / "*" / "*.tif")) == tmp_path / "tiles"
    assert base_folder(str(tmp_path / "list.txt")) == tmp_path


@pytest.fixture
def web_folder(tmp_path):
    """A folder served over HTTP on 127.0.0.1 by a separate process (GDAL holds the GIL while it reads a URL, so
    a server thread in this process could not answer)."""
    folder = tmp_path / "web"
    folder.mkdir()
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                               str(folder)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = re.search(r"port (\d+)", server.stdout.readline()).group(1)
    yield folder, f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


def test_a_list_of_urls_is_segmented_through_vsicurl(web_folder, tmp_path, tiny_files):
    from backend.batch.job import BatchJob
    from backend.engine import run

    folder, url = web_folder
    write_scene(folder / "north.tif", 48, 56, seed=1)
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{url}/north.tif\n{url}/missing.tif\n")
    result = run(BatchJob(str(listing), "background; building; road", tmp_path / "out", no_polygons=True,
                          clip_weights=str(tiny_files["open_clip"]), no_upsampler=True))
    assert (result.done, result.failed) == (1, 1)
    north, missing = result.rows
    assert north["source"] == f"/vsicurl/{url}/north.tif" and north["outputs"] == "north.tif"
    with rasterio.open(tmp_path / "out" / "north.tif") as classes, rasterio.open(folder / "north.tif") as scene:
        assert classes.shape == scene.shape and classes.transform == scene.transform
        assert np.isin(classes.read(1), [0, 1, 2]).all()
    assert missing["error"] == (f"input raster /vsicurl/{url}/missing.tif cannot be read (HTTP response code: 404); "
                                "check the address and that GDAL can reach it.")
