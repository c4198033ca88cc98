"""The provider's settings (Processing ▸ Options ▸ Providers ▸ SPECIAL hyperspectral): the
default device and the CPU threads, honoured in QGIS and by qgis_process. The
threads value's validation alone: tests/core/test_provider_settings.py."""

import configparser
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from special_qgis.processing_provider import settings as plugin_settings

from conftest import REPO, qgis_settings_file
from rasters import write_gtiff

DEVICE_ALGORITHMS = ["special:pseudolabel", "special:noiserobust", "special:applymodel",
                     "special:classify"]


@pytest.fixture
def settings(provider):
    from processing.core.ProcessingConfig import ProcessingConfig

    yield ProcessingConfig
    ProcessingConfig.setSettingValue(plugin_settings.DEVICE_SETTING, 0)
    ProcessingConfig.setSettingValue(plugin_settings.THREADS_SETTING, 0)


def test_settings_are_registered_with_defaults(settings):
    assert settings.getSetting(plugin_settings.DEVICE_SETTING, readable=True) == "auto"
    assert int(settings.getSetting(plugin_settings.THREADS_SETTING)) == 0  # QSettings may give "0"
    assert settings.getSetting(plugin_settings.CACHE_SETTING)


def test_default_device_is_the_device_parameters_default(settings):
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    settings.setSettingValue(plugin_settings.DEVICE_SETTING, plugin_settings.DEVICES.index("cpu"))
    for alg_id in DEVICE_ALGORITHMS:
        alg = registry.createAlgorithmById(alg_id)
        assert alg.parameterDefinition("DEVICE").defaultValue() == "cpu", alg_id


def test_threads_setting_is_applied_and_logged(settings, tmp_path, tiny_clip):
    import processing
    import torch
    from qgis.core import QgsProcessingFeedback

    before = torch.get_num_threads()
    texts = []

    class Feedback(QgsProcessingFeedback):
        def setProgressText(self, text):  # noqa: N802
            texts.append(text)

    settings.setSettingValue(plugin_settings.THREADS_SETTING, 1)
    src = write_gtiff(str(tmp_path / "rgb.tif"), np.random.default_rng(0).random(
        (3, 32, 32)).astype("float32"))
    try:
        processing.run("special:pseudolabel", {
            "INPUT": src, "CLASSES": "water; trees", "MODEL": tiny_clip.name,
            "PRETRAINED": tiny_clip.checkpoint, "WINDOW": 16, "STRIDE": 8, "DEVICE": "cpu",
            "OUTPUT_LABELS": str(tmp_path / "l.tif"),
            "OUTPUT_CONFIDENCE": str(tmp_path / "c.tif")}, feedback=Feedback())
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        os.environ.pop("SPECIAL_QGIS_THREADS", None)
    assert "stage I: on cpu, 1 thread" in texts, texts


def test_threads_setting_back_to_zero_restores_pytorchs_default(settings, tmp_path,
                                                                 tiny_clip):
    import processing
    import torch

    from special_qgis.core import device

    device.apply_threads()  # records PyTorch's own count if nothing did yet
    default = device._default_threads
    src = write_gtiff(str(tmp_path / "rgb.tif"), np.random.default_rng(0).random(
        (3, 32, 32)).astype("float32"))

    def run(name):
        processing.run("special:pseudolabel", {
            "INPUT": src, "CLASSES": "water; trees", "MODEL": tiny_clip.name,
            "PRETRAINED": tiny_clip.checkpoint, "WINDOW": 16, "STRIDE": 8, "DEVICE": "cpu",
            "OUTPUT_LABELS": str(tmp_path / f"{name}l.tif"),
            "OUTPUT_CONFIDENCE": str(tmp_path / f"{name}c.tif")})
        return torch.get_num_threads()

    try:
        settings.setSettingValue(plugin_settings.THREADS_SETTING, default + 1)
        assert run("a") == default + 1
        settings.setSettingValue(plugin_settings.THREADS_SETTING, 0)
        assert run("b") == default
        assert "SPECIAL_QGIS_THREADS" not in os.environ
    finally:
        torch.set_num_threads(default)
        os.environ.pop("SPECIAL_QGIS_THREADS", None)


def test_qgis_process_reads_the_settings_of_its_profile(tmp_path, tiny_clip):
    """A profile whose settings say cpu and 1 thread: qgis_process's DEVICE default is cpu,
    and PyTorch runs on one thread."""
    root = tmp_path / "profiles"
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "install_plugin.py"),
                    "--link", str(root)], check=True, capture_output=True)
    ini = qgis_settings_file(root)
    config = configparser.RawConfigParser()
    config.optionxform = str
    config.read(ini)
    config.add_section("Processing")
    config.set("Processing", "Configuration\\SPECIAL_DEFAULT_DEVICE",
               str(plugin_settings.DEVICES.index("cpu")))
    config.set("Processing", "Configuration\\SPECIAL_CPU_THREADS", "1")
    with open(ini, "w") as fh:
        config.write(fh, space_around_delimiters=False)
    env = dict(os.environ, QGIS_CUSTOM_CONFIG_PATH=str(root))
    qgis_process = os.path.join(REPO, "scripts", "qgis_process")
    helped = subprocess.run([qgis_process, "--json", "help", "special:noiserobust"], env=env,
                            capture_output=True, text=True, timeout=120)
    help_json = json.loads(helped.stdout[helped.stdout.index("{"):])
    assert help_json["parameters"]["DEVICE"]["default_value"] == "cpu"
    src = write_gtiff(str(tmp_path / "rgb.tif"), np.random.default_rng(0).random(
        (3, 32, 32)).astype("float32"))
    ran = subprocess.run([qgis_process, "run", "special:pseudolabel", "--", f"INPUT={src}",
                          "CLASSES=water;trees", f"MODEL={tiny_clip.name}",
                          f"PRETRAINED={tiny_clip.checkpoint}", "WINDOW=16", "STRIDE=8",
                          f"OUTPUT_LABELS={tmp_path / 'l.tif'}",
                          f"OUTPUT_CONFIDENCE={tmp_path / 'c.tif'}"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "stage I: on cpu, 1 thread" in ran.stdout, ran.stdout
