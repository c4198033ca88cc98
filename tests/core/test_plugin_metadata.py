"""metadata.txt, which QGIS reads to list and load the plugin (no QGIS needed to check it).
The plugin loading itself: tests/processing/test_plugin.py."""

import configparser
import os

from conftest import REPO


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
