"""GDAL/OGR/OSR calls that behave the same whether GDAL's Python exceptions are on or off.

QGIS 3.40's Processing calls ``gdal.UseExceptions()`` for the whole process (QGIS 3.22
never does; GDAL 4 will by default). With exceptions off a failing call returns None or an
error code; with them on it raises RuntimeError. Core never toggles the process-wide
setting (other threads of QGIS depend on it): it calls through these helpers instead, which
give the first behaviour in both modes, so the caller's friendly UserInputError is raised
either way. ``make test`` runs the suite a second time with exceptions forced on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional


def call(func: Callable[..., Any], *args) -> Any:
    """``func(*args)``, or None where GDAL failed."""
    try:
        return func(*args)
    except RuntimeError:
        return None


def succeeded(func: Callable[..., Any], *args) -> bool:
    """For calls that return a CPLErr/OGRErr code: True when ``func(*args)`` succeeded."""
    try:
        result = func(*args)
    except RuntimeError:
        return False
    return result is None or result == 0


def checked(func: Callable[..., Any], *args) -> tuple[Any, Optional[str]]:
    """``(func(*args), None)``, or ``(None, GDAL's message)`` where it failed: raised, or
    (exceptions off) left a CE_Failure behind, the only sign some drivers give, e.g. an
    attribute filter GeoPackage cannot run."""
    from osgeo import gdal

    gdal.ErrorReset()
    try:
        result = func(*args)
    except RuntimeError as exc:
        return None, str(exc)
    if gdal.GetLastErrorType() >= gdal.CE_Failure:
        return None, gdal.GetLastErrorMsg()
    return result, None
