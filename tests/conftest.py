import os
import sys
import tempfile

import pytest

# Isolated QGIS profile and caches: tests never touch the user's QGIS settings, and never
# download anything.
_sandbox = tempfile.mkdtemp(prefix="special-qgis-tests-")
os.environ.setdefault("QGIS_CUSTOM_CONFIG_PATH", os.path.join(_sandbox, "profile"))
os.environ.setdefault("XDG_RUNTIME_DIR", os.path.join(_sandbox, "runtime"))
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QGIS_PROCESS = os.path.join(REPO, "scripts", "qgis_process")


def pytest_addoption(parser):
    parser.addoption(
        "--gdal-exceptions", choices=("default", "on"), default="default",
        help="on: call gdal/ogr/osr.UseExceptions() before any test, as QGIS 3.40's "
             "Processing does for its whole process, and leave out the tests that run "
             "QGIS in another process (where this process's setting does not reach).")


# Tests whose GDAL calls happen in a child process (qgis_process, desktop QGIS, scripts).
_OTHER_PROCESS_FIXTURES = {"qgis_process"}
_OTHER_PROCESS_MODULES = {"test_desktop.py", "test_demo.py"}


def pytest_configure(config):
    if config.getoption("--gdal-exceptions") == "on":
        from osgeo import gdal, ogr, osr

        # gdal last: its handler must be on top for a test to switch it off and on again.
        for module in (osr, ogr, gdal):
            module.UseExceptions()


_LAYERS = ("core", "processing", "integration")


def pytest_collection_modifyitems(config, items):
    # Each test's layer is its folder (tests/core, tests/processing, tests/integration);
    # files still at the top of tests/ are processing tests.
    # A test that runs qgis_process is an integration test wherever it sits.
    for item in items:
        folder = item.path.parent.name
        if _OTHER_PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            folder = "integration"
        item.add_marker(folder if folder in _LAYERS else "processing")
    if config.getoption("--gdal-exceptions") != "on":
        return
    kept, other = [], []
    for item in items:
        in_child = (_OTHER_PROCESS_FIXTURES & set(getattr(item, "fixturenames", ()))
                    or item.path.name in _OTHER_PROCESS_MODULES)
        (other if in_child else kept).append(item)
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = kept


@pytest.fixture(autouse=True)
def _gdal_exceptions_stay(request):
    """With --gdal-exceptions=on, no test may leave them switched off for the next."""
    yield
    if request.config.getoption("--gdal-exceptions") == "on":
        from osgeo import gdal

        assert gdal.GetUseExceptions(), "a test left GDAL's exceptions off"


def qgis_settings_file(profiles_root):
    """The default profile's settings file of the QGIS running the tests (QGIS3.ini on
    QGIS 3, QGIS4.ini on QGIS 4)."""
    from qgis.core import Qgis

    return os.path.join(str(profiles_root), "profiles", "default", "QGIS",
                        f"QGIS{Qgis.QGIS_VERSION_INT // 10000}.ini")


@pytest.fixture
def provider(qgis_processing):
    """The special provider registered for one test (duplicate ids would fail)."""
    from qgis.core import QgsApplication

    from special_qgis.processing_provider.provider import SpecialProvider

    prov = SpecialProvider()
    assert QgsApplication.processingRegistry().addProvider(prov)
    yield prov
    QgsApplication.processingRegistry().removeProvider(prov)


@pytest.fixture(scope="session")
def qgis_process():
    """Run scripts/qgis_process (the users' wrapper) against the tests' own profile,
    with the plugin installed there the way `make install` does it."""
    import subprocess

    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "install_plugin.py"),
                    "--link", os.environ["QGIS_CUSTOM_CONFIG_PATH"]], check=True,
                   capture_output=True)

    def run(*args, timeout=300):
        return subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True,
                              timeout=timeout)

    return run


TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8,
                   "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2,
                 "layers": 2},
}
TINY_NAME = "special-tiny-vit"


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    """A tiny open_clip ViT (real architecture, random weights) saved as checkpoint files
    and registered the way users register extra architectures (SPECIAL_QGIS_MODEL_CONFIGS),
    so subprocesses such as qgis_process see it too."""
    import json
    from types import SimpleNamespace

    import open_clip
    import torch
    from safetensors.torch import save_file

    folder = tmp_path_factory.mktemp("tiny_clip")
    configs = folder / "configs"
    configs.mkdir()
    (configs / f"{TINY_NAME}.json").write_text(json.dumps(TINY_CONFIG))
    wider = dict(TINY_CONFIG, vision_cfg=dict(TINY_CONFIG["vision_cfg"], width=96))
    (configs / f"{TINY_NAME}-wide.json").write_text(json.dumps(wider))
    os.environ["SPECIAL_QGIS_MODEL_CONFIGS"] = str(configs)
    open_clip.add_model_config(str(configs))
    torch.manual_seed(0)
    model = open_clip.create_model(TINY_NAME).eval()
    checkpoint = folder / "tiny.pt"
    torch.save(model.state_dict(), checkpoint)
    safetensors = folder / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(safetensors))
    return SimpleNamespace(name=TINY_NAME, wide=f"{TINY_NAME}-wide", checkpoint=str(checkpoint),
                           safetensors=str(safetensors), model=model, patch=8)
