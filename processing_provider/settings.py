"""The plugin's settings (Settings ▸ Options ▸ Processing ▸ Providers ▸ SPECIAL hyperspectral,
read by qgis_process from the same profile) and the models folder of Processing's options."""

from __future__ import annotations

import os
from typing import Optional

from ..core.device import DEVICES as _DEVICES
from ..core.spec.shared import DEFAULT_DEVICE

CACHE_SETTING = "SPECIAL_CLIP_CACHE"
DEVICE_SETTING = "SPECIAL_DEFAULT_DEVICE"
THREADS_SETTING = "SPECIAL_CPU_THREADS"
DEVICES = list(_DEVICES)  # the DEVICE parameter's options


def register_settings(provider_name: str, provider_icon) -> None:
    # Processing's own settings classes: QGIS has no public API for a provider's entries
    # under Options ▸ Processing ▸ Providers (QgsSettingsEntry does not show there).
    from processing.core.ProcessingConfig import ProcessingConfig, Setting

    from ..core.clip_backbone import default_cache_dir

    ProcessingConfig.settingIcons[provider_name] = provider_icon
    ProcessingConfig.addSetting(Setting(
        provider_name, CACHE_SETTING, "Folder for downloaded CLIP weights",
        default_cache_dir(), valuetype=Setting.FOLDER))
    ProcessingConfig.addSetting(Setting(
        provider_name, DEVICE_SETTING, "Default device of the algorithms' DEVICE parameter",
        DEFAULT_DEVICE, valuetype=Setting.SELECTION, options=DEVICES))
    ProcessingConfig.addSetting(Setting(
        provider_name, THREADS_SETTING, "CPU threads for PyTorch (0 = all cores)", 0,
        valuetype=Setting.INT, validator=_non_negative))
    ProcessingConfig.readSettings()


def _non_negative(value) -> None:
    try:
        ok = int(value) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError("Give a whole number of threads, 0 or more (0 = all cores).")


def unregister_settings() -> None:
    from processing.core.ProcessingConfig import ProcessingConfig

    for name in (CACHE_SETTING, DEVICE_SETTING, THREADS_SETTING):
        ProcessingConfig.removeSetting(name)


def _setting(name: str, readable: bool = False):
    try:
        from processing.core.ProcessingConfig import ProcessingConfig

        return ProcessingConfig.getSetting(name, readable=readable)
    except Exception:  # noqa: BLE001 (Processing not initialised: core's defaults)
        return None


def default_device() -> str:
    value = _setting(DEVICE_SETTING, readable=True)
    return value if value in DEVICES else DEFAULT_DEVICE


def cpu_threads() -> int:
    try:
        return max(0, int(_setting(THREADS_SETTING) or 0))
    except (TypeError, ValueError):
        return 0


# The models shipped with the plugin (processing_provider/models/*.model3) are listed by
# Processing's own model provider, under Models in the Toolbox, once their folder is one of
# its "Models folder" entries (Settings ▸ Options ▸ Processing ▸ Providers ▸ Models).
MODELS_FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


def _models_setting():
    # Processing's setting object: the public QgsSettings key alone would not reach the
    # model provider, which reads ProcessingConfig (no public API lists models folders).
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
        from processing.modeler.ModelerUtils import ModelerUtils
    except ImportError:  # Processing is not loaded: no model provider to show them
        return None
    return ProcessingConfig.settings.get(ModelerUtils.MODELS_FOLDER)


def set_models_folder(present: bool) -> None:
    """Add (or remove) the plugin's models folder in the Models folder setting. It is saved,
    because other plugins re-read Processing's settings from disk; unloading removes it."""
    setting = _models_setting()
    if setting is None:
        return
    folders = [f for f in str(setting.value or "").split(";") if f and f != MODELS_FOLDER]
    if present:
        folders.append(MODELS_FOLDER)
    value = ";".join(folders)
    if value != setting.value:
        setting.setValue(value)
        setting.save()


def clip_cache_dir() -> Optional[str]:
    """The weights cache folder of the Processing options, or None for core's default
    (environment variable SPECIAL_QGIS_CLIP_CACHE, else ~/.cache/special_qgis/clip)."""
    return _setting(CACHE_SETTING) or None

