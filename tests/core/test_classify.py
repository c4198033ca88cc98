"""special:classify's engine (core.pipeline): the whole pipeline in one step, on a generated
scene with a random-weight CLIP (mechanics only: the maps mean nothing): the same result as
the single stages, cancelling anywhere, errors naming their stage, parameters checked before
stage I. Through Processing and qgis_process: tests/processing/test_classify_processing.py."""

import os

import classify_cases
import numpy as np
import pytest
from classify_cases import FAST, NAMES, check_grid, clip_args, listed, output_paths

from special_qgis.core import classes, noiserobust, pipeline, pseudolabel
from special_qgis.core.errors import Cancelled, UserInputError
from special_qgis.core.progress import Progress

from rasters import write_gtiff

# The shared fixture, bound here so that pytest finds it.
scene = classify_cases.scene


def test_same_result_as_the_single_stages(tmp_path, scene, tiny_clip):
    """classify is the single stages chained, not a second copy of them."""
    out = output_paths(str(tmp_path))
    pipeline.classify(scene, classes.parse_classes(NAMES), out["classes"], out["conf"],
                      out["pseudo"], schedule=FAST, **clip_args(tiny_clip))
    single = {k: str(tmp_path / f"single_{k}.tif") for k in ("pl", "plc", "cl", "cc")}
    pseudolabel.run(scene, classes.parse_classes(NAMES), single["pl"], single["plc"],
                    **clip_args(tiny_clip))
    noiserobust.run(noiserobust.Inputs(scene, single["pl"], single["plc"], None),
                    single["cl"], single["cc"], None, FAST, "cpu")
    for mine, theirs in (("pseudo", "pl"), ("classes", "cl"), ("conf", "cc")):
        np.testing.assert_array_equal(check_grid(out[mine]), check_grid(single[theirs]))


@pytest.mark.parametrize("stop_at", ["pseudo-RGB", "stage I", "stage II", "end"])
def test_cancel_anywhere_leaves_nothing(tmp_path, scene, tiny_clip, stop_at):
    folder = tmp_path / "out"
    folder.mkdir()
    out = output_paths(str(folder))
    state = {"stop": False}

    def report(fraction, text):  # the user presses Cancel once this stage has begun
        begun = fraction >= 1.0 if stop_at == "end" else text.startswith(stop_at)
        state["stop"] = state["stop"] or begun

    with pytest.raises(Cancelled):
        pipeline.classify(scene, classes.parse_classes(NAMES), out["classes"], out["conf"],
                          out["pseudo"], out["rgb"], str(folder / "model.pt"), schedule=FAST,
                          progress=Progress(report, lambda: state["stop"]),
                          **clip_args(tiny_clip))
    assert listed(folder) == []


def test_errors_name_the_stage_and_leave_nothing(tmp_path, scene, tiny_clip):
    folder = tmp_path / "out"
    folder.mkdir()
    out = output_paths(str(folder))
    names = classes.parse_classes(NAMES)
    with pytest.raises(UserInputError, match=r"^Stage I \(CLIP pseudo-labels\): PRETRAINED"):
        pipeline.classify(scene, names, out["classes"], out["conf"], out["pseudo"],
                          schedule=FAST, **{**clip_args(tiny_clip),
                                            "pretrained": str(tmp_path / "missing.pt")})
    # A mask that excludes everything: stage II has nothing to learn from, after stage I.
    mask = write_gtiff(str(tmp_path / "mask.tif"), np.zeros((1, 40, 48), "uint8"))
    with pytest.raises(UserInputError, match=r"^Stage II \(noise-robust network\): LABELS"):
        pipeline.classify(scene, names, out["classes"], out["conf"], out["pseudo"],
                          schedule=FAST, mask_path=mask, **clip_args(tiny_clip))
    assert listed(folder) == []


def test_parameters_are_checked_before_stage_i(tmp_path, scene, tiny_clip, monkeypatch):
    """Mistakes in later stages' parameters fail at once, not after CLIP has run."""
    def no_stage_i(*args, **kwargs):
        raise AssertionError("stage I started")

    monkeypatch.setattr(pseudolabel, "run", no_stage_i)
    names = classes.parse_classes(NAMES)
    out = output_paths(str(tmp_path))
    bad = noiserobust.Schedule(epochs=2, warmup_epochs=3)
    with pytest.raises(UserInputError, match="EPOCHS"):
        pipeline.classify(scene, names, out["classes"], out["conf"], schedule=bad,
                          **clip_args(tiny_clip))
    small_mask = write_gtiff(str(tmp_path / "mask.tif"), np.ones((1, 20, 20), "uint8"))
    with pytest.raises(UserInputError, match="MASK: .* not on the same grid"):
        pipeline.classify(scene, names, out["classes"], out["conf"], schedule=FAST,
                          mask_path=small_mask, **clip_args(tiny_clip))
    with pytest.raises(UserInputError, match="OUTPUT_RGB, OUTPUT_PSEUDO_LABELS|must be diff"):
        pipeline.classify(scene, names, out["classes"], out["conf"], out["pseudo"],
                          out["pseudo"], schedule=FAST, **clip_args(tiny_clip))
    with pytest.raises(UserInputError, match="OUTPUT_PSEUDO_LABELS"):
        pipeline.classify(scene, names, out["classes"], out["conf"], scene, schedule=FAST,
                          **clip_args(tiny_clip))
    three = write_gtiff(str(tmp_path / "three.tif"), np.ones((3, 40, 48), "float32"))
    with pytest.raises(UserInputError, match="INPUT: .* 3 band"):
        pipeline.classify(three, names, out["classes"], out["conf"], schedule=FAST,
                          **clip_args(tiny_clip))
    with pytest.raises(UserInputError, match="SCALES"):
        pipeline.classify(scene, names, out["classes"], out["conf"], scales="0",
                          schedule=FAST, **clip_args(tiny_clip))
    with pytest.raises(UserInputError, match="CLASSES"):
        pipeline.classify(scene, [["water"]], out["classes"], out["conf"], schedule=FAST,
                          **clip_args(tiny_clip))
    assert not any(os.path.exists(p) for p in out.values())
