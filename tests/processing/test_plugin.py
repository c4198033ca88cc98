"""The plugin loads the way desktop QGIS and qgis_process load it. Its metadata.txt:
tests/core/test_plugin_metadata.py."""

from qgis.core import QgsApplication

import special_qgis

ALGORITHMS = ["special:accuracy", "special:applymodel", "special:classify",
              "special:importproduct", "special:noiserobust", "special:pseudolabel",
              "special:pseudorgb"]


def _special_registered():
    return QgsApplication.processingRegistry().providerById("special") is not None


def test_desktop_lifecycle(qgis_iface, qgis_processing):
    plugin = special_qgis.classFactory(qgis_iface)
    assert not _special_registered()
    plugin.initGui()  # desktop QGIS calls only initGui
    try:
        provider = QgsApplication.processingRegistry().providerById("special")
        assert provider is not None
        assert sorted(a.id() for a in provider.algorithms()) == ALGORITHMS
        assert not provider.icon().isNull()
    finally:
        plugin.unload()
    assert not _special_registered()


def test_qgis_process_lifecycle(qgis_processing):
    plugin = special_qgis.classFactory(None)  # qgis_process passes no iface
    plugin.initProcessing()
    try:
        plugin.initProcessing()  # idempotent: no duplicate-id failure
        assert _special_registered()
    finally:
        plugin.unload()
    assert not _special_registered()


def test_help_names_every_parameter(provider):
    alg = QgsApplication.processingRegistry().algorithmById("special:pseudorgb")
    names = [p.name() for p in alg.parameterDefinitions()]
    assert names == ["INPUT", "WAVELENGTHS", "TARGET_WAVELENGTHS", "BAD_BANDS", "OUTPUT"]
    assert alg.parameterDefinition("TARGET_WAVELENGTHS").defaultValue() == "655,553,451"
    assert "nodata" in alg.shortHelpString()


def test_pseudolabel_interface(provider):
    """The contract scripts depend on (docs/method.md §4)."""
    alg = QgsApplication.processingRegistry().algorithmById("special:pseudolabel")
    names = [p.name() for p in alg.parameterDefinitions()]
    for name in ("INPUT", "CLASSES", "CLASSES_FILE", "MODEL", "PRETRAINED", "SCALES", "WINDOW",
                 "STRIDE", "DEVICE", "OUTPUT_LABELS", "OUTPUT_CONFIDENCE",
                 "OUTPUT_PROBABILITIES"):
        assert name in names
    defaults = {p.name(): p.defaultValue() for p in alg.parameterDefinitions()}
    assert (defaults["MODEL"], defaults["PRETRAINED"], defaults["SCALES"], defaults["WINDOW"],
            defaults["STRIDE"], defaults["DEVICE"]) == ("ViT-B-16", "openai", "1,2", 224, 112,
                                                         "auto")
    assert "guided filter" in alg.shortHelpString()


def test_cache_folder_setting(provider, monkeypatch, tmp_path):
    """The weights cache folder is a Processing option of the provider."""
    from processing.core.ProcessingConfig import ProcessingConfig

    from special_qgis.processing_provider import settings

    ProcessingConfig.setSettingValue(settings.CACHE_SETTING, str(tmp_path))
    assert settings.clip_cache_dir() == str(tmp_path)


def test_every_algorithm_has_help_citing_the_method_and_an_icon(provider):
    for alg in provider.algorithms():
        text = alg.shortHelpString()
        assert "Pang et al. 2025" in text, alg.id()
        assert len(text) > 600, alg.id()
        assert not alg.icon().isNull(), alg.id()
    def pixels(alg):
        image = alg.icon().pixmap(24, 24).toImage()
        return bytes(image.constBits().asarray(image.sizeInBytes()))

    icons = {alg.id(): pixels(alg) for alg in provider.algorithms()}
    assert len(set(icons.values())) == len(icons)  # each its own (classify: the plugin's)
