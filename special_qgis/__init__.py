"""special_qgis: zero-shot hyperspectral classification (SPECIAL) as a QGIS plugin.

``core/`` (the QGIS-free engine) and ``processing_provider/`` (the Processing layer) import
as ``special_qgis.core`` and ``special_qgis.processing_provider``. In the plugin ZIP they
are folders inside this one; in the repository they sit at the top level and this folder
holds committed symbolic links to them (``core -> ../core``), so both layouts are the same
package to Python, to type checkers and to IDEs, and no bare ``core`` is ever importable.
"""


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
