"""What every algorithm shares: running core with QGIS feedback, turning core's
errors into Processing errors, plugin settings, output styling and the icon."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Optional, TypeVar

from qgis.core import (
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsMultiBandColorRenderer,
    QgsPalettedRasterRenderer,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterRasterLayer,
    QgsRasterLayer,
    QgsRasterMinMaxOrigin,
    QgsRasterShader,
    QgsRectangle,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt.QtGui import QColor, QIcon

from ..core import dependencies
from ..core.errors import Cancelled, UserInputError
from ..core.progress import Progress

T = TypeVar("T")

ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "special_qgis", "icon.png")
if not os.path.exists(ICON_PATH):  # plugin ZIP layout: icon.png next to processing_provider/
    ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "icon.png")


def icon() -> QIcon:
    return QIcon(ICON_PATH)


class SpecialAlgorithm(QgsProcessingAlgorithm):
    """What every algorithm of the provider shares: id, title, group and icon come from
    class attributes; the help and the parameters stay in each algorithm's module."""

    ALG_ID = ""
    TITLE = ""
    GROUPS = {"tools": "Hyperspectral tools", "special": "SPECIAL classification"}
    GROUP = "special"
    NEEDS = dependencies.RASTER  # Python packages (import names) the algorithm runs on

    def name(self):
        return self.ALG_ID

    def displayName(self):  # noqa: N802
        return self.TITLE

    def group(self):
        return self.GROUPS[self.GROUP]

    def groupId(self):  # noqa: N802
        return self.GROUP

    def icon(self):
        # Each algorithm's own icon (icons/<id>.svg), else the plugin's.
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "icons",
                            f"{self.ALG_ID}.svg")
        return QIcon(path) if os.path.exists(path) else icon()

    def createInstance(self):  # noqa: N802
        return type(self)()

    def raster_path(self, parameters, name: str, context) -> Optional[str]:
        """The file behind a raster-layer parameter (None when an optional one is empty).

        A file path is used as it is, without loading it as a QGIS layer: loading can
        write a .aux.xml beside the user's input, and QGIS cannot load a PRISMA or EMIT
        product as one layer. A layer added from such a product (a GDAL subdataset)
        gives its product file."""
        from ..core.products import product_file  # here: it needs rasterio, which may be absent

        value = parameters.get(name)
        if isinstance(value, str) and os.path.isfile(value):
            return value
        layer = self.parameterAsRasterLayer(parameters, name, context)
        return product_file(layer.source()) if layer is not None else None

    def canExecute(self):  # noqa: N802
        absent = dependencies.missing(self.NEEDS)
        return (False, dependencies.message(absent)) if absent else (True, "")

    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802
        # qgis_process and processing.run do not ask canExecute: say it here too.
        ok, message = self.canExecute()
        if not ok:
            raise QgsProcessingException(message)
        return True


class UnavailableAlgorithm(SpecialAlgorithm):
    """Stands in the Toolbox for an algorithm whose module cannot even be imported (no
    rasterio): it cannot run, and says what to install."""

    def __init__(self, alg_id: str, needs=dependencies.RASTER) -> None:
        super().__init__()
        self.ALG_ID = alg_id
        self.TITLE = f"{alg_id} (unavailable: missing Python packages)"
        self.NEEDS = needs

    def createInstance(self):  # noqa: N802
        return UnavailableAlgorithm(self.ALG_ID, self.NEEDS)

    def shortHelpString(self):  # noqa: N802
        return self.canExecute()[1] or "Restart QGIS to load this algorithm."

    def initAlgorithm(self, config=None):  # noqa: N802
        pass

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        raise QgsProcessingException(self.shortHelpString())


def progress_for(feedback: QgsProcessingFeedback) -> Progress:
    """A core Progress that drives the Processing progress bar and honours Cancel."""
    last_text = [None]

    def report(fraction: float, text: str) -> None:
        feedback.setProgress(100.0 * fraction)
        if text and text.split(":")[0] != last_text[0]:
            # One log line per stage, not per block.
            last_text[0] = text.split(":")[0]
            feedback.setProgressText(text)

    return Progress(report, feedback.isCanceled, log=feedback.pushInfo)


_threads_set_by_us = [False]


def run_core(feedback: QgsProcessingFeedback, func: Callable[..., T], *args, **kwargs) -> T:
    """Call ``func(*args, progress=..., **kwargs)``; user errors become Processing errors."""
    from ..core.clip_backbone import ENV_THREADS

    # Core applies the setting on the thread that runs the algorithm. Setting 0 after an
    # earlier value takes ours back (a value from the user's shell stays).
    threads = cpu_threads()
    if threads > 0:
        os.environ[ENV_THREADS] = str(threads)
        _threads_set_by_us[0] = True
    elif _threads_set_by_us[0]:
        os.environ.pop(ENV_THREADS, None)
        _threads_set_by_us[0] = False
    try:
        return func(*args, progress=progress_for(feedback), **kwargs)
    except UserInputError as exc:
        raise QgsProcessingException(str(exc)) from None
    except Cancelled:
        raise QgsProcessingException("Cancelled: no output was written.") from None


# ------------------------------------------------------------------------- settings

# Shown under Settings ▸ Options ▸ Processing ▸ Providers ▸ SPECIAL hyperspectral, and read
# by qgis_process from the same profile.
CACHE_SETTING = "SPECIAL_CLIP_CACHE"
DEVICE_SETTING = "SPECIAL_DEFAULT_DEVICE"
THREADS_SETTING = "SPECIAL_CPU_THREADS"
DEVICES = ["auto", "cpu", "cuda"]


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
        "auto", valuetype=Setting.SELECTION, options=DEVICES))
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
    return value if value in DEVICES else "auto"


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


# -------------------------------------------------------------------------- styling

_post_processors = []  # QGIS does not keep the Python objects alive: we must.


class _RasterStyler(QgsProcessingLayerPostProcessorInterface):
    def __init__(self, apply: Callable[[QgsRasterLayer], None]) -> None:
        super().__init__()
        self._apply = apply

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        if isinstance(layer, QgsRasterLayer):
            self._apply(layer)
            layer.triggerRepaint()


def _on_load(context, path: str, name: str, apply: Callable[[QgsRasterLayer], None]) -> None:
    """Style ``path`` now (a default .qml beside it, which QGIS applies whenever the file is
    opened later, from any route) and when Processing loads it into the project."""
    layer = QgsRasterLayer(path, name, "gdal")
    if layer.isValid():
        apply(layer)
        # The layer's default style (a .qml named as the file); saveDefaultStyle is
        # deprecated from 3.40 on, saveNamedStyle does the same on 3.22 to 4.x.
        layer.saveNamedStyle(os.path.splitext(path)[0] + ".qml")
    if not context.willLoadLayerOnCompletion(path):
        return
    details = context.layerToLoadOnCompletionDetails(path)
    details.name = name
    styler = _RasterStyler(apply)
    _post_processors.append(styler)
    details.setPostProcessor(styler)


def style_class_raster(context, path: str, name: str, names: Sequence[str],
                       colours: Sequence[Sequence[int]]) -> None:
    """Show ``path`` as a paletted layer with the class names as legend labels."""
    def apply(layer):
        classes = [QgsPalettedRasterRenderer.Class(i, QColor(*rgb[:3]), label)
                   for i, (label, rgb) in enumerate(zip(names, colours, strict=True), start=1)]
        layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))

    _on_load(context, path, name, apply)


def style_confidence_raster(context, path: str, name: str) -> None:
    """Show a [0, 1] confidence raster with a viridis ramp (dark = unsure)."""
    def apply(layer):
        ramp = QgsStyle.defaultStyle().colorRamp("Viridis")
        shader_fn = QgsColorRampShader(0.0, 1.0, ramp)
        shader_fn.classifyColorRamp(5, -1, QgsRectangle(), None)
        shader = QgsRasterShader(0.0, 1.0)
        shader.setRasterShaderFunction(shader_fn)
        renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
        renderer.setClassificationMin(0.0)
        renderer.setClassificationMax(1.0)
        layer.setRenderer(renderer)

    _on_load(context, path, name, apply)


def style_rgb_raster(context, path: str, name: str, bands: Sequence[int] = (1, 2, 3)) -> None:
    """Show ``bands`` (1-based red, green, blue) as RGB stretched to their 2–98 %
    cumulative counts (the values are unstretched reflectance or radiance)."""
    def apply(layer):
        renderer = QgsMultiBandColorRenderer(layer.dataProvider(), *bands)
        layer.setRenderer(renderer)
        layer.setContrastEnhancement(QgsContrastEnhancement.ContrastEnhancementAlgorithm.StretchToMinimumMaximum,
                                     QgsRasterMinMaxOrigin.Limits.CumulativeCut)

    _on_load(context, path, name, apply)


# ----------------------------------------------------------------- shared parameters

class HyperspectralInputParameter(QgsProcessingParameterRasterLayer):
    """A raster-layer parameter that also takes a PRISMA (.he5) or EMIT (.nc) product file,
    which QGIS cannot open as one layer, and does not load a file path as a layer just to
    check it (that can write a .aux.xml beside the input); core checks the file."""

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802
        if isinstance(value, str) and os.path.isfile(value):
            return True
        return super().checkValueIsAcceptable(value, context)

    def clone(self):
        copy = HyperspectralInputParameter(self.name(), self.description(),
                                           self.defaultValue(), bool(self.flags() & _OPTIONAL))
        copy.setFlags(self.flags())
        return copy


_OPTIONAL = QgsProcessingParameterDefinition.Flag.FlagOptional

INPUT_HELP = (
    "<b>Input raster</b>: a hyperspectral raster (GeoTIFF, ENVI...) or a product file as "
    "downloaded: EnMAP or DESIS *-SPECTRAL_IMAGE (with its METADATA.XML beside it), PRISMA "
    "L2D .he5, EMIT L2A reflectance .nc, AVIRIS ENVI. Bands may come in any order "
    "(detector order, overlapping spectrometers).\n"
)

BAD_BANDS_HELP = (
    "<b>Bad bands</b> (advanced): bands the file flags (bbl = 0, a product's flags) or that "
    "hold no valid value at all are always left out, and the log lists them. Add more as "
    "1-based band numbers and ranges and/or wavelength ranges in nm, e.g. "
    "<i>130-135,165-182</i> or <i>1340-1450nm,1790-1960nm</i>. A pixel is nodata when any "
    "good band is nodata there.\n"
)


def add_input_parameter(alg, name: str = "INPUT", label: str = "Input raster") -> None:
    alg.addParameter(HyperspectralInputParameter(name, label))


def add_bad_bands_parameter(alg) -> None:
    from qgis.core import QgsProcessingParameterString

    param = QgsProcessingParameterString(
        "BAD_BANDS", "Bad bands to leave out (numbers, ranges, or nm ranges)", optional=True)
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
    alg.addParameter(param)


def bad_bands(alg, parameters, context) -> Optional[str]:
    return alg.parameterAsString(parameters, "BAD_BANDS", context) or None


WAVELENGTHS_HELP = (
    "<b>Band wavelengths</b>: band centres in nm, comma-separated, one per band in the "
    "file's band order (any order: detector order and overlaps are fine). Leave "
    "empty to read them from the raster's metadata (ENVI header 'wavelength' and "
    "'wavelength units', or GDAL band metadata 'wavelength' + 'wavelength_units', or "
    "IMAGERY/CENTRAL_WAVELENGTH_UM). Numbers below 100 without units are taken as "
    "micrometres.\n"
    "<b>Target wavelengths</b>: nm, default 655,553,451 (red, green, blue).\n"
)


def add_wavelength_parameters(alg, advanced: bool = False, targets: bool = True) -> None:
    """WAVELENGTHS and TARGET_WAVELENGTHS, as every algorithm that makes a pseudo-RGB has
    them (``targets=False``: WAVELENGTHS alone)."""
    from qgis.core import QgsProcessingParameterString

    params = [
        QgsProcessingParameterString(
            "WAVELENGTHS", "Band wavelengths (nm, comma-separated; empty = from metadata)",
            optional=True),
    ]
    if targets:
        params.append(QgsProcessingParameterString(
            "TARGET_WAVELENGTHS", "Target wavelengths of the pseudo-RGB (nm)",
            defaultValue="655,553,451"))
    for param in params:
        if advanced:
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        alg.addParameter(param)


DEVICE_HELP = ("<b>Device</b>: auto (a CUDA GPU when PyTorch sees one, else the CPU), cpu or "
               "cuda (an error when there is no GPU). Its default is set in Settings ▸ "
               "Options ▸ Processing ▸ Providers ▸ SPECIAL hyperspectral (auto unless "
               "changed), as is the number of CPU threads.\n")


def add_device_parameter(alg) -> None:
    from qgis.core import QgsProcessingParameterString

    alg.addParameter(QgsProcessingParameterString(
        "DEVICE", "Device (auto, cpu or cuda)", defaultValue=default_device()))


def push_warnings(feedback, warnings: Sequence[str]) -> None:
    for text in warnings:
        feedback.pushWarning(text)
