"""special:pseudolabel end to end: outputs, georeferencing, legend, weights handling and
the command line. Random weights: these tests check mechanics, never map quality."""

import os
import time

import numpy as np
import pytest
import rasterio
from osgeo import gdal

from special_qgis.core import classes, clip_backbone, pseudolabel
from special_qgis.core.errors import Cancelled, UserInputError
from special_qgis.core.progress import Progress

from rasters import CRS_UTM, TRANSFORM, make_cube, write_envi, write_gtiff

WL = np.linspace(420.0, 980.0, 12)


def _grid(path, width, height):
    with rasterio.open(path) as ds:
        assert ds.crs == CRS_UTM
        assert ds.transform.almost_equals(TRANSFORM)
        assert (ds.width, ds.height) == (width, height)
        return ds.read(), ds.nodata, ds.descriptions


def test_processing_outputs(provider, tmp_path, tiny_clip):
    import processing

    cube = make_cube(bands=12, rows=40, cols=56, dtype="int16", seed=1)
    cube[cube == -9999] = 0
    cube[:, :3, :4] = -9999
    src = write_envi(str(tmp_path / "scene.img"), cube, WL, nodata=-9999)
    out = {k: str(tmp_path / f"{k}.tif") for k in ("labels", "conf", "probs")}
    result = processing.run("special:pseudolabel", {
        "INPUT": src, "CLASSES": "water; trees, forest ;roofs;asphalt",
        "MODEL": tiny_clip.name, "PRETRAINED": tiny_clip.checkpoint, "WINDOW": 24,
        "STRIDE": 12, "OUTPUT_LABELS": out["labels"], "OUTPUT_CONFIDENCE": out["conf"],
        "OUTPUT_PROBABILITIES": out["probs"]})
    assert result == {"OUTPUT_LABELS": out["labels"], "OUTPUT_CONFIDENCE": out["conf"],
                      "OUTPUT_PROBABILITIES": out["probs"]}
    labels, nodata, _ = _grid(out["labels"], 56, 40)
    conf, conf_nodata, _ = _grid(out["conf"], 56, 40)
    probs, _, descriptions = _grid(out["probs"], 56, 40)
    invalid = np.zeros((40, 56), bool)
    invalid[:3, :4] = True
    assert nodata == 0 and labels.dtype == np.uint8
    assert (labels[0][invalid] == 0).all() and set(np.unique(labels[0][~invalid])) <= {1, 2, 3, 4}
    assert np.isnan(conf_nodata) and np.isnan(conf[0][invalid]).all()
    valid_p = probs[:, ~invalid]
    np.testing.assert_allclose(valid_p.sum(0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(labels[0][~invalid], valid_p.argmax(0) + 1)
    s = np.sort(valid_p, axis=0)
    np.testing.assert_allclose(conf[0][~invalid], s[-1] - s[-2], atol=1e-6)
    assert descriptions == ("water", "trees", "roofs", "asphalt")

    names, rgb = classes.read_class_metadata(out["labels"])
    assert names == ["water", "trees", "roofs", "asphalt"]
    assert rgb[:4] == [tuple(c) for c in classes.colours(4)]
    ds = gdal.Open(out["labels"])  # keep the dataset alive while its band is used
    band = ds.GetRasterBand(1)
    band.GetDescription()  # loads the .aux.xml (see classes.read_class_metadata)
    assert band.GetCategoryNames() == ["no data", "water", "trees", "roofs", "asphalt"]
    table = band.GetColorTable()
    assert table.GetColorEntry(0)[3] == 0
    assert [table.GetColorEntry(i)[:3] for i in (1, 2, 3, 4)] == [tuple(c) for c in
                                                                  classes.colours(4)]


def test_rgb_input_with_nodata_holes_and_classes_file(provider, tmp_path, tiny_clip):
    import processing

    cube = make_cube(bands=3, rows=33, cols=41, dtype="uint16", seed=2)
    cube[cube == 0] = 1
    cube[:, 10:14, 20:25] = 0
    src = write_gtiff(str(tmp_path / "rgb.tif"), cube, nodata=0)
    names = tmp_path / "classes.txt"
    names.write_text("# my classes\nwater, lake\n\ngrass\nbuildings  # roofs\n")
    processing.run("special:pseudolabel", {
        "INPUT": src, "CLASSES_FILE": str(names), "MODEL": tiny_clip.name,
        "PRETRAINED": tiny_clip.safetensors, "SCALES": "1", "WINDOW": 16, "STRIDE": 8,
        "OUTPUT_LABELS": str(tmp_path / "l.tif"), "OUTPUT_CONFIDENCE": str(tmp_path / "c.tif")})
    labels, _, _ = _grid(str(tmp_path / "l.tif"), 41, 33)
    assert (labels[0, 10:14, 20:25] == 0).all()
    assert (labels[0][labels[0] > 0] <= 3).all() and (labels[0] > 0).sum() == 33 * 41 - 20
    names, _ = classes.read_class_metadata(str(tmp_path / "l.tif"))
    assert names == ["water", "grass", "buildings"]


def test_real_vit_b16_architecture_end_to_end(tmp_path):
    """The default architecture, random weights, through the users' checkpoint path."""
    import open_clip
    import torch

    torch.manual_seed(0)
    checkpoint = tmp_path / "vit-b-16-random.pt"
    torch.save(open_clip.create_model("ViT-B-16").state_dict(), checkpoint)
    src = write_gtiff(str(tmp_path / "c.tif"), make_cube(bands=12, rows=60, cols=70), WL)
    result = pseudolabel.run(src, [["water"], ["trees"], ["roofs"]], str(tmp_path / "l.tif"),
                             str(tmp_path / "c2.tif"), pretrained=str(checkpoint), scales="1")
    assert result.windows == 1  # the scene is padded up to one 224² window
    labels, _, _ = _grid(str(tmp_path / "l.tif"), 70, 60)
    assert set(np.unique(labels)) <= {1, 2, 3}


def test_model_is_loaded_once(tiny_clip):
    a = clip_backbone.load(tiny_clip.name, tiny_clip.checkpoint, "cpu")
    b = clip_backbone.load(tiny_clip.name, tiny_clip.checkpoint, "cpu")
    assert a is b and a.patch_size == 8


def test_cancel_leaves_no_outputs(tmp_path, tiny_clip):
    src = write_gtiff(str(tmp_path / "c.tif"), make_cube(bands=12, rows=64, cols=64), WL)
    seen = []

    def cancelled():
        return any("window" in t for t in seen)

    with pytest.raises(Cancelled):
        pseudolabel.run(src, [["a"], ["b"]], str(tmp_path / "l.tif"), str(tmp_path / "c2.tif"),
                        str(tmp_path / "p.tif"), model_name=tiny_clip.name,
                        pretrained=tiny_clip.checkpoint, window=16, stride=8,
                        progress=Progress(lambda f, t: seen.append(t), cancelled))
    assert sorted(os.listdir(tmp_path)) == ["c.tif"]


def test_offline_tag_fails_fast_and_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.perf_counter()
    with pytest.raises(UserInputError) as err:
        clip_backbone.load("ViT-B-16", "openai", "cpu", cache_dir=str(tmp_path / "cache"))
    assert time.perf_counter() - t < 5
    msg = str(err.value)
    for part in ("ViT-B-16", "'openai'", str(tmp_path / "cache"), "PRETRAINED",
                 ".safetensors", "SPECIAL_QGIS_CLIP_CACHE"):
        assert part in msg


def test_no_network_fails_fast_without_offline_flag(tmp_path, monkeypatch):
    """With HF_HUB_OFFLINE unset, an unreachable hub is detected within seconds."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(clip_backbone, "_reachable", lambda url: False)
    with pytest.raises(UserInputError, match="no connection"):
        clip_backbone.resolve_weights("ViT-B-32", "openai", str(tmp_path))


def test_cached_weights_are_found_offline(tmp_path, monkeypatch, tiny_clip):
    """A file already in the cache (here: a URL-style download) is used with no network."""
    import open_clip

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = open_clip.get_pretrained_cfg("ViT-B-32", "openai")
    monkeypatch.setattr(open_clip, "get_pretrained_cfg",
                        lambda name, tag: {"url": cfg["url"]} if tag == "openai" else {})
    target = tmp_path / os.path.basename(cfg["url"])
    target.write_bytes(b"weights")
    path, _ = clip_backbone.resolve_weights("ViT-B-32", "openai", str(tmp_path))
    assert path == str(target)


def test_qgis_process_pseudolabel(qgis_process, tmp_path, tiny_clip):
    src = write_gtiff(str(tmp_path / "c.tif"), make_cube(bands=12, rows=30, cols=30), WL)
    res = qgis_process("run", "special:pseudolabel", "--", f"INPUT={src}",
                       "CLASSES=water;trees;roofs;roads", f"MODEL={tiny_clip.name}",
                       f"PRETRAINED={tiny_clip.checkpoint}", "WINDOW=16", "STRIDE=8",
                       f"OUTPUT_LABELS={tmp_path / 'l.tif'}",
                       f"OUTPUT_CONFIDENCE={tmp_path / 'c2.tif'}")
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    labels, _, _ = _grid(str(tmp_path / "l.tif"), 30, 30)
    assert set(np.unique(labels)) <= {1, 2, 3, 4}

    t = time.perf_counter()
    res = qgis_process("run", "special:pseudolabel", "--", f"INPUT={src}",
                       "CLASSES=water;trees", "PRETRAINED=openai",
                       f"OUTPUT_LABELS={tmp_path / 'x.tif'}",
                       f"OUTPUT_CONFIDENCE={tmp_path / 'y.tif'}")
    assert time.perf_counter() - t < 30
    assert res.returncode != 0
    assert "are not in the cache folder" in res.stdout + res.stderr
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "y.tif").exists()


def test_outputs_load_styled(provider, tmp_path, tiny_clip, qgis_new_project):
    """Loaded from the Toolbox or opened later, the labels show the class names."""
    import processing
    from qgis.core import QgsPalettedRasterRenderer, QgsProject, QgsRasterLayer

    src = write_gtiff(str(tmp_path / "c.tif"), make_cube(bands=12, rows=30, cols=30), WL)
    labels, conf = str(tmp_path / "l.tif"), str(tmp_path / "c2.tif")
    processing.runAndLoadResults("special:pseudolabel", {
        "INPUT": src, "CLASSES": "water;trees,forest;roofs", "MODEL": tiny_clip.name,
        "PRETRAINED": tiny_clip.checkpoint, "WINDOW": 16, "STRIDE": 8,
        "OUTPUT_LABELS": labels, "OUTPUT_CONFIDENCE": conf})
    loaded = {layer.name(): layer for layer in QgsProject.instance().mapLayers().values()}
    renderer = loaded["Pseudo-labels"].renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [c.label for c in renderer.classes()] == ["water", "trees", "roofs"]
    assert [c.value for c in renderer.classes()] == [1, 2, 3]
    assert loaded["Pseudo-label confidence"].renderer().type() == "singlebandpseudocolor"

    again = QgsRasterLayer(labels, "opened later")  # picks up the .qml written beside it
    assert os.path.exists(str(tmp_path / "l.qml"))
    assert [c.label for c in again.renderer().classes()] == ["water", "trees", "roofs"]


def test_other_vit_sizes(tmp_path):
    """ViT-B-32 (patch 32): the dense path works for other open_clip ViTs."""
    import open_clip
    import torch

    from special_qgis.core import dense_clip

    model = open_clip.create_model("ViT-B-32").eval()
    with torch.no_grad():
        patches, cls_embed = dense_clip.patch_and_cls_embeddings(model.visual,
                                                                 torch.randn(1, 3, 224, 160))
        expected = model.encode_image(torch.randn(1, 3, 224, 224))
    assert patches.shape == (1, 7, 5, 512) and cls_embed.shape == expected.shape
