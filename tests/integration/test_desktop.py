"""Desktop QGIS under Xvfb, as a user meets the plugin: it loads from the profile without
Python errors, the Toolbox lists it, algorithm dialogs open, special:pseudorgb runs from its
dialog and its output is added to the project styled, and a stage II result shows with its
legend. Screenshots are saved (SPECIAL_SCREENSHOTS=folder copies them there: that is how the
README's pictures are made, see `make screenshots`)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "bench"))

pytestmark = pytest.mark.skipif(
    shutil.which("xvfb-run") is None or shutil.which("Xvfb") is None,
    reason="Xvfb is not installed (make install installs Debian's xvfb and xauth)")


@pytest.fixture(scope="module")
def desktop_run(tmp_path_factory):
    from scenes import make_scene, write_scene

    tmp = tmp_path_factory.mktemp("desktop")
    # A generated scene (real earthlib spectra on Indian Pines' bands, simulated CLIP-like
    # pseudo-labels): the screenshots show stage II on it, not CLIP.
    write_scene(make_scene(2, 160, 160, n_classes=6), tmp / "scene")
    from products import write_prisma_l2d

    prisma = write_prisma_l2d(str(tmp / "prisma"))
    profiles = tmp / "profiles-root"
    subprocess.run([os.path.join(REPO, ".venv", "bin", "python"),
                    os.path.join(REPO, "scripts", "install_plugin.py"), "--link", str(profiles)],
                   check=True, capture_output=True)
    report = tmp / "shots" / "report.json"
    report.parent.mkdir()
    env = dict(os.environ, SPECIAL_DESKTOP_REPORT=str(report),
               SPECIAL_DESKTOP_SCENE=str(tmp / "scene"), SPECIAL_DESKTOP_PRODUCT=prisma.path,
               QGIS_CUSTOM_CONFIG_PATH=str(profiles))
    env.pop("QT_QPA_PLATFORM", None)  # a real X display this time
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24",
           os.path.join(REPO, "scripts", "qgis"), "--nologo",
           "--code", os.path.join(REPO, "tests", "desktop_check.py")]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"desktop QGIS did not finish: {exc}")
    if not report.exists():
        if "cannot" in proc.stderr.lower() and "xvfb" in proc.stderr.lower():
            pytest.skip(f"Xvfb could not start: {proc.stderr[-500:]}")
        pytest.fail("no report from desktop QGIS:\n" + proc.stdout[-3000:] + proc.stderr[-3000:])
    data = json.loads(report.read_text())
    target = os.environ.get("SPECIAL_SCREENSHOTS")
    if target:
        os.makedirs(target, exist_ok=True)
        for path in data.get("screenshots", []):
            shutil.copy(path, target)
    return data


def _log(data):
    """What QGIS's Log Messages panel held: printed when a check fails."""
    return "\n".join(f"--- {tab} ---\n{text}" for tab, text in data.get("log", {}).items())


def test_plugin_loads_without_python_errors(desktop_run):
    data = desktop_run
    assert "error" not in data, data.get("error", "") + _log(data)
    assert "special_qgis" in data["active_plugins"], _log(data)
    assert data["provider"], _log(data)
    assert sorted(data["algorithms"]) == sorted(
        f"special:{m}" for m in ("accuracy", "applymodel", "classify", "importproduct",
                                 "noiserobust", "pseudolabel", "pseudorgb"))
    assert "model:special_pipeline" in data["models"]
    assert "Loaded SPECIAL hyperspectral classification" in data["log_at_start"]["Plugins"]
    python_errors = data["log_at_start"].get("Python error", "")
    assert "special_qgis" not in python_errors, python_errors
    assert not [m for m in data["logged"] if m[0] == "Python error"], _log(data)


def test_pseudorgb_from_its_dialog_is_loaded_styled(desktop_run):
    data = desktop_run
    assert "pseudorgb ran" in data["steps"], data.get("error", "") + _log(data)
    assert data["pseudorgb"]["renderer"] == "multibandcolor"
    low, high = data["pseudorgb"]["stretch"]
    assert 0 < low < high < 1.5  # stretched to the reflectances, not 0..255
    assert data["pseudorgb"]["source"].endswith("pseudo_rgb.tif")


def test_importproduct_from_its_dialog_on_a_prisma_file(desktop_run):
    """A .he5 picked as INPUT in the dialog (QGIS cannot load it as a layer): imported,
    loaded as pseudo-RGB of the good bands, nothing written beside the product."""
    data = desktop_run
    assert "importproduct ran" in data["steps"], data.get("error", "") + _log(data)
    imported = data["importproduct"]
    assert imported["renderer"] == "multibandcolor" and imported["bands"] > 3
    assert len(set(imported["rgb"])) == 3
    assert imported["beside_product_unchanged"]


def test_result_shows_with_its_legend(desktop_run):
    data = desktop_run
    assert data["steps"][-1] == "result", data.get("error", "") + _log(data)
    assert data["classes"]["renderer"] == "paletted"
    assert data["classes"]["legend"] == ["dense vegetation", "sparse vegetation",
                                         "bright soil", "asphalt", "concrete",
                                         "shingle roofs"]
    assert len(set(data["classes"]["colours"])) == 6
    assert data["confidence"] == "singlebandpseudocolor"
    assert "modeller" in data["steps"]
    for name in ("toolbox.png", "dialog.png", "modeller.png", "result.png"):
        path = next(p for p in data["screenshots"] if p.endswith(name))
        assert os.path.getsize(path) > 20000, name
