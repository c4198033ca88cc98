"""make demo (scripts/demo.py): offline without weights it explains and still makes the
pseudo-RGB; with a checkpoint it runs the whole job (random weights here: mechanics)."""

import json
import os
import sys

import rasterio

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "scripts"))
import demo  # noqa: E402


def test_offline_without_weights_says_what_is_missing(qgis_process, tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.setenv("SPECIAL_QGIS_CLIP_CACHE", str(tmp_path / "empty_cache"))
    assert demo.main(["--out", str(tmp_path / "demo"), "--size", "48"]) == 0
    said = capsys.readouterr().out
    assert "no CLIP weights" in said and "ViT-B-16 weights 'openai'" in said
    assert "make demo CHECKPOINT=" in said and "Traceback" not in said
    with rasterio.open(tmp_path / "demo" / "pseudo_rgb.tif") as ds:
        assert ds.count == 3 and (ds.height, ds.width) == (48, 48)
    assert (tmp_path / "demo" / "overview.png").exists()
    assert not (tmp_path / "demo" / "classes.tif").exists()


def test_with_a_checkpoint_runs_the_whole_job(qgis_process, tmp_path, capsys, tiny_clip):
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--size", "48", "--checkpoint", tiny_clip.checkpoint,
                      "--model", tiny_clip.name, "--epochs", "1", "--iterations", "1",
                      "--window", "16", "--stride", "8", "--device", "cpu"]) == 0
    said = capsys.readouterr().out
    for name in ("classes.tif", "confidence.tif", "pseudo_labels.tif", "pseudo_rgb.tif",
                 "accuracy_classes.html", "accuracy_pseudo_labels.html", "overview.png"):
        assert (out / name).exists(), name
    with open(out / "accuracy_classes.json") as fh:
        oa = json.load(fh)["OA"]
    assert f"{100 * oa:7.1f}" in said  # the table printed at the end
    with rasterio.open(out / "overview.png") as ds:
        assert ds.width == 4 * 48 + 3 * 8
