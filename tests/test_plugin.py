"""The plugin loads the way desktop QGIS and qgis_process load it."""

import configparser
import os

from qgis.core import QgsApplication

import special_qgis

from conftest import REPO


def _special_registered():
    return QgsApplication.processingRegistry().providerById("special") is not None


def test_desktop_lifecycle(qgis_iface, qgis_processing):
    plugin = special_qgis.classFactory(qgis_iface)
    assert not _special_registered()
    plugin.initGui()  # desktop QGIS calls only initGui
    provider = QgsApplication.processingRegistry().providerById("special")
    assert provider is not None
    assert [a.id() for a in provider.algorithms()] == ["special:pseudorgb"]
    assert not provider.icon().isNull()
    plugin.unload()
    assert not _special_registered()


def test_qgis_process_lifecycle(qgis_processing):
    plugin = special_qgis.classFactory(None)  # qgis_process passes no iface
    plugin.initProcessing()
    plugin.initProcessing()  # idempotent: no duplicate-id failure
    assert _special_registered()
    plugin.unload()
    assert not _special_registered()


def test_metadata():
    meta = configparser.ConfigParser()
    meta.read(os.path.join(REPO, "metadata.txt"))
    general = meta["general"]
    assert general["hasProcessingProvider"] == "yes"
    assert general["qgisMinimumVersion"] == "3.22"
    assert len(general["description"]) > 40
    assert os.path.isfile(os.path.join(REPO, "special_qgis", general["icon"]))
    # QGIS reads metadata.txt from inside the plugin folder.
    assert os.path.isfile(os.path.join(REPO, "special_qgis", "metadata.txt"))


def test_help_names_every_parameter(provider):
    alg = QgsApplication.processingRegistry().algorithmById("special:pseudorgb")
    names = [p.name() for p in alg.parameterDefinitions()]
    assert names == ["INPUT", "WAVELENGTHS", "TARGET_WAVELENGTHS", "OUTPUT"]
    assert alg.parameterDefinition("TARGET_WAVELENGTHS").defaultValue() == "655,553,451"
    assert "nodata" in alg.shortHelpString()
