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
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


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
