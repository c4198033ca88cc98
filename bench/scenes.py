#!/usr/bin/env python3
"""Synthetic hyperspectral scenes with known truth, built from real spectra, and noisy
CLIP-like pseudo-labels: the test bed for stage II (noise-robust learning, docs/method.md §2).

No benchmark cube and no CLIP weights can be had on these machines (docs/method.md §6), so
stage II is measured on scenes whose every pixel is a mixture of *measured or modelled
real spectra*, laid out like an agricultural landscape with a village and roads, with
pseudo-labels whose errors look like CLIP's (confusions between similar classes, whole
fields named wrongly, blurred borders) and a confidence map correlated with correctness.
These scenes are synthetic: numbers measured on them are not Indian Pines numbers.

  .venv/bin/python bench/scenes.py --seed 1 --size 256 --out /tmp/scene1 [--check]

Spectra
-------
earthlib's spectral library (``earthlib/data/spectra.sli`` + ``spectra.csv``, MIT; 7261
spectra on 180 bands, 400–2450 nm in 10 nm steps, with the water-vapour gaps
1350–1460 nm and 1790–1960 nm already cut). Classes are groups of library spectra picked
*deterministically from the metadata* (never from the seed); each class keeps at most
``MAX_MEMBERS`` = 12 members, taken evenly along the library's row order among those that
pass the rule:

==================== ==========================================================
class                library rule (LEVEL_2 / LEVEL_3, and stats of the spectrum)
==================== ==========================================================
dense vegetation     vegetation/canopy (PROSAIL), LAI >= 4 and CHL >= 40 µg/cm²
sparse vegetation    vegetation/canopy (PROSAIL), LAI <= 1.5 and CHL >= 25
senescent vegetation vegetation/canopy (PROSAIL), LAI >= 3 and CHL <= 15
dry vegetation       npv/litter and npv/npv, NDVI < 0.35 (dead grass, litter)
bright soil          bare/soil (ICRAF-ISRIC), mean reflectance in [0.45, 0.60]
dark soil            bare/soil (ICRAF-ISRIC), mean reflectance in [0.15, 0.25]
asphalt              built/asphalt, road, parking_lot, mean reflectance < 0.15
concrete             built/sidewalk, driveway, mean reflectance >= 0.25, NDVI < 0.1
shingle roofs        built/comp_shingle, mean reflectance in [0.08, 0.25]
tile roofs           built/tile (clay tiles)
==================== ==========================================================

(LAI and CHL are read from the PROSAIL spectra's names, "v-LAI-…-LMA-…-CHL-…-N-…".)
Similar pairs are deliberate: the three vegetation subtypes, the two soils (which differ
mostly in brightness, and the illumination field blurs that), dry vegetation vs soil,
asphalt vs shingle roofs, concrete vs bright soil. ``n_classes`` (4–10) keeps the first
``n_classes`` of ``PRIORITY`` (dense vegetation, bright soil, asphalt, shingle roofs,
sparse vegetation, concrete, dark soil, dry vegetation, tile roofs, senescent
vegetation); class values follow the table's order.

Bands
-----
Indian Pines' 220 AVIRIS band centres and FWHMs as shipped by ``spectral``
(``spectral/tests/data/92AV3C.spc``: two header lines, then per band: centre nm, FWHM nm,
their uncertainties, and the AVIRIS channel number). Library spectra are linearly
interpolated onto a 1 nm grid (400–2450 nm; across the library's two water gaps too)
and integrated with a Gaussian spectral response of each band's FWHM (renormalised where
it leaves the grid). Bands are the usual 200-band Indian Pines set (1-based 104–108,
150–163 and 220 removed) minus the four bands centred beyond the library's 2450 nm
(216–219: dropped, not extrapolated): **196 bands, 400–2450 nm**, sorted by wavelength
(the file is not monotonic where AVIRIS' spectrometers overlap, at 687/697 and
1273/1283 nm, and the plugin wants increasing wavelengths). The ten kept bands that fall
inside the library's water gaps (1353, 1412–1452, 1799, 1809, 1943, 1953 nm, next to the
absorption bands as in real data) carry interpolated signal and ten times the noise.

Layout (all vectorised numpy / scipy.ndimage; 2.5 m pixels)
-----------------------------------------------------------
A Voronoi partition into fields (about one per 40×40 px; 30 % of the seeds packed
around one "village" centre per 256×256 px, giving small parcels), each a field class
(classes dealt out in turn so all appear) or an urban block (village parcels 80 %,
others 5 %) paved with concrete (70 %) or asphalt. Buildings: rectangles 5–11 px on a
jittered 14 px lattice in urban blocks (75 % of cells) and rare farm buildings in fields,
roofed with a roof class. Small patches: ellipses (radii 2–6 px) of another field class
in 20 % of the cells of a 26 px lattice over fields. Roads: about 2.5 per 256 px of
extent, near-horizontal or near-vertical, gently curved, 2–5 px wide, asphalt (70 %) or
concrete.

Spectra per pixel: every object (field, patch, building, road segment) gets two convex
mixtures of its class's members (Dirichlet α = 0.5) and a brightness factor (0.9–1.1);
pixels blend the two along a smooth 10 px field. Sub-pixel cover of another class (soil
between crop rows, weeds, trees over roofs): each object has a cover class (another
field class for fields, any other class for built objects; its own Dirichlet mixture)
and a cover fraction uniform in [0, 0.6] (built: [0, 0.3]), varied by ±0.15 along a 6 px
field and clipped to [0, 0.8]; truth stays the object's class, as field-level ground
truth does. Then each pixel mixes with one random member of its class (weight uniform
in [0, ``MEMBER_MIX``] = 0.35). Class borders are mixed linearly by a
Gaussian blur of σ = 0.7 px (a sensor point-spread function; mixing over 1–2 px); truth
is the class with the largest blurred abundance. Illumination: a smooth multiplicative
field, 1 + 0.1·N(0, 1) at ~100 px scale, clipped to 0.7–1.3. Smooth spectral scaling
(BRDF, moisture, correction residuals): × (1 + Σ_k a_k P_k(λ)), P_1..P_4 Legendre
polynomials over 400–2450 nm, a_k ~ N(0, (0.1/k)²) per object plus half that along 8 px
fields. Sensor noise: additive
Gaussian, per band σ_b = s_b / (noise_snr · p_b), s_b the mean of the class means, p_b
1 at 450–1300 nm, 0.6 in the blue, 0.6 at 1450–1800 nm, 0.4 beyond 1950 nm, 0.1 in the
water-gap bands. Everything is computed in a basis of the member spectra (about 45
SVD components; no member is off by more than 1e-3 reflectance, a fifth of the smallest
noise σ) and expanded to the bands once.

Pseudo-labels: see :func:`make_pseudo_labels`.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

PIXEL_SIZE_M = 2.5
CRS = "EPSG:32633"
ORIGIN_XY = (512_000.0, 5_310_000.0)  # upper-left corner, UTM 33N (Lower Austria)
MAX_MEMBERS = 12
MEMBER_MIX = 0.35  # largest per-pixel weight of a random class member
CONTAMINATION = 0.6  # largest per-field cover fraction of another class (built: half)
BRIGHTNESS = 0.1  # per-object brightness factor 1 ± BRIGHTNESS
SPECTRAL_TILT = 0.1  # std of the first Legendre term of the smooth spectral scaling
MIX_SIGMA_PX = 0.7  # border mixing (point-spread function), pixels
BLOB_SCALES_PX = (6, 12, 24)  # correlation lengths of the random error blobs
IP_REMOVED_BANDS = tuple(range(104, 109)) + tuple(range(150, 164)) + (220,)  # 1-based

CLASSES = (  # (name, role); role decides where the layout puts the class
    ("dense vegetation", "field"),
    ("sparse vegetation", "field"),
    ("senescent vegetation", "field"),
    ("dry vegetation", "field"),
    ("bright soil", "field"),
    ("dark soil", "field"),
    ("asphalt", "road"),
    ("concrete", "paved"),
    ("shingle roofs", "roof"),
    ("tile roofs", "roof"),
)
PRIORITY = ("dense vegetation", "bright soil", "asphalt", "shingle roofs", "sparse vegetation",
            "concrete", "dark soil", "dry vegetation", "tile roofs", "senescent vegetation")


@dataclass
class Scene:
    """A synthetic scene with known truth.

    cube: (bands, rows, cols) float32 reflectance (0–1 scale, noise may push it past).
    wavelengths_nm: (bands,) float64 band centres in nm; fwhm_nm likewise.
    truth: (rows, cols) uint8, class values 1..C (majority class of each pixel).
    class_names: C names; value i is class_names[i-1].
    pseudo_labels: (rows, cols) uint8 1..C, CLIP-like noisy labels.
    confidence: (rows, cols) float32 in [0, 1], CLIP-like best-vs-second-best margin.
    seed: the seed that made it. class_members: library spectrum names of each class.
    """

    cube: np.ndarray
    wavelengths_nm: np.ndarray
    truth: np.ndarray
    class_names: list[str]
    pseudo_labels: np.ndarray
    confidence: np.ndarray
    seed: int
    fwhm_nm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    class_members: dict[str, list[str]] = field(default_factory=dict)


# --------------------------------------------------------------------------- spectra

def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"bench/scenes.py needs the '{name}' package (pip install {name})")
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=1)
def _library() -> tuple[np.ndarray, np.ndarray, list[dict[str, str]]]:
    """earthlib's library: wavelengths (180,) nm, spectra (7261, 180), metadata rows."""
    import csv

    from spectral.io.envi import read_envi_header

    data = _package_dir("earthlib") / "data"
    header = read_envi_header(str(data / "spectra.sli.hdr"))
    wl = np.asarray(header["wavelength"], dtype=float)
    if "micro" in header.get("wavelength units", "micrometers").lower():
        wl = wl * 1000.0
    n, m = int(header["lines"]), int(header["samples"])
    dtype = "<f4" if header.get("byte order", "0") == "0" else ">f4"
    spectra = np.fromfile(data / "spectra.sli", dtype=dtype).reshape(n, m).astype(float)
    with open(data / "spectra.csv", newline="") as fh:
        meta = list(csv.DictReader(fh))
    if len(meta) != n:
        raise ValueError("earthlib spectra.csv and spectra.sli disagree on the spectrum count")
    return wl, spectra, meta


def _class_rules(wl: np.ndarray, spectra: np.ndarray, meta: list[dict[str, str]]
                 ) -> dict[str, np.ndarray]:
    """Boolean masks over the library rows, one per class (see the module docstring)."""
    lvl2 = np.array([r["LEVEL_2"] for r in meta])
    lvl3 = np.array([r["LEVEL_3"] for r in meta])
    mean = spectra.mean(axis=1)
    red, nir = spectra[:, np.argmin(abs(wl - 670))], spectra[:, np.argmin(abs(wl - 800))]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    lai = np.full(len(meta), np.nan)
    chl = np.full(len(meta), np.nan)
    pattern = re.compile(r"v-LAI-([\d.]+)-LMA-[\d.]+-CHL-([\d.]+)-N-")
    for i, row in enumerate(meta):
        hit = pattern.match(row["NAME"])
        if hit:
            lai[i], chl[i] = float(hit.group(1)), float(hit.group(2))
    canopy = (lvl3 == "canopy") & np.isfinite(lai)
    soil = (lvl2 == "bare") & (lvl3 == "soil")
    with np.errstate(invalid="ignore"):
        return {
            "dense vegetation": canopy & (lai >= 4) & (chl >= 40),
            "sparse vegetation": canopy & (lai <= 1.5) & (chl >= 25),
            "senescent vegetation": canopy & (lai >= 3) & (chl <= 15),
            "dry vegetation": (lvl2 == "npv") & np.isin(lvl3, ["litter", "npv"]) & (ndvi < 0.35),
            "bright soil": soil & (mean >= 0.38) & (mean <= 0.50),
            "dark soil": soil & (mean >= 0.20) & (mean <= 0.30),
            "asphalt": (lvl2 == "built") & np.isin(lvl3, ["asphalt", "road", "parking_lot"])
            & (mean < 0.15),
            "concrete": (lvl2 == "built") & np.isin(lvl3, ["sidewalk", "driveway"])
            & (mean >= 0.25) & (ndvi < 0.1),
            "shingle roofs": (lvl3 == "comp_shingle") & (mean >= 0.08) & (mean <= 0.25),
            "tile roofs": (lvl2 == "built") & (lvl3 == "tile"),
        }


@lru_cache(maxsize=1)
def aviris_92av3c() -> tuple[np.ndarray, np.ndarray]:
    """Indian Pines' 220 AVIRIS band centres and FWHMs (nm), in the file's band order, from
    ``spectral``'s 92AV3C.spc (two header lines, then one band per row)."""
    table = np.loadtxt(_package_dir("spectral") / "tests" / "data" / "92AV3C.spc", skiprows=2)
    return table[:, 0], table[:, 1]


def indian_pines_bands() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The scenes' bands, from ``spectral``'s 92AV3C.spc (Indian Pines' 220 AVIRIS bands).

    Returns (centres_nm, fwhm_nm, ip_band_1based, in_library_gap), each (bands,): the
    200-band Indian Pines set without the bands centred beyond the library's last
    wavelength (2450 nm), so 196 bands, sorted by wavelength (the file's order is not
    monotonic where AVIRIS' spectrometers overlap: bands 31/32 at 696.5/686.9 nm and
    94/95 at 1282.6/1273.0 nm); ``in_library_gap`` marks bands whose centre lies in one
    of the library's cut water-vapour gaps.
    """
    centres, fwhm = aviris_92av3c()
    number = np.arange(1, len(centres) + 1)
    lib_wl = _library()[0]
    keep = ~np.isin(number, IP_REMOVED_BANDS) & (centres <= lib_wl[-1] + 0.5)
    steps = np.diff(lib_wl)
    gaps = [(lib_wl[i], lib_wl[i + 1]) for i in np.flatnonzero(steps > 1.5 * np.median(steps))]
    in_gap = np.zeros(len(centres), bool)
    for lo, hi in gaps:
        in_gap |= (centres > lo) & (centres < hi)
    kept = np.flatnonzero(keep)
    kept = kept[np.argsort(centres[kept], kind="stable")]  # AVIRIS' spectrometers overlap
    return centres[kept], fwhm[kept], number[kept], in_gap[kept]


def _resampling_matrix(lib_wl: np.ndarray, centres: np.ndarray, fwhm: np.ndarray) -> np.ndarray:
    """(bands, library bands): linear interpolation onto 1 nm, then Gaussian SRFs."""
    grid = np.arange(lib_wl[0], lib_wl[-1] + 0.5, 1.0)
    pos = np.interp(grid, lib_wl, np.arange(len(lib_wl)))
    lo = np.minimum(np.floor(pos).astype(int), len(lib_wl) - 2)
    frac = pos - lo
    interp = np.zeros((len(grid), len(lib_wl)))
    interp[np.arange(len(grid)), lo] = 1 - frac
    interp[np.arange(len(grid)), lo + 1] += frac
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    srf = np.exp(-0.5 * ((grid[None, :] - centres[:, None]) / sigma[:, None]) ** 2)
    srf /= srf.sum(axis=1, keepdims=True)
    return srf @ interp


@lru_cache(maxsize=4)
def class_library(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Members of each class resampled to the scene's bands.

    Returns (members (C, MAX_MEMBERS, bands) zero-padded, counts (C,), member names).
    """
    lib_wl, spectra, meta = _library()
    rules = _class_rules(lib_wl, spectra, meta)
    centres, fwhm, _, _ = indian_pines_bands()
    resample = _resampling_matrix(lib_wl, centres, fwhm)
    members = np.zeros((len(names), MAX_MEMBERS, len(centres)))
    counts = np.zeros(len(names), int)
    member_names = []
    for c, name in enumerate(names):
        rows = np.flatnonzero(rules[name])
        if len(rows) > MAX_MEMBERS:
            rows = rows[np.unique(np.linspace(0, len(rows) - 1, MAX_MEMBERS).round().astype(int))]
        if len(rows) < 3:
            raise ValueError(f"class '{name}' has {len(rows)} library spectra; need >= 3")
        members[c, :len(rows)] = spectra[rows] @ resample.T
        counts[c] = len(rows)
        member_names.append([meta[i]["NAME"] for i in rows])
    return members, counts, member_names


def class_means(names: tuple[str, ...]) -> np.ndarray:
    """(C, bands) mean member spectrum of each class."""
    members, counts, _ = class_library(names)
    return members.sum(axis=1) / counts[:, None]


def select_classes(n_classes: int) -> list[str]:
    """The first ``n_classes`` of PRIORITY, in the order of CLASSES (values 1..C)."""
    if not 4 <= n_classes <= len(CLASSES):
        raise ValueError(f"n_classes must be 4..{len(CLASSES)}, got {n_classes}")
    chosen = set(PRIORITY[:n_classes])
    return [name for name, _ in CLASSES if name in chosen]


# --------------------------------------------------------------------------- helpers

def smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale_px: float
                 ) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with correlation length ~scale_px.

    Made on a coarse grid and zoomed (linear) so large scales stay cheap. (rows, cols)
    float32.
    """
    step = max(1, int(scale_px // 4))
    small = (shape[0] // step + 3, shape[1] // step + 3)
    z = ndimage.gaussian_filter(rng.standard_normal(small), scale_px / step, mode="wrap")
    if step > 1:
        z = ndimage.zoom(z, step, order=1)
    z = z[:shape[0], :shape[1]]
    return ((z - z.mean()) / max(z.std(), 1e-12)).astype(np.float32)


def _lattice(shape: tuple[int, int], spacing: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                             np.ndarray, tuple[int, int]]:
    """Per pixel: row, col, lattice cell (flat index), position inside the cell."""
    r, c = np.indices(shape)
    cells = (-(-shape[0] // spacing), -(-shape[1] // spacing))
    cell = (r // spacing) * cells[1] + (c // spacing)
    return r, c, cell, np.stack([r % spacing, c % spacing]), cells


def _blurred_argmax(labels: np.ndarray, n_classes: int, sigma: float) -> np.ndarray:
    """Class (1..C) with the largest Gaussian-blurred abundance, per pixel."""
    best = np.full(labels.shape, -1.0, np.float32)
    out = np.zeros(labels.shape, np.uint8)
    for c in range(1, n_classes + 1):
        a = ndimage.gaussian_filter((labels == c).astype(np.float32), sigma)
        better = a > best
        out[better] = c
        best[better] = a[better]
    return out


# --------------------------------------------------------------------------- layout

def make_layout(rng: np.random.Generator, rows: int, cols: int, names: list[str]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Pure (unmixed) class map (rows, cols) uint8 1..C and object ids (rows, cols) int64.

    Objects are fields, patches, buildings and road segments (a road cut by parcels).
    """
    roles = dict(CLASSES)
    value = {n: i + 1 for i, n in enumerate(names)}
    field_cls = np.array([value[n] for n in names if roles[n] == "field"])
    roof_cls = np.array([value[n] for n in names if roles[n] == "roof"])
    asphalt = value["asphalt"]
    concrete = value.get("concrete", asphalt)
    shape = (rows, cols)
    area = rows * cols
    scale = np.sqrt(area) / 256.0

    # Voronoi fields; a quarter of the seeds packed around village centres.
    n_seeds = max(8, round(area / 40 ** 2))
    n_villages = max(1, round(scale ** 2))
    n_vill_seeds = int(0.3 * n_seeds)
    pts = rng.uniform([0, 0], [rows, cols], size=(n_seeds, 2))
    centres = rng.uniform([0.15 * rows, 0.15 * cols], [0.85 * rows, 0.85 * cols],
                          size=(n_villages, 2))
    which = rng.integers(0, n_villages, n_vill_seeds)
    pts[:n_vill_seeds] = centres[which] + rng.normal(0, 0.05 * np.sqrt(area) / np.sqrt(
        n_villages), size=(n_vill_seeds, 2))
    pts = np.clip(pts, 0, [rows - 1, cols - 1]).astype(int)
    seeds = np.zeros(shape, np.int64)
    seeds[pts[:, 0], pts[:, 1]] = np.arange(1, n_seeds + 1)
    idx = ndimage.distance_transform_edt(seeds == 0, return_distances=False,
                                         return_indices=True)
    parcel = seeds[idx[0], idx[1]] - 1  # 0..n_seeds-1 (a seed overwritten by a twin vanishes)

    village = np.arange(n_seeds) < n_vill_seeds
    urban = rng.random(n_seeds) < np.where(village, 0.8, 0.05)
    parcel_cls = np.empty(n_seeds, np.int64)
    n_fields = int((~urban).sum())
    deal = np.resize(rng.permutation(field_cls), n_fields)
    parcel_cls[~urban] = rng.permutation(deal)
    parcel_cls[urban] = np.where(rng.random(int(urban.sum())) < 0.7, concrete, asphalt)
    cls = parcel_cls[parcel]
    obj = parcel.copy()
    offset = n_seeds
    is_field = ~urban[parcel]

    # Small patches of another field class (tree clumps, bare spots) in fields.
    sp = 26
    r, c, cell, inner, cells = _lattice(shape, sp)
    n_cells = cells[0] * cells[1]
    rad = rng.uniform(2, 6, size=(n_cells, 2))
    ctr = rng.uniform(rad + 1, sp - rad - 1)
    pcls = field_cls[rng.integers(0, len(field_cls), n_cells)]
    on = rng.random(n_cells) < 0.2
    d = ((inner[0] - ctr[cell, 0]) / rad[cell, 0]) ** 2 + ((inner[1] - ctr[cell, 1])
                                                           / rad[cell, 1]) ** 2
    patch = on[cell] & (d <= 1) & is_field & (pcls[cell] != cls)
    cls[patch] = pcls[cell][patch]
    obj[patch] = offset + cell[patch]
    offset += n_cells

    # Buildings on a jittered lattice: dense in urban blocks, rare farm buildings in fields.
    sp = 14
    r, c, cell, inner, cells = _lattice(shape, sp)
    n_cells = cells[0] * cells[1]
    half = rng.integers(2, 6, size=(n_cells, 2))
    ctr = rng.uniform(half + 1, sp - half - 1)
    rcls = roof_cls[rng.integers(0, len(roof_cls), n_cells)]
    cr = np.minimum((cell // cells[1]) * sp + ctr[:, 0].astype(int)[cell], rows - 1)
    cc = np.minimum((cell % cells[1]) * sp + ctr[:, 1].astype(int)[cell], cols - 1)
    centre_urban = urban[parcel[cr, cc]]
    keep = rng.random(n_cells)[cell] < np.where(centre_urban, 0.75, 0.015)
    bld = keep & (np.abs(inner[0] - ctr[cell, 0]) <= half[cell, 0]) & (
        np.abs(inner[1] - ctr[cell, 1]) <= half[cell, 1])
    cls[bld] = rcls[cell][bld]
    obj[bld] = offset + cell[bld]
    offset += n_cells

    # Roads: near-horizontal or near-vertical, gently curved, 2-5 px wide.
    n_roads = max(2, round(2.5 * scale))
    for k in range(n_roads):
        theta = (k % 2) * np.pi / 2 + np.deg2rad(rng.normal(0, 8))
        y0, x0 = rng.uniform(0.1, 0.9) * rows, rng.uniform(0.1, 0.9) * cols
        along = r * np.sin(theta) + c * np.cos(theta)
        across = (r - y0) * np.cos(theta) - (c - x0) * np.sin(theta)
        across = across + rng.uniform(0, 4) * np.sin(
            2 * np.pi * along / rng.uniform(150, 400) + rng.uniform(0, 2 * np.pi))
        road = np.abs(across) <= rng.integers(2, 6) / 2
        cls[road] = asphalt if rng.random() < 0.7 else concrete
        obj[road] = offset + k * n_seeds + parcel[road]
    _, obj = np.unique(obj, return_inverse=True)
    return cls.astype(np.uint8), obj.reshape(shape)


# --------------------------------------------------------------------------- cube

def _band_snr_profile(centres: np.ndarray, in_gap: np.ndarray) -> np.ndarray:
    """Relative SNR per band (1 = best), AVIRIS-like: lower in the blue and the SWIR."""
    p = np.ones(len(centres))
    p[centres < 450] = 0.6
    p[(centres > 1300) & (centres <= 1800)] = 0.6
    p[centres > 1800] = 0.4
    p[in_gap] = 0.1
    return p


def make_cube(rng: np.random.Generator, cls: np.ndarray, obj: np.ndarray, names: list[str],
              noise_snr: float) -> tuple[np.ndarray, np.ndarray]:
    """The reflectance cube (bands, rows, cols) float32 and the truth (rows, cols) uint8."""
    rows, cols = cls.shape
    members, counts, _ = class_library(tuple(names))
    n_cls, n_mem, n_bands = members.shape
    centres, _, _, in_gap = indian_pines_bands()

    # A low-dimensional basis of all member spectra: every pixel is a (scaled) convex
    # combination of them, so the scene lives in its span exactly.
    flat = members[members.any(axis=2)]
    _, s, vt = np.linalg.svd(flat, full_matrices=False)
    for rank in range(1, len(s) + 1):
        basis = vt[:rank]
        if np.abs(flat - flat @ basis.T @ basis).max() < 1e-3:
            break
    coef_m = (members @ basis.T).astype(np.float32)  # (classes, members, rank)

    n_obj = int(obj.max()) + 1
    obj_cls = np.zeros(n_obj, np.int64)
    obj_cls[obj.ravel()] = cls.ravel() - 1
    valid = np.arange(n_mem)[None, :] < counts[:, None]  # (classes, members)

    def object_mix(classes: np.ndarray) -> np.ndarray:
        g = rng.gamma(0.5, size=(n_obj, n_mem)) * valid[classes] + 1e-12 * valid[classes]
        g /= g.sum(axis=1, keepdims=True)
        return np.einsum("om,omr->or", g, coef_m[classes]).astype(np.float32)

    # Sub-pixel cover of another class (soil between crop rows, weeds, dust on roofs):
    # fields take another field class, built objects any other class.
    roles = dict(CLASSES)
    is_field = np.array([roles[n] == "field" for n in names])
    pick = rng.random((n_obj, n_cls)) * (np.where(is_field[obj_cls][:, None], is_field[None, :],
                                                 True) & (np.arange(n_cls) != obj_cls[:, None]))
    other = pick.argmax(axis=1)
    bright = rng.uniform(1 - BRIGHTNESS, 1 + BRIGHTNESS, n_obj).astype(np.float32)[:, None]
    p_obj, q_obj = object_mix(obj_cls) * bright, object_mix(obj_cls) * bright
    k_obj = object_mix(other) * bright
    u = 1 / (1 + np.exp(-1.5 * smooth_field(rng, cls.shape, 10))).ravel()[:, None]
    o = obj.ravel()
    coef = p_obj[o] * (1 - u) + q_obj[o] * u  # (N, r)
    cap = np.where(is_field[obj_cls], CONTAMINATION, CONTAMINATION / 2)
    f_obj = (rng.random(n_obj) * cap).astype(np.float32)
    f = np.clip(f_obj[o] + 0.15 * smooth_field(rng, cls.shape, 6).ravel(), 0, 0.8)[:, None]
    coef = (1 - f) * coef + f * k_obj[o]
    c0 = cls.ravel().astype(np.int64) - 1
    member = (rng.random(c0.size) * counts[c0]).astype(np.int64)
    t = (MEMBER_MIX * rng.random(c0.size)).astype(np.float32)[:, None]
    coef = (1 - t) * coef + t * coef_m[c0, member]
    coef = coef.T.reshape(-1, rows, cols)
    coef = ndimage.gaussian_filter(coef, sigma=(0, MIX_SIGMA_PX, MIX_SIGMA_PX))
    truth = _blurred_argmax(cls, n_cls, MIX_SIGMA_PX)

    illum = np.clip(1 + 0.1 * smooth_field(rng, cls.shape, 100), 0.7, 1.3)
    coef *= illum[None]
    coef = coef.reshape(len(basis), -1)

    # Smooth multiplicative spectral scaling 1 + sum_k a_k(x) P_k(lambda), P_k the Legendre
    # polynomials 1..4 over the band range; a_k per object plus a smooth 8 px field.
    x = (centres - centres.min()) / np.ptp(centres) * 2 - 1
    legendre = np.stack([np.polynomial.legendre.Legendre.basis(k)(x) for k in range(1, 5)])
    amp = SPECTRAL_TILT / np.arange(1, 5)
    tilt = (rng.normal(0, 1, (n_obj, 4)) * amp)[obj.ravel()].T + 0.5 * amp[:, None] * np.stack(
        [smooth_field(rng, cls.shape, 8).ravel() for _ in range(4)])
    tilt = tilt.astype(np.float32)
    expand = basis.T.astype(np.float32)  # (bands, rank)
    scaling = legendre.T.astype(np.float32)  # (bands, 4)
    cube = np.empty((n_bands, rows * cols), np.float32)
    step = max(1, 2 ** 16 // cols) * cols
    for i in range(0, rows * cols, step):
        part = slice(i, i + step)
        cube[:, part] = (expand @ coef[:, part]) * (1 + scaling @ tilt[:, part])
    del coef, tilt
    cube = cube.reshape(n_bands, rows, cols)

    # Additive Gaussian noise. Large scenes take each band's noise as a random window of
    # one pool of 8 x pixels normal samples (drawing 200 M normals costs seconds); bands
    # then share samples only at shifted positions, never at the same pixel in practice.
    signal = class_means(tuple(names)).mean(axis=0)
    sigma = (signal / (noise_snr * _band_snr_profile(centres, in_gap))).astype(np.float32)
    n_pix = rows * cols
    pool = None
    if n_pix * n_bands > 2 ** 25:
        pool = rng.standard_normal(8 * n_pix, dtype=np.float32)
        starts = rng.integers(0, 7 * n_pix + 1, n_bands)
    for b in range(n_bands):
        noise = (rng.standard_normal(n_pix, dtype=np.float32) if pool is None
                 else pool[starts[b]:starts[b] + n_pix])
        cube[b] += (noise * sigma[b]).reshape(rows, cols)
    return cube, truth


# --------------------------------------------------------------------------- pseudo-labels

def confusion_probabilities(names: list[str], rng: np.random.Generator,
                            means: np.ndarray | None = None) -> np.ndarray:
    """P(wrong label j | true class i), (C, C) with a zero diagonal.

    ∝ a_j · exp(−(θ_ij − min_k θ_ik) / τ): θ is the spectral angle between class means, τ
    half the median nearest-class angle, so the most similar classes take most of the
    errors; a_j ~ lognormal(0, 0.5) per scene makes some labels "attract" errors as CLIP's
    favourite words do. ``means``: (C, bands) class mean spectra; default: the earthlib
    classes' (:func:`class_means`).
    """
    if means is None:
        means = class_means(tuple(names))
    unit = means / np.linalg.norm(means, axis=1, keepdims=True)
    theta = np.arccos(np.clip(unit @ unit.T, -1, 1))
    np.fill_diagonal(theta, np.inf)
    nearest = theta.min(axis=1, keepdims=True)
    tau = 0.5 * float(np.median(nearest))
    p = rng.lognormal(0, 0.5, len(names))[None, :] * np.exp(-(theta - nearest) / tau)
    return p / p.sum(axis=1, keepdims=True)


def _draw_wrong(rng: np.random.Generator, cdf: np.ndarray, true: np.ndarray) -> np.ndarray:
    """A wrong label (1..C) for each true label (1..C), from the confusion rows' CDFs."""
    u = rng.random(true.shape)
    return (u[..., None] > cdf[true.astype(np.int64) - 1]).sum(axis=-1).astype(np.uint8) + 1


def _groups(ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel indices sorted by id, and start offsets (n+1,) per id."""
    order = np.argsort(ids, kind="stable")
    return order, np.concatenate([[0], np.cumsum(np.bincount(ids, minlength=n))])


def make_pseudo_labels(rng: np.random.Generator, truth: np.ndarray, names: list[str],
                       error_rate: float = 0.3, boundary_share: float = 0.2,
                       salt_share: float = 0.05, max_class_error: float = 0.5,
                       means: np.ndarray | None = None, cap_touched_only: bool = False
                       ) -> tuple[np.ndarray, np.ndarray]:
    """CLIP-like pseudo-labels (rows, cols) uint8 and confidence (rows, cols) float32.

    Exactly round(error_rate · pixels) pixels are wrong (as long as the scene has
    candidates enough; salt fills any shortfall), made in three parts:

    1. *Blurred borders* (at most ``boundary_share`` of the errors): the truth seen at a
       coarse resolution (argmax of abundances blurred with σ = 2 px) and shifted by a
       smooth displacement field (σ 1.5 px, 16 px scale), as CLIP's patch tokens see
       it; thin roads and small buildings melt into their surroundings, borders move by
       0–3 px. Where there are more such errors than the share, a spatially smooth
       subset is kept.
    2. *Clustered errors* (the bulk): whole connected truth regions (fields, buildings,
       road pieces; one wrong label for the whole region) and random blobs (noise at
       6, 12 and 24 px scales thresholded at 1 σ, CLIP's windows at several
       resolutions; one wrong label per true class inside) are relabelled in a random
       order weighted by a per-class error proneness (lognormal(0, 0.6)), each taken
       only if it fits the remaining budget and leaves no class with more than
       ``max_class_error`` of its pixels wrong (a second pass allows 0.15 more). With
       ``cap_touched_only`` only the classes the candidate touches are tested; by default
       every class is, so once the borders alone have put a class past the limit no
       candidate is taken in that pass and salt fills the budget (kept for the existing
       scenes' sake; bench/real_scenes.py, whose rare small roofs melt past the limit,
       turns it on).
    3. *Salt-and-pepper* (``salt_share``, plus any shortfall): single pixels.

    Wrong labels are drawn from :func:`confusion_probabilities` (similar classes mostly;
    ``means`` are the class mean spectra it compares, default the earthlib classes').

    Confidence (a stand-in for CLIP's best-vs-second-best margin): a level per region,
    Beta(12, 8) (mean 0.6, sd 0.11) for each correct truth region, Beta(7.6, 12.4) (mean
    0.38, sd 0.11) for each wrong region and each wrong border or salt pixel; multiplied
    near borders by 1 − 0.4·exp(−d / 1.5 px), d the distance to the nearest truth or
    pseudo-label border; plus a per-pseudo-class offset N(0, 0.04), a smooth field
    (0.05 × unit field at 8 px scale) and pixel noise N(0, 0.05); clipped to [0, 1].
    Means come out near 0.5 (correct) and 0.3 (wrong); the distributions overlap and
    some whole fields are named wrongly with confidence.
    """
    rows, cols = truth.shape
    n_cls = len(names)
    n_pix = truth.size
    target = int(round(error_rate * n_pix))
    cdf = np.cumsum(confusion_probabilities(names, rng, means), axis=1)
    cdf[:, -1] = 1.0
    t_flat = truth.ravel()
    pseudo = t_flat.copy()
    wrong = np.zeros(n_pix, bool)
    level = np.zeros(n_pix, np.float32)

    # 1. blurred, shifted borders
    coarse = _blurred_argmax(truth, n_cls, 2.0)
    rr, cc = np.indices(truth.shape, dtype=np.float32)
    dr = 1.5 * smooth_field(rng, truth.shape, 16)
    dc = 1.5 * smooth_field(rng, truth.shape, 16)
    seen = ndimage.map_coordinates(coarse, [rr + dr, cc + dc], order=0, mode="nearest").ravel()
    border = np.flatnonzero(seen != t_flat)
    cap = int(boundary_share * target)
    if border.size > cap:
        rank = smooth_field(rng, truth.shape, 12).ravel()[border]
        border = border[np.argsort(rank, kind="stable")[:cap]]
    pseudo[border] = seen[border]
    wrong[border] = True
    level[border] = rng.beta(7.6, 12.4, border.size)

    # 2. clustered errors: truth regions, and blobs at three scales (CLIP's windows)
    comp = np.zeros(truth.shape, np.int64)
    n_comp = 0
    for c in range(1, n_cls + 1):
        lab, n = ndimage.label(truth == c)
        comp[lab > 0] = lab[lab > 0] + n_comp
        n_comp += n
    comp = comp.ravel()
    comp_level = rng.beta(12, 8, n_comp + 1).astype(np.float32)
    layers = [(comp, n_comp)]
    for scale in BLOB_SCALES_PX:
        lab, n = ndimage.label(smooth_field(rng, truth.shape, scale) > 1.0)
        layers.append((lab.ravel(), n))
    groups = [_groups(ids, n + 1) for ids, n in layers]
    cand = []  # (layer, id, size, majority true class)
    for li, (ids, n) in enumerate(layers):
        counts = np.bincount(ids * (n_cls + 1) + t_flat, minlength=(n + 1) * (n_cls + 1))
        counts = counts.reshape(n + 1, n_cls + 1)[1:]
        cand.append(np.stack([np.full(n, li), np.arange(1, n + 1), counts.sum(axis=1),
                              counts.argmax(axis=1)], axis=1))
    cand = np.concatenate(cand)
    min_size = 12
    cand = cand[cand[:, 2] >= min_size]
    proneness = rng.lognormal(0, 0.6, n_cls + 1)
    cand = cand[np.argsort(rng.exponential(size=len(cand)) / proneness[cand[:, 3]])]
    remaining = target - int(wrong.sum()) - int(round(salt_share * target))
    class_px = np.bincount(t_flat, minlength=n_cls + 1)
    class_err = np.bincount(t_flat[wrong], minlength=n_cls + 1)

    def touched(add: np.ndarray) -> np.ndarray | bool:
        return add > 0 if cap_touched_only else True

    for limit in (max_class_error, max_class_error + 0.15):
        for li, i, size, _ in cand:
            if remaining < min_size:
                break
            if size > remaining:
                continue
            order, begin = groups[li]
            px = order[begin[i]:begin[i + 1]]
            px = px[~wrong[px]]
            if px.size < min_size or px.size > remaining:
                continue
            true = t_flat[px]
            add = np.bincount(true, minlength=n_cls + 1)
            if np.any(touched(add) & (class_err + add > limit * class_px)):
                continue
            class_err += add
            present = np.unique(true)
            lut = np.zeros(n_cls + 1, np.uint8)
            lut[present] = _draw_wrong(rng, cdf, present)
            pseudo[px] = lut[true]
            wrong[px] = True
            level[px] = rng.beta(7.6, 12.4)
            remaining -= px.size

    # 3. salt-and-pepper up to the exact target
    n_salt = target - int(wrong.sum())
    if n_salt > 0:
        px = rng.choice(np.flatnonzero(~wrong), size=n_salt, replace=False)
        pseudo[px] = _draw_wrong(rng, cdf, t_flat[px])
        wrong[px] = True
        level[px] = rng.beta(7.6, 12.4, n_salt)

    # confidence
    level[~wrong] = comp_level[comp[~wrong]]
    pseudo = pseudo.reshape(truth.shape)
    offset = rng.normal(0, 0.04, n_cls + 1).astype(np.float32)
    d = np.minimum(_distance_to_border(truth), _distance_to_border(pseudo))
    conf = level.reshape(truth.shape) * (1 - 0.4 * np.exp(-d / 1.5)) + offset[pseudo]
    conf += 0.05 * smooth_field(rng, truth.shape, 8)
    conf += rng.normal(0, 0.05, truth.shape).astype(np.float32)
    return pseudo, np.clip(conf, 0, 1).astype(np.float32)


def _distance_to_border(labels: np.ndarray) -> np.ndarray:
    """Distance in pixels to the nearest pixel with a differently-labelled 4-neighbour."""
    edge = np.zeros(labels.shape, bool)
    dv = labels[1:] != labels[:-1]
    dh = labels[:, 1:] != labels[:, :-1]
    edge[1:] |= dv
    edge[:-1] |= dv
    edge[:, 1:] |= dh
    edge[:, :-1] |= dh
    if not edge.any():
        return np.full(labels.shape, 1e3, np.float32)
    return ndimage.distance_transform_edt(~edge).astype(np.float32)


# --------------------------------------------------------------------------- API

def make_scene(seed: int, rows: int = 256, cols: int = 256, error_rate: float = 0.3,
               n_classes: int = 10, noise_snr: float = 50.0) -> Scene:
    """A synthetic scene with known truth and CLIP-like pseudo-labels, fully set by ``seed``.

    rows, cols: pixels (2.5 m); 64..1024 tested (256²: ~0.5 s, 1024²: ~7 s and ~1.3 GB
    peak on a busy 2-core machine). error_rate: share of wrong pseudo-labels (met to one
    pixel: salt-and-pepper makes up any shortfall of clustered errors). n_classes: 4..10,
    see the module docstring. noise_snr: mean signal over noise σ in the best bands
    (450–1300 nm); the default 50 leaves a random forest on 2000 true labels at ~96 %.
    Cube: (bands, rows, cols) float32, 196 bands; see :class:`Scene`.
    """
    if not 0 <= error_rate < 1:
        raise ValueError("error_rate must be in [0, 1)")
    if rows < 16 or cols < 16:
        raise ValueError("scenes must be at least 16×16 pixels")
    rng = np.random.default_rng(seed)
    names = select_classes(n_classes)
    cls, obj = make_layout(rng, rows, cols, names)
    cube, truth = make_cube(rng, cls, obj, names, noise_snr)
    pseudo, conf = make_pseudo_labels(rng, truth, names, error_rate)
    centres, fwhm, _, _ = indian_pines_bands()
    _, _, member_names = class_library(tuple(names))
    return Scene(cube=cube, wavelengths_nm=centres.astype(np.float64), truth=truth,
                 class_names=names, pseudo_labels=pseudo, confidence=conf, seed=seed,
                 fwhm_nm=fwhm.astype(np.float64),
                 class_members=dict(zip(names, member_names, strict=True)))


def pseudo_label_accuracy(scene: Scene) -> float:
    """Overall accuracy of the pseudo-labels against the truth."""
    return float((scene.pseudo_labels == scene.truth).mean())


def error_cluster_fraction(scene: Scene, min_size: int = 50) -> float:
    """Share of wrong pseudo-labels lying in 8-connected wrong regions of > min_size px."""
    wrong = scene.pseudo_labels != scene.truth
    lab, _ = ndimage.label(wrong, structure=np.ones((3, 3)))
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return float((sizes[lab][wrong] > min_size).mean()) if wrong.any() else 0.0


def write_scene(scene: Scene, folder: str | Path, pixel_size_m: float = PIXEL_SIZE_M,
                source: str = "bench/scenes.py (synthetic, from earthlib spectra)"
                ) -> dict[str, Path]:
    """Write cube.tif, pseudo_labels.tif, confidence.tif and truth.tif into ``folder``.

    GeoTIFFs, EPSG:32633, ``pixel_size_m`` pixels (default 2.5 m), tiled, deflate; the
    cube's ``source`` tag says where the scene came from. The cube has per-band GDAL
    metadata ``wavelength`` (nm) and ``wavelength_units`` = nm and "… nm" descriptions;
    the class rasters are uint8 with nodata 0, a colour table and category names.
    Returns {"cube", "pseudo_labels", "confidence", "truth"} → path.
    """
    import rasterio
    from rasterio.transform import from_origin

    from special_qgis.core.classes import write_class_metadata

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bands, rows, cols = scene.cube.shape
    base = {"driver": "GTiff", "width": cols, "height": rows, "crs": CRS,
            "transform": from_origin(*ORIGIN_XY, pixel_size_m, pixel_size_m),
            "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    paths = {k: folder / f"{k}.tif" for k in ("cube", "pseudo_labels", "confidence", "truth")}
    with rasterio.open(paths["cube"], "w", **base, count=bands, dtype="float32",
                       predictor=3, interleave="band", BIGTIFF="IF_SAFER") as dst:
        dst.write(scene.cube)
        for i, wl in enumerate(scene.wavelengths_nm, start=1):
            dst.set_band_description(i, f"{wl:.2f} nm")
            dst.update_tags(i, wavelength=f"{wl:.3f}", wavelength_units="nm")
        dst.update_tags(synthetic_scene_seed=str(scene.seed), source=source)
    with rasterio.open(paths["confidence"], "w", **base, count=1, dtype="float32",
                       predictor=3) as dst:
        dst.write(scene.confidence, 1)
        dst.set_band_description(1, "confidence")
    for key in ("pseudo_labels", "truth"):
        with rasterio.open(paths[key], "w", **base, count=1, dtype="uint8", nodata=0) as dst:
            dst.write(getattr(scene, key), 1)
        write_class_metadata(str(paths[key]), scene.class_names)
    return paths


# --------------------------------------------------------------------------- CLI

def _check(scene: Scene, seed: int) -> None:
    """Separability checks with scikit-learn (not part of the scene)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(seed + 1000)
    x = scene.cube.reshape(scene.cube.shape[0], -1).T
    y = scene.truth.ravel()
    idx = rng.permutation(y.size)
    train, test = idx[:2000], idx[2000:]
    test = test[:20000]
    for name, model in (("LDA", LinearDiscriminantAnalysis()),
                        ("RF", RandomForestClassifier(100, n_jobs=1, random_state=0))):
        model.fit(x[train], y[train])
        print(f"  {name} on 2000 true labels: OA {(model.predict(x[test]) == y[test]).mean():.3f}")
    conf = scene.confidence.ravel()
    p = scene.pseudo_labels.ravel()
    rest = rng.choice(y.size, size=min(20000, y.size), replace=False)
    top_global = np.flatnonzero(conf >= np.quantile(conf, 0.7))
    top_class = np.concatenate([  # the top 30 % of each pseudo-class
        k[conf[k] >= np.quantile(conf[k], 0.7)]
        for k in (np.flatnonzero(p == c) for c in np.unique(p))])
    for what, top in (("overall", top_global), ("per pseudo-class", top_class)):
        pick = rng.choice(top, size=min(3000, top.size), replace=False)
        model = RandomForestClassifier(100, n_jobs=1, random_state=0).fit(x[pick], p[pick])
        oa = (model.predict(x[rest]) == y[rest]).mean()
        print(f"  top 30 % confidence {what}: pseudo-label OA {(p[top] == y[top]).mean():.3f}; "
              f"RF on 3000 of them: OA {oa:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", type=int, default=256, help="rows = cols")
    ap.add_argument("--error-rate", type=float, default=0.3)
    ap.add_argument("--n-classes", type=int, default=10)
    ap.add_argument("--snr", type=float, default=50.0)
    ap.add_argument("--out", help="folder for the GeoTIFFs (none: nothing written)")
    ap.add_argument("--check", action="store_true", help="scikit-learn separability checks")
    args = ap.parse_args()
    t0 = time.perf_counter()
    scene = make_scene(args.seed, args.size, args.size, args.error_rate, args.n_classes,
                       args.snr)
    print(f"scene seed {args.seed}, {args.size}×{args.size}, {scene.cube.shape[0]} bands "
          f"{scene.wavelengths_nm[0]:.0f}–{scene.wavelengths_nm[-1]:.0f} nm, "
          f"made in {time.perf_counter() - t0:.2f} s")
    counts = np.bincount(scene.truth.ravel(), minlength=len(scene.class_names) + 1)
    for i, name in enumerate(scene.class_names, start=1):
        print(f"  {i:2d} {name:22s} {counts[i]:8d} px  ({len(scene.class_members[name])} "
              f"library spectra)")
    wrong = scene.pseudo_labels != scene.truth
    print(f"pseudo-label OA {pseudo_label_accuracy(scene):.4f}")
    print(f"mean confidence: correct {scene.confidence[~wrong].mean():.3f}, "
          f"wrong {scene.confidence[wrong].mean():.3f}")
    print(f"errors in wrong regions > 50 px: {error_cluster_fraction(scene):.3f}")
    if args.out:
        paths = write_scene(scene, args.out)
        print("wrote", ", ".join(str(p) for p in paths.values()))
    if args.check:
        _check(scene, args.seed)


if __name__ == "__main__":
    main()
