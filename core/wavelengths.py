"""Band centre wavelengths: reading them from raster metadata, parsing user lists.

All wavelengths leave this module in nanometres as float64 arrays, one per band.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Optional

import numpy as np

from .errors import UserInputError

_NM_UNITS = {"nm", "nanometer", "nanometers", "nanometre", "nanometres"}
_UM_UNITS = {
    "um", "µm", "μm", "micrometer", "micrometers", "micrometre", "micrometres",
    "micron", "microns",
}
# ENVI headers often say "Unknown"; GDAL writes nothing. Both fall back to the bare-number rule.
_BARE_UNITS = {"", "unknown", "none", "index"}

HOW_TO_GIVE = (
    "Give them with the WAVELENGTHS parameter (band centres in nm, comma-separated, one per "
    "band, e.g. '450,550,650'), or store them in the raster: an ENVI header line "
    "'wavelength = {...}' with 'wavelength units = Nanometers', or GDAL band metadata items "
    "'wavelength' and 'wavelength_units'."
)


def to_nm(values: np.ndarray | Sequence[float], units: Optional[str] = None, *,
          source: str = "wavelengths") -> np.ndarray:
    """Convert wavelengths to nm.

    ``units`` may be nm or µm in their usual spellings; with no or unknown units a bare
    number below 100 is taken as µm (no optical sensor has a band below 100 nm).
    """
    arr = np.asarray(values, dtype=np.float64)
    key = (units or "").strip().lower()
    if key in _NM_UNITS:
        return arr.copy()
    if key in _UM_UNITS:
        return arr * 1000.0
    if key in _BARE_UNITS:
        return np.where(arr < 100.0, arr * 1000.0, arr)
    raise UserInputError(
        f"{source}: unknown wavelength units '{units}'. Use nanometres or micrometres "
        f"(nm, um, Nanometers, Micrometers). {HOW_TO_GIVE}"
    )


def parse_number_list(text: str, param: str) -> list[float]:
    """Parse '655, 553 451' (commas, semicolons or spaces) into floats; name ``param`` on error."""
    tokens = [t for t in re.split(r"[,;\s{}]+", text.strip()) if t]
    if not tokens:
        raise UserInputError(f"{param} is empty: give a comma-separated list of numbers.")
    values = []
    for tok in tokens:
        try:
            value = float(tok)
        except ValueError:
            raise UserInputError(
                f"{param}: '{tok}' is not a number. Give a comma-separated list of numbers "
                f"in nm, e.g. '655,553,451'."
            ) from None
        if not np.isfinite(value):
            raise UserInputError(f"{param}: '{tok}' is not a finite number.")
        values.append(value)
    return values


def validate(wavelengths_nm: np.ndarray, band_count: int, source: str,
             skip: Sequence[int] = ()) -> np.ndarray:
    """Check one finite, positive wavelength per band; return them (nm).

    Any order is valid: sensors deliver bands in detector order, and overlapping
    spectrometers repeat wavelengths. Bands in ``skip`` (0-based: flagged bad by the file
    itself, e.g. PRISMA's unused bands at 0 nm) are not checked.
    """
    wl = np.asarray(wavelengths_nm, dtype=np.float64)
    if wl.ndim != 1 or wl.size != band_count:
        raise UserInputError(
            f"{source}: {wl.size} wavelengths given but the raster has {band_count} bands; "
            f"give exactly one wavelength per band."
        )
    checked = np.ones(wl.size, bool)
    checked[list(skip)] = False
    bad = checked & ~(np.isfinite(wl) & (wl > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise UserInputError(
            f"{source}: wavelengths must be positive numbers, but band {i + 1} has "
            f"{wl[i]:g}.")
    return wl


def _band_value(tags: dict, *keys: str) -> Optional[str]:
    lowered = {k.lower(): v for k, v in tags.items()}
    for key in keys:
        if key.lower() in lowered:
            return lowered[key.lower()]
    return None


def read(path: str) -> Optional[np.ndarray]:
    """Wavelengths (nm) stored in a raster's metadata, or None if it has none."""
    from .raster_io import open_raster  # local: raster_io imports this module's errors only

    with open_raster(path) as src:
        return read_open(src, path)


def read_open(src, path: str) -> Optional[np.ndarray]:
    """:func:`read` on an open rasterio dataset.

    Looks, in order, at GDAL band metadata ``wavelength`` + ``wavelength_units`` (what
    GDAL's ENVI driver exposes), the ``IMAGERY`` domain's ``CENTRAL_WAVELENGTH_UM``, and
    the dataset-level ENVI header (``wavelength = {...}``).
    """
    count = src.count
    source = f"wavelength metadata of '{path}'"

    per_band = [src.tags(b) for b in range(1, count + 1)]
    values = [_band_value(t, "wavelength") for t in per_band]
    if all(v is not None for v in values):
        units = _band_value(per_band[0], "wavelength_units", "wavelength units")
        # (all present: the filter only narrows the type)
        return to_nm([_to_float(v, source) for v in values if v is not None], units,
                     source=source)

    imagery = [src.tags(b, ns="IMAGERY") for b in range(1, count + 1)]
    values = [_band_value(t, "CENTRAL_WAVELENGTH_UM") for t in imagery]
    if all(v is not None for v in values):
        return to_nm([_to_float(v, source) for v in values if v is not None], "um",
                     source=source)

    envi = src.tags(ns="ENVI")
    text = _band_value(envi, "wavelength")
    if text:
        numbers = parse_number_list(text, source)
        return to_nm(numbers, _band_value(envi, "wavelength_units", "wavelength units"),
                     source=source)
    return None


def _to_float(text: str, source: str) -> float:
    try:
        return float(str(text).strip())
    except ValueError:
        raise UserInputError(
            f"{source}: '{text}' is not a number. {HOW_TO_GIVE}"
        ) from None


def parse_override(text: Optional[str], band_count: int, param: str = "WAVELENGTHS"
                   ) -> Optional[np.ndarray]:
    """The user's WAVELENGTHS (nm, one per band), or None when empty."""
    if text is None or not str(text).strip():
        return None
    return validate(to_nm(parse_number_list(str(text), param), None, source=param),
                    band_count, param)
