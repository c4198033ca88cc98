"""The plugin ZIP (`make package`): the layout QGIS's "Install from ZIP" expects, nothing
that is not the plugin, complete metadata, and it works from a fresh profile."""

import configparser
import importlib.util
import os
import stat
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import rasterio

from conftest import QGIS_PROCESS, REPO, qgis_settings_file
from rasters import CRS_UTM, TRANSFORM, expected_pseudo_rgb, make_cube, write_gtiff

INSTALL_PLUGIN = os.path.join(REPO, "scripts", "install_plugin.py")
ZIP_COMMAND = "scripts/install_plugin.py --zip dist/special_qgis.zip"
NEVER = {"tests", "__pycache__", "bench", "scripts", ".pytest_cache", ".ruff_cache", ".git",
         ".venv", ".qgis-profile", ".qgis-settings", "build", "dist", "demo"}


def _install_plugin_module():
    spec = importlib.util.spec_from_file_location("install_plugin", INSTALL_PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory):
    """Built with make package's own command, into a scratch folder (not the checkout's
    dist/, which other runs may be using)."""
    path = tmp_path_factory.mktemp("dist") / "special_qgis.zip"
    subprocess.run([sys.executable, INSTALL_PLUGIN, "--zip", str(path)], check=True,
                   capture_output=True, cwd="/")
    return path


def _metadata(text):
    meta = configparser.ConfigParser(interpolation=None)
    meta.read_string(text)
    return meta["general"]


def test_make_package_runs_this_command():
    out = subprocess.run(["make", "-n", "-C", REPO, "package"], capture_output=True, text=True,
                         check=True)
    assert ZIP_COMMAND in out.stdout


def test_zip_layout(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
    names = [i.filename for i in infos]
    # One top folder named as the plugin: QGIS unpacks it into profiles/<p>/python/plugins.
    assert {n.split("/")[0] for n in names} == {"special_qgis"}
    files = {n[len("special_qgis/"):] for n in names if not n.endswith("/")}
    for item in ("__init__.py", "plugin.py", "metadata.txt", "icon.png", "requirements.txt",
                 "README.md", "core/__init__.py", "core/pseudo_rgb.py", "core/version.py",
                 "processing_provider/__init__.py", "processing_provider/provider.py",
                 "processing_provider/models/special_pipeline.model3"):
        assert item in files, item
    # Every source module of the repository is in it.
    for sub in ("core", "processing_provider"):
        for here, dirs, names_here in os.walk(os.path.join(REPO, sub)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names_here:
                if name.endswith((".py", ".html")):
                    rel = os.path.relpath(os.path.join(here, name), REPO).replace(os.sep, "/")
                    assert rel in files, rel
    for name in names:
        parts = name.rstrip("/").split("/")
        assert not NEVER.intersection(parts), name
        assert not parts[-1].startswith("."), name
        assert not name.endswith((".pyc", ".pyo", ".aux.xml", ".qml")), name
    for info in infos:  # real files only: a symlink would unpack as a dangling link
        assert not stat.S_ISLNK(info.external_attr >> 16), info.filename


def test_zip_metadata(plugin_zip):
    with zipfile.ZipFile(plugin_zip) as zf:
        text = zf.read("special_qgis/metadata.txt").decode("utf-8")
        init = zf.read("special_qgis/__init__.py").decode("utf-8")
    meta = _metadata(text)
    with open(os.path.join(REPO, "metadata.txt"), encoding="utf-8") as fh:
        assert text == fh.read()
    version = meta["version"]
    assert version.count(".") == 2 and all(p.isdigit() for p in version.split("."))
    assert meta["changelog"].splitlines()[0] == version  # newest first
    assert len(meta["changelog"].splitlines()) > 2
    for key in ("name", "description", "about", "author", "email", "homepage", "tracker",
                "repository", "icon"):
        assert meta[key].strip(), key
    for key in ("homepage", "tracker", "repository"):
        assert meta[key].startswith("https://"), key
    assert meta["qgisMinimumVersion"] == "3.22"
    # Without it QGIS 4's plugin manager takes the plugin for 3.x only (supportsQt6 is
    # obsolete there).
    assert meta["qgisMaximumVersion"] == "4.99"
    assert meta["hasProcessingProvider"] == "yes"
    # The version has one copy, metadata.txt; the package reads it from there.
    assert "__version__ =" not in init
    import special_qgis

    assert special_qgis.__version__ == version


@pytest.mark.parametrize("root, files", [
    ("QGIS3", ["QGIS3.ini"]), ("QGIS4", ["QGIS4.ini"]),
    ("custom", ["QGIS3.ini", "QGIS4.ini"])])
def test_enabled_in_the_settings_file_of_each_qgis(tmp_path, root, files):
    """QGIS 3 reads profiles/default/QGIS/QGIS3.ini, QGIS 4 QGIS4.ini; a custom root
    (QGIS_CUSTOM_CONFIG_PATH) may serve either."""
    _install_plugin_module().enable(str(tmp_path / root))
    folder = tmp_path / root / "profiles" / "default" / "QGIS"
    assert sorted(os.listdir(folder)) == files
    for name in files:
        ini = configparser.RawConfigParser()
        ini.optionxform = str
        ini.read(folder / name)
        assert ini.get("PythonPlugins", "special_qgis") == "true"


def _unpack_into_fresh_profile(plugin_zip, root):
    plugins = root / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    with zipfile.ZipFile(plugin_zip) as zf:
        zf.extractall(plugins)
    _install_plugin_module().enable(str(root))
    return plugins / "special_qgis"


def test_runs_from_a_fresh_profile(plugin_zip, tmp_path):
    """Unpacked as "Install from ZIP" does, enabled, run through qgis_process; the code that
    ran is the unpacked copy's, never the repository's. Run from the repository root, the
    hardest case: its special_qgis/ is right there, and scripts/qgis_process puts the venv
    (whose special_qgis.pth points at the repository) on PYTHONPATH. QGIS puts the profile's
    plugin folder first on sys.path, and .pth files are read only in site directories, not
    in PYTHONPATH entries."""
    root = tmp_path / "profiles_root"
    plugin = _unpack_into_fresh_profile(plugin_zip, root)
    ini = configparser.RawConfigParser()
    ini.optionxform = str
    ini.read(qgis_settings_file(root))
    assert ini.get("PythonPlugins", "special_qgis") == "true"
    # metadata.txt is a symlink in the repository; here it is the file itself.
    assert (plugin / "metadata.txt").is_file() and not (plugin / "metadata.txt").is_symlink()

    wavelengths = [420.0 + 30 * i for i in range(12)]
    cube = make_cube(bands=12, rows=17, cols=23, dtype="uint16", seed=3)
    src = write_gtiff(str(tmp_path / "scene.tif"), cube, wavelengths)
    out = tmp_path / "rgb.tif"
    # Python writes each imported module's bytecode under PYTHONPYCACHEPREFIX + the source's
    # folder: a record of which files QGIS's Python imported.
    pycache = tmp_path / "pycache"
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(root), PYTHONPYCACHEPREFIX=str(pycache))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    res = subprocess.run([QGIS_PROCESS, "run", "special:pseudorgb", "--", f"INPUT={src}",
                          f"OUTPUT={out}"], capture_output=True, text=True, timeout=300,
                         env=env, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr

    with rasterio.open(out) as ds:
        assert ds.count == 3
        assert (ds.width, ds.height) == (cube.shape[2], cube.shape[1])
        assert ds.crs == CRS_UTM
        assert ds.transform.almost_equals(TRANSFORM)
        got = ds.read()
    np.testing.assert_allclose(got, expected_pseudo_rgb(cube, wavelengths, [655, 553, 451]),
                               rtol=1e-6)

    def imported(folder):
        cached = pycache / os.path.relpath(folder, "/")
        return sorted(n.split(".")[0] for n in os.listdir(cached)) if cached.is_dir() else []

    assert "pseudorgb" in imported(plugin / "processing_provider")
    assert "pseudo_rgb" in imported(plugin / "core")
    assert "__init__" in imported(plugin)
    for sub in ("special_qgis", "core", "processing_provider"):
        assert imported(os.path.join(REPO, sub)) == [], sub
    # QGIS listed the plugin as loaded from this profile.
    listed = subprocess.run([QGIS_PROCESS, "plugins"], capture_output=True, text=True,
                            timeout=120, env=env, cwd=REPO)
    assert listed.returncode == 0, listed.stderr
    assert "* special_qgis" in listed.stdout

