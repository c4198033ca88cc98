"""The core layer runs on the engine's dependencies alone: `make test-core` runs it with
pytest-qgis switched off, and then nothing may have imported QGIS."""

import sys

import pytest


def test_core_layer_never_loaded_qgis(request):
    if request.config.pluginmanager.hasplugin("pytest_qgis"):
        pytest.skip("pytest-qgis is on (make test): it loads QGIS itself")
    loaded = sorted(m for m in sys.modules if m == "qgis" or m.startswith("qgis."))
    assert loaded == []
