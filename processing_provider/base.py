"""The base class of the provider's algorithms (id, title, group, help and parameters from
the algorithm's spec in core/spec/), and running core with QGIS feedback: progress,
cancelling, and core's errors as Processing errors."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Optional, TypeVar

from qgis.core import QgsProcessingAlgorithm, QgsProcessingException, QgsProcessingFeedback
from qgis.PyQt.QtGui import QIcon

from ..core import dependencies
from ..core import spec as spec_mod
from ..core.errors import Cancelled, UserInputError
from ..core.progress import Progress
from .settings import cpu_threads

T = TypeVar("T")

# The plugin folder's icon: processing_provider/ sits in it (in the repository through the
# link special_qgis/processing_provider).
ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "icon.png")


def icon() -> QIcon:
    return QIcon(ICON_PATH)


class SpecialAlgorithm(QgsProcessingAlgorithm):
    """What every algorithm of the provider shares. Its title, group, help, parameters and
    outputs come from its spec (core.spec.spec(ALG_ID)); a subclass gives ALG_ID, NEEDS and
    processAlgorithm."""

    ALG_ID = ""
    NEEDS = dependencies.RASTER  # Python packages (import names) the algorithm runs on

    def spec(self) -> spec_mod.AlgorithmSpec:
        return spec_mod.spec(self.ALG_ID)

    def name(self):
        return self.ALG_ID

    def displayName(self):  # noqa: N802
        return self.spec().title

    def group(self):
        return spec_mod.GROUPS[self.groupId()]

    def groupId(self):  # noqa: N802
        return self.spec().group

    def shortHelpString(self):  # noqa: N802
        return self.spec().help

    def initAlgorithm(self, config=None):  # noqa: N802
        from .params import add_spec

        add_spec(self, self.spec())

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
    rasterio): it cannot run, and says what to install. It reads no spec (the specs read
    their defaults from core modules that need the missing packages)."""

    def __init__(self, alg_id: str, needs=dependencies.RASTER) -> None:
        super().__init__()
        self.ALG_ID = alg_id
        self.NEEDS = needs

    def createInstance(self):  # noqa: N802
        return UnavailableAlgorithm(self.ALG_ID, self.NEEDS)

    def displayName(self):  # noqa: N802
        return f"{self.ALG_ID} (unavailable: missing Python packages)"

    def groupId(self):  # noqa: N802
        return "special"

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
    from ..core.device import ENV_THREADS

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


def push_warnings(feedback, warnings: Sequence[str]) -> None:
    for text in warnings:
        feedback.pushWarning(text)
