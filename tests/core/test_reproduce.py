"""bench/reproduce.py, the paper-reproduction harness (its code in bench/reproduction/):
mechanics only, on tiny generated scenes with a random-weight CLIP (its numbers mean nothing;
they are only checked to be what the written maps give), and its options built from the
parameter spec."""

import dataclasses
import importlib.util
import json
import os
import sys
import tempfile

import numpy as np
import pytest
import rasterio
import scipy.io
from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score

from special_qgis.core import noiserobust, wavelengths
from special_qgis.core.errors import UserInputError
from special_qgis.core.spec import spec
from special_qgis.core.spec.shared import SCHEDULE_FIELDS

from conftest import REPO
from rasters import TRANSFORM, write_envi, write_gtiff

_BENCH = os.path.join(REPO, "bench")
_spec = importlib.util.spec_from_file_location("reproduce", os.path.join(_BENCH,
                                                                         "reproduce.py"))
reproduce = importlib.util.module_from_spec(_spec)
sys.modules["reproduce"] = reproduce  # dataclasses look their module up there
_spec.loader.exec_module(reproduce)

ROWS, COLS, BANDS = 48, 40, 12
CLASSES = "water; trees, forest; roofs"
TINY = ["--window", "32", "--stride", "16", "--epochs", "2", "--iterations", "2",
        "--samples-per-class", "50", "--device", "cpu", "--quiet"]


def make_scene(seed: int = 0):
    """Three classes in blocks with distinct spectra; the truth leaves a border unlabelled.
    Returns cube (rows, cols, bands) uint16 and truth (rows, cols) uint8."""
    rng = np.random.default_rng(seed)
    fields = rng.integers(1, 4, size=(6, 5))
    fields.flat[:3] = [1, 2, 3]  # every class present
    truth = np.kron(fields, np.ones((8, 8), int))
    means = np.array([np.linspace(200, 900, BANDS), np.linspace(2500, 600, BANDS),
                      np.full(BANDS, 1500.0)])
    cube = means[truth - 1] + rng.normal(0, 40, (ROWS, COLS, BANDS))
    truth[:, :2] = 0
    truth[:2, :] = 0
    return cube.clip(0, 65535).astype(np.uint16), truth.astype(np.uint8)


def tiny_args(tiny_clip, *extra):
    return [*extra, "--model", tiny_clip.name, "--pretrained", tiny_clip.checkpoint, *TINY]


def expected_scores(truth, labels_path):
    with rasterio.open(labels_path) as src:
        predicted = src.read(1)
    used = truth > 0
    y, p = truth[used], predicted[used]
    return (100 * accuracy_score(y, p), 100 * balanced_accuracy_score(y, p),
            100 * cohen_kappa_score(y, p))


def check_rows(doc, truth, n_rows_names):
    assert [r["row"] for r in doc["rows"]] == n_rows_names
    for row in doc["rows"]:
        assert row["error"] is None
        assert 0 <= row["OA"] <= 100 and 0 <= row["AA"] <= 100 and -100 <= row["kappa"] <= 100
        oa, aa, kappa = expected_scores(truth, row["labels"])
        assert row["OA"] == pytest.approx(oa, abs=1e-9)
        assert row["AA"] == pytest.approx(aa, abs=1e-9)
        assert row["kappa"] == pytest.approx(kappa, abs=1e-9)
        assert row["unscored_pixels"] == 0
        assert row["seconds"] >= 0


def test_mat_scene_table_matches_sklearn(tmp_path, tiny_clip, capsys):
    cube, truth = make_scene()
    scipy.io.savemat(tmp_path / "Scene.mat", {"scene": cube})
    scipy.io.savemat(tmp_path / "Scene_gt.mat", {"scene_gt": truth})
    work = tmp_path / "work"
    out_json = tmp_path / "table.json"
    status = reproduce.main(tiny_args(
        tiny_clip, "--cube", str(tmp_path / "Scene.mat"), "--truth",
        str(tmp_path / "Scene_gt.mat"), "--classes", CLASSES, "--wavelengths", "430:860",
        "--workdir", str(work), "--json", str(out_json)))
    printed = capsys.readouterr().out
    assert status == 0, printed
    doc = json.loads(out_json.read_text())
    check_rows(doc, truth, ["CLIP pseudo-labels, scale 1", "CLIP pseudo-labels, RS (scales 1, 2)",
                            "SPECIAL (noise-robust network)"])
    for name in ("CLIP pseudo-labels, scale 1", "RS (scales 1, 2)", "SPECIAL", "OA %",
                 tiny_clip.name, tiny_clip.checkpoint, "CPUs"):
        assert name in printed
    # The table prints what the JSON holds.
    special = doc["rows"][2]
    assert f"{special['OA']:6.2f}" in printed and f"{special['kappa']:6.2f}" in printed
    assert doc["class_names"] == ["water", "trees", "roofs"]
    assert doc["scene"]["labelled_pixels"] == int(np.count_nonzero(truth))
    assert doc["stage_ii"]["epochs"] == 2 and doc["stage_ii"]["warmup_epochs"] == 1
    assert doc["machine"]["cpu_count"] == os.cpu_count()
    # The converted cube: (bands, rows, cols) with its wavelengths where the core reads them.
    with rasterio.open(work / "cube.tif") as src:
        np.testing.assert_array_equal(src.read(), cube.transpose(2, 0, 1))
        # Written band after band: pixel-interleaved tiles would be rewritten once per band
        # when they leave GDAL's cache (a Pavia-sized cube grew to 4.3 GB in 140 s).
        assert src.profile["interleave"] == "band"
    np.testing.assert_allclose(wavelengths.read(str(work / "cube.tif")),
                               np.linspace(430, 860, BANDS), atol=1e-3)
    with rasterio.open(work / "special_labels.tif") as src:
        assert src.shape == (ROWS, COLS)


def test_geotiff_scene_scale_one_and_classes_file(tmp_path, tiny_clip, capsys):
    cube, truth = make_scene(1)
    cube_path = write_gtiff(str(tmp_path / "cube.tif"), cube.transpose(2, 0, 1),
                            np.linspace(0.43, 0.86, BANDS), units="um")
    truth_path = write_gtiff(str(tmp_path / "truth.tif"), truth[None], nodata=0)
    names = tmp_path / "classes.txt"
    names.write_text("# Scene classes, in truth-code order\nwater\ntrees, forest\nroofs\n")
    work = tmp_path / "work"
    out_json = tmp_path / "table.json"
    status = reproduce.main(tiny_args(
        tiny_clip, "--cube", cube_path, "--truth", truth_path, "--classes-file", str(names),
        "--scales", "1", "--workdir", str(work), "--json", str(out_json)))
    printed = capsys.readouterr().out
    assert status == 0, printed
    doc = json.loads(out_json.read_text())
    check_rows(doc, truth, ["CLIP pseudo-labels, scale 1", "CLIP pseudo-labels, RS (scales 1)",
                            "SPECIAL (noise-robust network)"])
    assert doc["rows"][1]["OA"] == doc["rows"][0]["OA"]
    np.testing.assert_allclose(doc["scene"]["wavelengths_nm"], np.linspace(430, 860, BANDS))
    with rasterio.open(work / "special_labels.tif") as src:
        assert src.transform == TRANSFORM  # the input's georeferencing is kept


def test_temporary_workdir_is_removed(tmp_path, tiny_clip, capsys, monkeypatch):
    cube, truth = make_scene(2)
    scipy.io.savemat(tmp_path / "both.mat", {"cube": cube, "gt": truth})
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    status = reproduce.main(tiny_args(
        tiny_clip, "--cube", str(tmp_path / "both.mat"), "--truth", str(tmp_path / "both.mat"),
        "--classes", CLASSES, "--wavelengths", ",".join(str(400 + 50 * i) for i in range(BANDS)),
        "--epochs", "1", "--warmup-epochs", "1"))
    assert status == 0, capsys.readouterr()
    assert not [p for p in os.listdir(tmp_path) if p.startswith("special-reproduce-")]


def test_stage_ii_refusal_still_prints_stage_i(tmp_path, tiny_clip, capsys, monkeypatch):
    """An ENVI cube given by its header; stage II refusing the pseudo-labels (as it does
    when CLIP names one class only) leaves the stage I rows scored, and exit status 1."""
    cube, truth = make_scene(3)
    write_envi(str(tmp_path / "scene.img"), cube.transpose(2, 0, 1),
               np.linspace(430, 860, BANDS))
    scipy.io.savemat(tmp_path / "gt.mat", {"gt": truth})

    def refuse(*args, **kwargs):
        raise UserInputError("LABELS: only one class ('water') has labelled pixels")

    monkeypatch.setattr(noiserobust, "run", refuse)
    out_json = tmp_path / "t.json"
    status = reproduce.main(tiny_args(
        tiny_clip, "--cube", str(tmp_path / "scene.hdr"), "--truth", str(tmp_path / "gt.mat"),
        "--classes", CLASSES, "--scales", "1", "--json", str(out_json)))
    printed = capsys.readouterr().out
    assert status == 1
    assert "not run: stage II refused the RS pseudo-labels: LABELS: only one class" in printed
    rows = json.loads(out_json.read_text())["rows"]
    assert rows[0]["OA"] is not None and rows[1]["OA"] is not None
    assert rows[2]["OA"] is None and "only one class" in rows[2]["error"]


def run_error(args, capsys):
    status = reproduce.main(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.err


def test_shape_mismatch(tmp_path, tiny_clip, capsys):
    cube, truth = make_scene()
    scipy.io.savemat(tmp_path / "cube.mat", {"cube": cube})
    scipy.io.savemat(tmp_path / "gt.mat", {"gt": truth[:, :-3]})
    status, err = run_error(tiny_args(
        tiny_clip, "--cube", str(tmp_path / "cube.mat"), "--truth", str(tmp_path / "gt.mat"),
        "--classes", CLASSES, "--wavelengths", "430:860"), capsys)
    assert status == 2
    assert f"--cube is {ROWS} rows × {COLS} columns" in err
    assert f"--truth is {ROWS} × {COLS - 3}" in err


def test_more_truth_codes_than_class_names(tmp_path, tiny_clip, capsys):
    cube, truth = make_scene()
    scipy.io.savemat(tmp_path / "cube.mat", {"cube": cube})
    scipy.io.savemat(tmp_path / "gt.mat", {"gt": truth})
    status, err = run_error(tiny_args(
        tiny_clip, "--cube", str(tmp_path / "cube.mat"), "--truth", str(tmp_path / "gt.mat"),
        "--classes", "water; trees", "--wavelengths", "430:860"), capsys)
    assert status == 2
    assert "class codes up to 3, but 2 class names" in err


def test_input_mistakes_are_clear(tmp_path, tiny_clip, capsys):
    cube, truth = make_scene()
    scipy.io.savemat(tmp_path / "cube.mat", {"cube": cube})
    scipy.io.savemat(tmp_path / "gt.mat", {"gt": truth})
    scipy.io.savemat(tmp_path / "two.mat", {"a": cube, "b": cube})
    base = ["--classes", CLASSES]
    cases = [
        (["--cube", str(tmp_path / "cube.mat"), "--truth", str(tmp_path / "gt.mat")],
         "no wavelength metadata"),
        (["--cube", str(tmp_path / "cube.mat"), "--truth", str(tmp_path / "gt.mat"),
          "--wavelengths", "430,860"], "2 wavelengths given but the cube has 12 bands"),
        (["--cube", str(tmp_path / "cube.mat"), "--truth", str(tmp_path / "gt.mat"),
          "--sensor", "rosis-pavia-centre"], "this preset is for 102 bands"),
        (["--cube", str(tmp_path / "two.mat"), "--truth", str(tmp_path / "gt.mat"),
          "--wavelengths", "430:860"], "several 3-D arrays (a, b); choose one with --cube-key"),
        (["--cube", str(tmp_path / "cube.mat"), "--cube-key", "nope", "--truth",
          str(tmp_path / "gt.mat"), "--wavelengths", "430:860"], "has no variable 'nope'"),
        (["--cube", str(tmp_path / "missing.mat"), "--truth", str(tmp_path / "gt.mat"),
          "--wavelengths", "430:860"], "does not exist"),
    ]
    for args, message in cases:
        status, err = run_error(tiny_args(tiny_clip, *args, *base), capsys)
        assert status == 2, args
        assert message in err, (message, err)


@pytest.mark.skipif(importlib.util.find_spec("h5py") is not None,
                    reason="h5py installed: v7.3 files are read, not refused")
def test_matlab_v73_file_is_explained(tmp_path, tiny_clip, capsys):
    # A v7.3 file starts with a 128-byte MATLAB header whose version field is 0x0200.
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .".ljust(116, b" ")
    (tmp_path / "big.mat").write_bytes(header + b"\0" * 8 + b"\x00\x02IM" + b"\0" * 512)
    _, truth = make_scene()
    scipy.io.savemat(tmp_path / "gt.mat", {"gt": truth})
    status, err = run_error(tiny_args(
        tiny_clip, "--cube", str(tmp_path / "big.mat"), "--truth", str(tmp_path / "gt.mat"),
        "--classes", CLASSES, "--wavelengths", "430:860"), capsys)
    assert status == 2
    assert "v7.3" in err and "h5py" in err and "save('-v7'" in err


def test_sensor_presets():
    np.testing.assert_allclose(reproduce.sensor_wavelengths("rosis-pavia-centre", 102)[[0, -1]],
                               [430, 860])
    assert len(reproduce.sensor_wavelengths("rosis-pavia-university", 103)) == 103
    ip = reproduce.sensor_wavelengths("aviris-indian-pines", 220)
    assert len(ip) == 220 and ip[0] == pytest.approx(400.02, abs=0.01)
    ip200 = reproduce.sensor_wavelengths("aviris-indian-pines", 200)
    assert len(ip200) == 200
    np.testing.assert_array_equal(ip200[:103], ip[:103])  # bands 104-108 dropped
    assert ip200[103] == ip[108]
    assert len(reproduce.sensor_wavelengths("aviris-salinas", 204)) == 204
    with pytest.raises(UserInputError, match="220 or 200 bands"):
        reproduce.sensor_wavelengths("aviris-indian-pines", 199)


def test_out_of_order_bands_are_sorted(tmp_path):
    """Indian Pines lists AVIRIS' overlapping spectrometers out of wavelength order: the
    converted GeoTIFF holds the bands sorted, each band with its own wavelength."""
    wl = reproduce.sensor_wavelengths("aviris-indian-pines", 200)
    assert np.any(np.diff(wl) <= 0)
    data = np.arange(200, dtype=np.float32)[:, None, None] * np.ones((1, 4, 5), np.float32)
    notes = reproduce.write_cube_tif(str(tmp_path / "c.tif"), reproduce.Cube(data, None, None),
                                     wl)
    assert notes
    order = np.argsort(wl, kind="stable")
    with rasterio.open(tmp_path / "c.tif") as src:
        np.testing.assert_array_equal(src.read()[:, 0, 0], order)
    np.testing.assert_allclose(wavelengths.read(str(tmp_path / "c.tif")), wl[order], atol=1e-3)


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        reproduce.main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--cube", "--cube-key", "--truth", "--truth-key", "--classes",
                   "--classes-file", "--wavelengths", "--sensor", "--model", "--pretrained",
                   "--scales", "--window", "--stride", "--epochs", "--warmup-epochs",
                   "--iterations", "--samples-per-class", "--seed", "--spectral-prior",
                   "--device", "--workdir",
                   "--json", "rosis-pavia-centre", "aviris-indian-pines", "v7.3", "exit status"):
        assert option in text, option


def _options():
    """Every spec-derived option: (its dest, the spec's Param), and the parser."""
    from reproduction import options

    parser = reproduce.build_parser()
    return [(options.dest(p.name), p) for _, p in options.spec_options()], parser, options


def test_pipeline_options_come_from_the_spec():
    pairs, parser, options = _options()
    names = [p.name for _, p in pairs]
    assert set(SCHEDULE_FIELDS) <= set(names)
    assert {"MODEL", "PRETRAINED", "SCALES", "WINDOW", "STRIDE", "DEVICE"} <= set(names)
    by_option = {a.option_strings[0]: a for a in parser._actions if a.option_strings}
    for dest, param in pairs:
        action = by_option[options.option(param.name)]
        assert action.dest == dest
        assert parser.get_default(dest) == param.default, param.name
        assert tuple(action.choices or ()) == param.options, param.name
        assert param.label in action.help
    assert by_option["--samples-per-class"].dest == "samples_per_class"
    # Stage II's options default to Schedule's own defaults, read from the dataclass.
    engine = {f.name: f.default for f in dataclasses.fields(noiserobust.Schedule)}
    for field in SCHEDULE_FIELDS.values():
        assert parser.get_default(field) == engine[field], field
    # No option given: the schedule run is Schedule's default one.
    args = parser.parse_args(["--cube", "c", "--truth", "t", "--classes", "a; b"])
    assert options.make_schedule(args) == noiserobust.Schedule()
    assert args.target_wavelengths == spec("pseudolabel").param("TARGET_WAVELENGTHS").default


def test_a_changed_schedule_default_changes_the_option(monkeypatch):
    """The options follow the engine: a Schedule with other defaults gives other defaults
    (the spec reads them when it is built; its cache is cleared around the change)."""
    changed = dataclasses.make_dataclass(
        "Schedule", [("epochs", int, dataclasses.field(default=7)),
                     ("seed", int, dataclasses.field(default=41))],
        bases=(noiserobust.Schedule,))
    spec.cache_clear()
    try:
        monkeypatch.setattr(noiserobust, "Schedule", changed)
        parser = reproduce.build_parser()
        assert parser.get_default("epochs") == 7
        assert parser.get_default("seed") == 41
        assert "(default 7)" in parser.format_help()
    finally:
        monkeypatch.undo()
        spec.cache_clear()
    assert reproduce.build_parser().get_default("epochs") == noiserobust.Schedule().epochs


def test_warmup_follows_epochs_unless_given():
    _, parser, options = _options()
    default = noiserobust.Schedule()
    base = ["--cube", "c", "--truth", "t", "--classes", "a; b"]

    def schedule(*extra):
        return options.make_schedule(parser.parse_args([*base, *extra]))

    assert schedule("--epochs", "2").warmup_epochs == 2 * default.warmup_epochs // default.epochs
    assert schedule("--epochs", "30", "--warmup-epochs", str(default.warmup_epochs)) \
        .warmup_epochs == default.warmup_epochs
    assert schedule("--warmup-epochs", "3").epochs == default.epochs
    assert schedule("--targets", "650,550,450").spectral_prior == default.spectral_prior
    assert parser.parse_args([*base, "--targets", "650,550,450"]).target_wavelengths \
        == "650,550,450"
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--device", "tpu"])


def test_progress_bar_is_tqdm(capsys):
    from reproduction import cli

    with cli.stage_progress("[1/3] stage I, scale 1") as progress:
        progress.update(0.5, "window 1 of 2")
        progress.update(1.0, "window 2 of 2")
    err = capsys.readouterr().err
    assert "[1/3] stage I, scale 1" in err and "100%" in err and "window 2 of 2" in err
    with cli.stage_progress("quiet", enabled=False) as progress:
        progress.update(0.5, "nothing")
    assert capsys.readouterr().err == ""
