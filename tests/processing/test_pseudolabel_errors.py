"""special:pseudolabel: bad input gets a clear error, and nothing is written."""

import os

import numpy as np
import pytest
import torch

from special_qgis.core import classes, clip_backbone, pseudolabel
from special_qgis.core.errors import UserInputError

from rasters import file_digest, make_cube, write_gtiff

WL = np.linspace(420.0, 980.0, 12)


@pytest.fixture
def scene(tmp_path):
    return write_gtiff(str(tmp_path / "scene.tif"), make_cube(bands=12, rows=40, cols=40), WL)


def _run_processing(params):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException) as err:
        processing.run("special:pseudolabel", params)
    return str(err.value)


@pytest.mark.parametrize("text,message", [
    ("", "CLASSES is empty"),
    (" ; ;, ", "CLASSES is empty"),
    ("water", "only one class"),
    ("water;trees;Water", "'Water' appears more than once"),
    ("water, lake; lake", "'lake' appears more than once"),
])
def test_bad_classes(provider, tmp_path, scene, tiny_clip, text, message):
    before = file_digest(scene)
    msg = _run_processing({"INPUT": scene, "CLASSES": text, "MODEL": tiny_clip.name,
                           "PRETRAINED": tiny_clip.checkpoint,
                           "OUTPUT_LABELS": str(tmp_path / "l.tif"),
                           "OUTPUT_CONFIDENCE": str(tmp_path / "c.tif")})
    assert message in msg
    assert sorted(os.listdir(tmp_path)) == ["scene.tif"]
    assert file_digest(scene) == before


def test_classes_and_file_both(provider, tmp_path, scene, tiny_clip):
    f = tmp_path / "c.txt"
    f.write_text("a\nb\n")
    msg = _run_processing({"INPUT": scene, "CLASSES": "x;y", "CLASSES_FILE": str(f),
                           "OUTPUT_LABELS": str(tmp_path / "l.tif"),
                           "OUTPUT_CONFIDENCE": str(tmp_path / "c.tif")})
    assert "either CLASSES or CLASSES_FILE" in msg


CASES = {
    "zero scale": (dict(scales="1,0"), "0 is not a positive zoom"),
    "negative scale": (dict(scales="-2"), "-2 is not a positive zoom"),
    "text scale": (dict(scales="1,big"), "'big' is not a number"),
    "window below patch": (dict(window=4, stride=2), "smaller than the model's patch size (8"),
    "stride above window": (dict(window=16, stride=20), "STRIDE (20) is larger than WINDOW (16)"),
    "unknown model": (dict(model_name="ViT-Q-99"), "'ViT-Q-99' is not an open_clip model"),
    "not a ViT": (dict(model_name="RN50"), "not a plain vision transformer"),
    "missing checkpoint": (dict(pretrained="/no/such/weights.pt"), "does not exist"),
    "unknown tag": (dict(pretrained="laion9000"), "neither a checkpoint file nor a weights tag"),
    "bad device": (dict(device="tpu"), "'tpu' is not one of auto, cpu, cuda"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_parameters(tmp_path, scene, tiny_clip, case):
    kwargs, message = CASES[case]
    args = dict(model_name=tiny_clip.name, pretrained=tiny_clip.checkpoint, window=16,
                stride=8)
    args.update(kwargs)
    with pytest.raises(UserInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        pseudolabel.run(scene, [["a"], ["b"]], str(tmp_path / "l.tif"),
                        str(tmp_path / "c.tif"), **args)
    assert sorted(os.listdir(tmp_path)) == ["scene.tif"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_gpu(tmp_path, scene, tiny_clip):
    with pytest.raises(UserInputError, match="PyTorch sees no CUDA GPU"):
        pseudolabel.run(scene, [["a"], ["b"]], str(tmp_path / "l.tif"),
                        str(tmp_path / "c.tif"), model_name=tiny_clip.name,
                        pretrained=tiny_clip.checkpoint, device="cuda")


def test_checkpoint_for_another_architecture(tmp_path, scene, tiny_clip):
    with pytest.raises(UserInputError, match="does not match the architecture of MODEL"):
        clip_backbone.load(tiny_clip.wide, tiny_clip.checkpoint, "cpu")


def test_file_that_is_not_a_checkpoint(tmp_path, tiny_clip):
    bogus = tmp_path / "weights.pt"
    bogus.write_text("not a checkpoint")
    with pytest.raises(UserInputError, match="is not a checkpoint open_clip can read"):
        clip_backbone.load(tiny_clip.name, str(bogus), "cpu")


def test_raster_smaller_than_a_patch(tmp_path, tiny_clip):
    src = write_gtiff(str(tmp_path / "tiny.tif"), make_cube(bands=12, rows=5, cols=30), WL)
    with pytest.raises(UserInputError, match="smaller than one 8 × 8 patch"):
        pseudolabel.run(src, [["a"], ["b"]], str(tmp_path / "l.tif"), str(tmp_path / "c.tif"),
                        model_name=tiny_clip.name, pretrained=tiny_clip.checkpoint)


def test_all_nodata_raster(tmp_path, tiny_clip):
    cube = np.full((3, 20, 20), -1.0, dtype="float32")
    src = write_gtiff(str(tmp_path / "empty.tif"), cube, nodata=-1.0)
    with pytest.raises(UserInputError, match="no valid pixels"):
        pseudolabel.run(src, [["a"], ["b"]], str(tmp_path / "l.tif"), str(tmp_path / "c.tif"),
                        model_name=tiny_clip.name, pretrained=tiny_clip.checkpoint)
    assert sorted(os.listdir(tmp_path)) == ["empty.tif"]


def test_output_paths(tmp_path, scene, tiny_clip):
    common = dict(model_name=tiny_clip.name, pretrained=tiny_clip.checkpoint)
    with pytest.raises(UserInputError, match="must be different files"):
        pseudolabel.run(scene, [["a"], ["b"]], str(tmp_path / "x.tif"), str(tmp_path / "x.tif"),
                        **common)
    with pytest.raises(UserInputError, match="OUTPUT_CONFIDENCE: .* is also an input"):
        pseudolabel.run(scene, [["a"], ["b"]], str(tmp_path / "x.tif"), scene, **common)
    with pytest.raises(UserInputError, match="OUTPUT_LABELS: the folder"):
        pseudolabel.run(scene, [["a"], ["b"]], str(tmp_path / "no" / "x.tif"),
                        str(tmp_path / "c.tif"), **common)


def test_classes_file_errors(tmp_path):
    with pytest.raises(UserInputError, match="CLASSES_FILE: the file"):
        classes.read_classes_file(str(tmp_path / "none.txt"))
    f = tmp_path / "one.txt"
    f.write_text("# only\nwater\n")
    with pytest.raises(UserInputError, match="CLASSES_FILE: only one class"):
        classes.read_classes_file(str(f))
