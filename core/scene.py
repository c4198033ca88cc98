"""A hyperspectral INPUT as every algorithm sees it: its grid, its bands' wavelengths, which
bands are good, and windowed reads of the good bands in physical units.

Bad bands are left out of every stage: those the file flags (``bbl`` = 0, a product's own
flags), those holding no valid value at all (EnMAP L2A fills its water-vapour bands with
nodata), and those the user names in BAD_BANDS. A pixel is nodata when any *good* band is
nodata (or NaN) there; bad bands never make a pixel nodata.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

import numpy as np

from . import products, raster_io
from . import wavelengths as wl_mod
from .errors import UserInputError
from .progress import Progress, as_progress

BAD_BANDS_EXAMPLE = "'130-135,165-182' or '1340-1450nm,1790-1960nm'"
_EMPTY_CACHE: dict = {}  # (path, size, mtime) → bands without a single valid value
_EMPTY_CACHE_SIZE = 16


def parse_bad_bands(text: Optional[str], count: int, wavelengths_nm: Optional[np.ndarray],
                    param: str = "BAD_BANDS") -> dict[int, str]:
    """BAD_BANDS → {0-based band: reason}.

    Items, comma- or semicolon-separated: a 1-based band number (``130``), a range of them
    (``130-135``), or a wavelength range in nm (``1340-1450nm``; also ``1340nm-1450nm``),
    which takes every band whose centre lies in it.
    """
    if text is None or not str(text).strip():
        return {}
    out: dict[int, str] = {}
    for item in [t.strip() for t in re.split(r"[,;]", str(text)) if t.strip()]:
        compact = item.replace(" ", "").lower()
        nm = re.fullmatch(r"(\d+(?:\.\d*)?)(?:nm)?-(\d+(?:\.\d*)?)nm", compact)
        number = re.fullmatch(r"(\d+)(?:-(\d+))?", compact)
        if nm:
            lo, hi = sorted((float(nm.group(1)), float(nm.group(2))))
            if wavelengths_nm is None:
                raise UserInputError(
                    f"{param}: '{item}' is a wavelength range, but INPUT's band wavelengths "
                    f"are unknown. Give band numbers instead (e.g. '130-135'), or give "
                    f"WAVELENGTHS. {wl_mod.HOW_TO_GIVE}")
            for i in np.flatnonzero((wavelengths_nm >= lo) & (wavelengths_nm <= hi)):
                out.setdefault(int(i), f"in BAD_BANDS ({item})")
        elif number:
            first = int(number.group(1))
            last = int(number.group(2) or first)
            if first > last:
                first, last = last, first
            if first < 1 or last > count:
                raise UserInputError(
                    f"{param}: '{item}' is out of range: INPUT has bands 1 to {count}. Band "
                    f"numbers count from 1; for wavelengths add 'nm' (e.g. '1340-1450nm').")
            for i in range(first - 1, last):
                out.setdefault(i, f"in BAD_BANDS ({item})")
        else:
            raise UserInputError(
                f"{param}: cannot read '{item}'. Give 1-based band numbers and ranges and/or "
                f"wavelength ranges in nm, comma-separated, e.g. {BAD_BANDS_EXAMPLE}.")
    return out


def _ranges(indices: Sequence[int]) -> str:
    """[0, 1, 2, 5] → '1-3, 6' (1-based)."""
    parts: list[str] = []
    run: list[int] = []
    for i in sorted(indices):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(f"{run[0] + 1}-{run[-1] + 1}" if len(run) > 1 else f"{run[0] + 1}")
        run = [i]
    if run:
        parts.append(f"{run[0] + 1}-{run[-1] + 1}" if len(run) > 1 else f"{run[0] + 1}")
    return ", ".join(parts)


class BandSource(Protocol):
    """What a :class:`Scene` reads through (``products.open_source``: ``GdalSource``,
    ``PrismaSource``, ``EmitSource``)."""

    product: str
    count: int
    height: int
    width: int
    crs: Any
    transform: Any

    def read(self, bands: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        ...

    def close(self) -> None:
        ...


@dataclass
class Scene:
    """An opened INPUT. ``good``: 0-based indices of the good bands in file order;
    ``bad``: {band: reason}; ``wavelengths``: nm per band (all bands) or None."""

    path: str
    source: BandSource
    wavelengths: Optional[np.ndarray]
    fwhm: Optional[np.ndarray]
    bad: dict = field(default_factory=dict)

    @property
    def product(self) -> str:
        return self.source.product

    @property
    def count(self) -> int:
        return self.source.count

    @property
    def height(self) -> int:
        return self.source.height

    @property
    def width(self) -> int:
        return self.source.width

    @property
    def shape(self) -> tuple[int, int]:
        return (self.source.height, self.source.width)

    @property
    def crs(self):
        return self.source.crs

    @property
    def transform(self):
        return self.source.transform

    @property
    def good(self) -> np.ndarray:
        return np.array([b for b in range(self.count) if b not in self.bad], dtype=np.int64)

    @property
    def good_wavelengths(self) -> Optional[np.ndarray]:
        return None if self.wavelengths is None else self.wavelengths[self.good]

    def require_wavelengths(self) -> None:
        """The pseudo-RGB needs band centres: say how to give them when there are none."""
        if self.wavelengths is None:
            raise UserInputError(
                f"INPUT '{self.path}' has no wavelength metadata, and WAVELENGTHS was not "
                f"given. {wl_mod.HOW_TO_GIVE}")

    def bytes_per_pixel(self, bands: Optional[int] = None) -> int:
        """Bytes one pixel of ``bands`` bands (default: the good ones) costs as read
        (float32 plus the raw block)."""
        return 8 * (len(self.good) if bands is None else bands) + 8

    def read(self, y0: int, y1: int, x0: int, x1: int,
             bands: np.ndarray | Sequence[int] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """(bands, rows, cols) float32 in physical units (NaN where nodata) and the
        (rows, cols) mask of invalid pixels, True where any *good* band is nodata.

        ``bands``: 0-based band indices to return (default: the good bands); the mask is
        always over the good bands.
        """
        good = self.good
        want = good if bands is None else np.asarray(bands, dtype=np.int64)
        extra = np.setdiff1d(want, good)
        values = self.source.read(np.concatenate([good, extra]) if extra.size else good,
                                  y0, y1, x0, x1)
        invalid = ~np.isfinite(values[:len(good)]).all(axis=0)
        if bands is None:
            return values, invalid
        position = {int(b): k for k, b in enumerate(np.concatenate([good, extra]))}
        return values[[position[int(b)] for b in want]], invalid

    def band_report(self) -> list[str]:
        """Lines for the log: which bands were left out and why."""
        if not self.bad:
            return [f"INPUT: {self.product}, {self.count} bands, all used."]
        by_reason: dict[str, list[int]] = {}
        for band, reason in self.bad.items():
            by_reason.setdefault(reason, []).append(band)
        lines = [f"INPUT: {self.product}, {self.count} bands; {len(self.bad)} left out as bad, "
                 f"{len(self.good)} used."]
        for reason, bands in by_reason.items():
            where = ""
            if self.wavelengths is not None:
                nm = self.wavelengths[bands]
                where = f" ({nm.min():.0f}–{nm.max():.0f} nm)"
            lines.append(f"Bad bands {_ranges(bands)}{where}: {reason}.")
        return lines

    def close(self) -> None:
        self.source.close()


def _empty_bands(source, candidates: np.ndarray, progress: Progress,
                 block_bytes: int = raster_io.DEFAULT_BLOCK_BYTES) -> list[int]:
    """Bands among ``candidates`` without a single valid value, in one streamed pass that
    only keeps reading the bands still without one (most are settled by the first block
    with data)."""
    key = None
    path = getattr(source, "path", None)
    if path and os.path.isfile(path):
        stat = os.stat(path)
        key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, tuple(candidates))
        if key in _EMPTY_CACHE:
            return list(_EMPTY_CACHE[key])
    open_ = np.asarray(candidates, dtype=np.int64)
    height, width = source.height, source.width
    windows = raster_io.row_windows(height, width, 8 * max(1, open_.size), block_bytes)
    progress.update(0.0, "INPUT: finding bands without data")
    for i, window in enumerate(windows):
        if open_.size == 0:
            break
        progress.check()
        y0 = window.row_off
        block = source.read(open_, y0, y0 + window.height, 0, width)
        has_value = np.isfinite(block).reshape(len(open_), -1).any(axis=1)
        open_ = open_[~has_value]
        progress.update((i + 1) / len(windows), "INPUT: finding bands without data")
    empty = [int(b) for b in open_]
    if key is not None:
        if len(_EMPTY_CACHE) >= _EMPTY_CACHE_SIZE:
            _EMPTY_CACHE.pop(next(iter(_EMPTY_CACHE)))
        _EMPTY_CACHE[key] = tuple(empty)
    return empty


@contextlib.contextmanager
def open_scene(path: str, wavelengths_override: Optional[str] = None,
               bad_bands: Optional[str] = None, param: str = "INPUT",
               progress: Optional[Progress] = None,
               need_wavelengths: bool = False) -> Iterator[Scene]:
    """Open a hyperspectral INPUT (any GDAL raster or a supported product file) and decide
    its good bands. ``wavelengths_override``: WAVELENGTHS text (nm, one per band);
    ``bad_bands``: BAD_BANDS text. ``need_wavelengths``: a missing wavelength list is an
    error (the pseudo-RGB needs it). All bands bad is an error."""
    progress = as_progress(progress)
    with raster_io.gdal_env():
        source = products.open_source(path, param)
        try:
            scene = _make_scene(path, source, wavelengths_override, bad_bands, progress,
                                need_wavelengths)
            yield scene
        finally:
            source.close()


def _make_scene(path, source, wavelengths_override, bad_bands, progress,
                need_wavelengths) -> Scene:
    flags = dict(source.flags)
    override = wl_mod.parse_override(wavelengths_override, source.count)
    if override is not None:
        nm = override
    elif source.wavelengths is not None:
        nm = wl_mod.validate(source.wavelengths, source.count,
                             f"wavelength metadata of '{path}'", skip=list(flags))
    else:
        nm = None
    user = parse_bad_bands(bad_bands, source.count, nm)
    bad = {**user, **flags}
    candidates = np.array([b for b in range(source.count) if b not in bad], dtype=np.int64)
    for band in _empty_bands(source, candidates, progress):
        bad[band] = "no valid value in the whole band (every pixel nodata)"
    if len(bad) >= source.count and not flags and not user:
        raise UserInputError("INPUT has no valid pixels: every pixel is nodata.")
    if len(bad) >= source.count:
        raise UserInputError(
            f"INPUT: every band of '{path}' is bad (flagged by the file, without any valid "
            f"value, or in BAD_BANDS), so nothing is left to classify. Check BAD_BANDS and "
            f"the file's nodata value.")
    scene = Scene(path, source, nm, getattr(source, "fwhm", None), dict(sorted(bad.items())))
    if need_wavelengths:
        scene.require_wavelengths()
    return scene
