"""special_qgis: zero-shot hyperspectral classification (SPECIAL) as a QGIS plugin.

One package, three source folders. In the plugin ZIP/installed copy, ``core/`` and
``processing_provider/`` sit inside this folder. In the repository they are this
folder's siblings, so the package's search path is extended to the repository root:
either way they import as ``special_qgis.core`` and ``special_qgis.processing_provider``
and no bare top-level ``core`` is ever put on ``sys.path``.
"""

import os as _os

_here = _os.path.dirname(_os.path.realpath(__file__))
if not _os.path.isdir(_os.path.join(_here, "core")):
    __path__.append(_os.path.dirname(_here))  # noqa: F821 (module __path__)


def __getattr__(name):
    """``special_qgis.__version__``, read from metadata.txt on first use (its only copy)."""
    if name == "__version__":
        from .core.version import software_version

        return software_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """QGIS entry point; imports QGIS lazily so ``special_qgis.core`` stays QGIS-free."""
    from .plugin import SpecialPlugin

    return SpecialPlugin(iface)
