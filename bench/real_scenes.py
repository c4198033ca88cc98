#!/usr/bin/env python3
"""Benchmark scenes of real labelled EnMAP spectra (Berlin), laid out like a 30 m view of an
urban / peri-urban landscape, with CLIP-like pseudo-labels: the companion of
``bench/scenes.py`` (same :class:`scenes.Scene`, pseudo-label model and GeoTIFF writer),
but every pixel is a mixture of *measured* spectra. The layout is still synthetic:
numbers measured here are not numbers of a real EnMAP scene.

  .venv/bin/python bench/real_scenes.py --seed 1 --size 256 --out /tmp/real1 [--check]

Data (read at run time, never copied; ``data`` argument, else $SPECIAL_BERLIN_DATA, else
``../shared/data/enmap_berlin`` beside the repository)
-----------------------------------------------------------------------------------------
``classification_dataset.gpkg``, layer ``sample``: 299 points, each with the spectrum of
its 30 m EnMAP pixel in ``SAMPLE__1`` … ``SAMPLE__177`` (reflectance × 10000). Classes
come from ``level_3`` (``level_2`` lumps roofs and pavements as "impervious"): roof 30,
pavement 120, low vegetation 41, tree 55, soil 25, water 28 points. ``COVER`` (the
class's cover of the pixel, %) is 100 for only 69 points: the classes overlap, as real
pixels do. ``library_berlin.sli``/``.hdr``: ENVI spectral library, float64, 75 spectra
on the same 177 bands (× 10000); its header gives the wavelengths (460–2409 nm, gaps at
1323–1522 and 1783–2044 nm) and FWHMs (5.8–14.4 nm) in µm, used for the points too.
Library spectra join a class by name: roof (23: clay, cement, brown and black tiles,
bitumen 1–5, brown shingle, white / greenish / light grey roof materials, zinc);
pavement (7: asphalt 1–4, concrete 1–3); low vegetation (18: all grasses incl. dry ones,
sunflower, corn, sorghum, sugar beet, potatoes); tree (13: deciduous 1–11, coniferous
1–2); soil (7: bare soil 1–2, playground sand 1–2, red cinder sand 1–3); water (2).
Left out as ambiguous (5): railtrack 1–2 (gravel and steel), artificial turf 1–2 and
tartan (plastic sports grounds). Pools per class: 32–127 spectra (points, then library).

Class shares (per seed): roof, pavement, low vegetation and tree take a random
permutation of [0.42, 0.29, 0.17, 0.035], soil and water one of [0.025, 0.015]; each is
jittered by lognormal(0, 0.15), then all renormalised: two or three classes at 20–50 %,
three (soil, water, one big class) at 1–4 %. Realised within ~20 % (relative).

Layout (30 m pixels, vectorised numpy / scipy.ndimage)
------------------------------------------------------
1. Water: for 35 % of the seeds a meandering river, else 1–3 compact blobs (distance to
   random centres plus a 10 px noise field); a quantile meets the target area exactly.
2. Roads (pavement): near-horizontal or near-vertical, gently curved, 1–3 px wide,
   added while their area stays below half the pavement target (at least one); they
   cross water as bridges.
3. Voronoi parcels (one per ~26×26 px): those nearest a random urban centre (distance
   plus noise) become urban blocks until roof + the rest of the pavement target is
   met; the others go, in random order, to the field class (low vegetation, tree, soil)
   whose unmet target the parcel's area brings closest.
4. Urban blocks: a rectangle per cell of a 7 px lattice (sides 1–7 px, ±1 px jitter)
   so that roofs cover roof / (roof + pavement) of the block; full cells merge into
   large blocks; the rest is pavement (yards, squares, parking).
5. Tree clumps in low vegetation and clearings in woods (ellipses, radii 1.5–4 px, in
   25 % of the cells of a 20 px lattice); 1–2 px houses in 12 % of the cells of an 8 px
   lattice in low vegetation; trees 1–2 px along roads where a 6 px field is high
   (only when trees take >= 8 %).

Spectra: each object (parcel, building, road piece, patch, water body) draws 3 members
of its class's pool and blends them with weights softmax(1.5·F_k(x) + g_k), F_k smooth
unit fields (correlation 5–15 px each), g_k ~ N(0, 1) per object, times a brightness
factor uniform in [0.9, 1.1] per object; each pixel then takes weight uniform in
[0, 0.3] of one random member of its class. Borders mix linearly by a Gaussian PSF
(σ = 0.7 px) on the spectra; truth is the class of largest blurred abundance (a lone
1 px house mostly vanishes from the truth but not from the spectra). Noise: additive
Gaussian, σ_b = 1 % of the scene mean of band b (the spectra carry real noise already).

Pseudo-labels: ``scenes.make_pseudo_labels`` (30 % wrong: blurred, shifted borders that
melt roads and small houses, here up to 30 % of the errors; whole wrong regions and
blobs; salt; confidence correlated with correctness) with ``cap_touched_only`` (the
rare roofs melt past the per-class cap) and a confusion matrix from the spectral angles
between this scene's class mean spectra, so roof/pavement (angle ~3–6°), low
vegetation/tree (~5°) and soil/roof-pavement (~7–11°) take most errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import scenes as sc  # noqa: E402  (bench/scenes.py)

CLASS_NAMES = ["roof", "pavement", "low vegetation", "tree", "soil", "water"]
ROOF, PAVEMENT, LOWVEG, TREE, SOIL, WATER = range(1, 7)
BIG_SHARES = (0.42, 0.29, 0.17, 0.035)  # roof, pavement, low vegetation, tree, permuted
RARE_SHARES = (0.025, 0.015)  # soil, water, permuted
MEMBER_MIX = 0.3
BRIGHTNESS = 0.1
MIX_SIGMA_PX = 0.7
NOISE_REL = 0.01
BLOCK_PX = 7  # lattice of urban buildings
BOUNDARY_SHARE = 0.3  # share of the pseudo-label errors made by blurred borders
PIXEL_SIZE_M = 30.0
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "enmap_berlin"
LIBRARY_CLASSES = (  # name prefix → class; anything else is left out
    (("red clay tile", "red cement tile", "bitumen", "brown tile", "black tile",
      "brown shingle", "white roof", "greenish roof", "light gray roof", "zinc"), ROOF),
    (("asphalt", "concrete"), PAVEMENT),
    (("grass", "sunflower", "corn", "sorghum", "sugarbeet", "potatoes"), LOWVEG),
    (("deciduous tree", "coniferous tree"), TREE),
    (("bare soil", "sand", "red sand"), SOIL),
    (("water",), WATER),
)


def data_dir(data: str | Path | None = None) -> Path:
    """The Berlin data folder: ``data``, else $SPECIAL_BERLIN_DATA, else the default."""
    return Path(data or os.environ.get("SPECIAL_BERLIN_DATA") or DEFAULT_DATA)


def read_library(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """library_berlin: wavelengths nm (177,), fwhm nm, spectra (75, 177) 0–1, names."""
    from spectral.io.envi import read_envi_header

    hdr = read_envi_header(str(folder / "library_berlin.hdr"))
    lines, samples = int(hdr["lines"]), int(hdr["samples"])
    dtype = {"2": "i2", "4": "f4", "5": "f8", "12": "u2"}[hdr["data type"]]
    dtype = ("<" if hdr.get("byte order", "0") == "0" else ">") + dtype
    offset = int(hdr.get("header offset", "0"))
    raw = np.fromfile(folder / "library_berlin.sli", dtype=dtype, offset=offset)
    spectra = raw[:lines * samples].reshape(lines, samples).astype(np.float64) / 1e4
    unit = 1000.0 if hdr.get("wavelength units", "micro").lower().startswith("micro") else 1.0
    wl = np.asarray(hdr["wavelength"], float) * unit
    fwhm = np.asarray(hdr.get("fwhm", np.zeros(samples)), float) * unit
    names = [n.strip() for n in hdr["spectra names"]]
    return wl, fwhm, spectra, names


def read_points(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """classification_dataset.gpkg layer ``sample``: spectra (299, 177) 0–1, classes
    (1..6 from level_3), names; works with GDAL exceptions on or off."""
    from osgeo import ogr

    path = folder / "classification_dataset.gpkg"
    ds = ogr.Open(str(path))
    layer = ds.GetLayerByName("sample") if ds is not None else None
    if layer is None:
        raise OSError(f"cannot read layer 'sample' of {path}")
    defn = layer.GetLayerDefn()
    fields = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    bands = sorted((f for f in fields if f.startswith("SAMPLE__")), key=lambda f: int(f[8:]))
    spectra, classes, names = [], [], []
    layer.ResetReading()
    for feat in iter(layer.GetNextFeature, None):
        label = feat.GetField("level_3")
        if label not in CLASS_NAMES:
            continue
        spectra.append([feat.GetField(b) for b in bands])
        classes.append(CLASS_NAMES.index(label) + 1)
        names.append(f"point {feat.GetFID()} ({label}, cover {feat.GetField('COVER'):.0f} %)")
    return np.asarray(spectra, float) / 1e4, np.asarray(classes), names


@lru_cache(maxsize=2)
def load_pool(data: str | None = None):
    """(wavelengths_nm, fwhm_nm, spectra (M, 177) float32 sorted by class, class (M,),
    names (M,)) of the points and the mapped library spectra."""
    folder = data_dir(data)
    wl, fwhm, lib, lib_names = read_library(folder)
    pts, pts_cls, pts_names = read_points(folder)
    if pts.shape[1] != len(wl):
        raise ValueError(f"{pts.shape[1]} point bands but {len(wl)} library bands")
    lib_cls = np.zeros(len(lib_names), int)
    for i, name in enumerate(lib_names):
        for prefixes, value in LIBRARY_CLASSES:
            if name.lower().startswith(prefixes):
                lib_cls[i] = value
                break
    keep = lib_cls > 0
    spectra = np.concatenate([pts, lib[keep]])
    cls = np.concatenate([pts_cls, lib_cls[keep]])
    names = pts_names + [f"library: {n}" for n, k in zip(lib_names, keep, strict=True) if k]
    order = np.argsort(cls, kind="stable")
    sort = np.argsort(wl)
    return (wl[sort], fwhm[sort], spectra[order][:, sort].astype(np.float32), cls[order],
            [names[i] for i in order])


def draw_shares(rng: np.random.Generator) -> np.ndarray:
    """Target class shares (6,) in CLASS_NAMES order (see the module docstring)."""
    shares = np.empty(6)
    shares[:4] = rng.permutation(BIG_SHARES)
    shares[4:] = rng.permutation(RARE_SHARES)
    shares *= rng.lognormal(0, 0.15, 6)
    return shares / shares.sum()


# --------------------------------------------------------------------------- layout

def _in_rect(inner: np.ndarray, start: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Pixels whose position in their lattice cell (2, rows, cols) lies in the cell's
    rectangle (start and side: (rows, cols, 2) per pixel)."""
    start, side = np.moveaxis(start, -1, 0), np.moveaxis(side, -1, 0)
    return np.all((inner >= start) & (inner < start + side), axis=0)


def make_real_layout(rng: np.random.Generator, rows: int, cols: int, shares: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Pure class map (rows, cols) uint8 1..6 and object ids (rows, cols) int64."""
    shape, area = (rows, cols), rows * cols
    target = shares * area
    r, c = np.indices(shape)
    extent = np.sqrt(area)

    # water: a river or compact blobs, exact area by a quantile
    if rng.random() < 0.35:
        theta = rng.uniform(0, np.pi)
        y0, x0 = rng.uniform(0.2, 0.8) * rows, rng.uniform(0.2, 0.8) * cols
        along = r * np.sin(theta) + c * np.cos(theta)
        score = np.abs((r - y0) * np.cos(theta) - (c - x0) * np.sin(theta) + rng.uniform(
            3, 10) * np.sin(2 * np.pi * along / rng.uniform(80, 250) + rng.uniform(0, 6)))
    else:
        k = rng.integers(1, 4)
        ctr = rng.uniform(0.1, 0.9, (k, 2)) * [rows, cols]
        rad = rng.uniform(0.5, 1.5, k)
        score = np.min([np.hypot(r - y, c - x) / s for (y, x), s in zip(ctr, rad, strict=True)],
                       axis=0)
        score = score + 2.0 * sc.smooth_field(rng, shape, 10)
    water = score <= np.quantile(score, shares[WATER - 1])

    # roads, pavement, 1-3 px wide, up to half the pavement target
    road = np.zeros(shape, bool)
    road_id = np.zeros(shape, np.int64)
    for k in range(8):
        width = int(rng.integers(1, 4))
        if k and road.sum() + width * extent > 0.5 * target[PAVEMENT - 1]:
            break
        theta = (k % 2) * np.pi / 2 + np.deg2rad(rng.normal(0, 10))
        y0, x0 = rng.uniform(0.1, 0.9) * rows, rng.uniform(0.1, 0.9) * cols
        along = r * np.sin(theta) + c * np.cos(theta)
        across = (r - y0) * np.cos(theta) - (c - x0) * np.sin(theta) + rng.uniform(0, 4) * np.sin(
            2 * np.pi * along / rng.uniform(100, 300) + rng.uniform(0, 6))
        on = (across >= -width / 2) & (across < width / 2)
        road |= on
        road_id[on] = k + 1

    # Voronoi parcels: urban nearest a centre, fields by largest unmet target
    n_seeds = max(8, round(area / 26 ** 2))
    pts = rng.uniform([0, 0], [rows, cols], size=(n_seeds, 2)).astype(int)
    seeds = np.zeros(shape, np.int64)
    seeds[pts[:, 0], pts[:, 1]] = np.arange(1, n_seeds + 1)
    idx = ndimage.distance_transform_edt(seeds == 0, return_distances=False, return_indices=True)
    parcel = seeds[idx[0], idx[1]] - 1
    free = ~road & ~water
    size = np.bincount(parcel[free], minlength=n_seeds).astype(float)
    centre = rng.uniform(0.25, 0.75, 2) * [rows, cols]
    near = np.hypot(*(pts - centre).T) / extent + rng.normal(0, 0.12, n_seeds)
    pav_rest = max(target[PAVEMENT - 1] - road.sum(), 0.0)
    urban_target = target[ROOF - 1] + pav_rest
    use = np.zeros(n_seeds, int)
    done = 0.0
    for p in np.argsort(near):
        if abs(done + size[p] - urban_target) < abs(done - urban_target):
            use[p], done = -1, done + size[p]
    field_cls = np.array([LOWVEG, TREE, SOIL])
    deficit = target[field_cls - 1].copy()
    for p in rng.permutation(np.flatnonzero(use == 0)):
        gain = deficit - np.abs(deficit - size[p])  # how much closer to the target
        j = int(np.argmax(gain + rng.uniform(0, 1e-6, 3)))
        use[p] = field_cls[j]
        deficit[j] -= size[p]
    urban = (use == -1)[parcel]
    cls = np.where(urban, PAVEMENT, np.maximum(use, 0)[parcel])
    obj = parcel.copy()
    offset = n_seeds

    # buildings in urban blocks: rectangles on a 5 px lattice covering the roof fraction
    frac = np.clip(target[ROOF - 1] / max(urban_target, 1.0), 0.05, 0.95)
    sp = BLOCK_PX
    _, _, cell, inner, cells = sc._lattice(shape, sp)
    n_cells = cells[0] * cells[1]
    side = np.clip(np.round(np.sqrt(frac) * sp + rng.normal(0, 1.0, (n_cells, 2))), 1, sp)
    start = (rng.random((n_cells, 2)) * (sp - side + 1)).astype(int)
    bld = urban & _in_rect(inner, start[cell], side[cell])
    cls[bld], obj[bld] = ROOF, offset + cell[bld]
    offset += n_cells

    # tree clumps in meadows, clearings in woods; small houses in meadows
    _, _, cell, inner, cells = sc._lattice(shape, 20)
    n_cells = cells[0] * cells[1]
    rad = rng.uniform(1.5, 4, (n_cells, 2))
    ctr = rng.uniform(rad + 0.5, 20 - rad - 0.5)
    d = ((inner[0] - ctr[cell, 0]) / rad[cell, 0]) ** 2 + ((inner[1] - ctr[cell, 1])
                                                           / rad[cell, 1]) ** 2
    on = (rng.random(n_cells) < 0.25)[cell] & (d <= 1) & np.isin(cls, [LOWVEG, TREE]) & ~urban
    cls[on], obj[on] = np.where(cls[on] == LOWVEG, TREE, LOWVEG), offset + cell[on]
    offset += n_cells
    _, _, cell, inner, cells = sc._lattice(shape, 8)
    n_cells = cells[0] * cells[1]
    side = rng.integers(1, 3, (n_cells, 2))
    start = rng.integers(0, 6, (n_cells, 2))
    house = ((rng.random(n_cells) < 0.12)[cell] & (cls == LOWVEG)
             & _in_rect(inner, start[cell], side[cell]))
    cls[house], obj[house] = ROOF, offset + cell[house]
    offset += n_cells

    # street trees, roads and water on top
    if shares[TREE - 1] >= 0.08:
        dist = ndimage.distance_transform_edt(~road)
        street = (dist >= 1) & (dist <= 2) & (sc.smooth_field(rng, shape, 6) > 0.3) & ~bld
        cls[street], obj[street] = TREE, offset + parcel[street]
        offset += n_seeds
    cls[road], obj[road] = PAVEMENT, offset + road_id[road] * n_seeds + parcel[road]
    offset += 9 * n_seeds
    wlab, _ = ndimage.label(water & ~road)
    cls[wlab > 0], obj[wlab > 0] = WATER, offset + wlab[wlab > 0]
    _, obj = np.unique(obj, return_inverse=True)
    return cls.astype(np.uint8), obj.reshape(shape)


# --------------------------------------------------------------------------- scene

def make_real_scene(seed: int, rows: int = 256, cols: int = 256, error_rate: float = 0.3,
                    data: str | Path | None = None) -> sc.Scene:
    """A scene of real Berlin EnMAP spectra with truth and CLIP-like pseudo-labels, fully
    set by ``seed`` (see the module docstring). Cube (177, rows, cols) float32, 0–1."""
    if not 0 <= error_rate < 1:
        raise ValueError("error_rate must be in [0, 1)")
    if rows < 16 or cols < 16:
        raise ValueError("scenes must be at least 16×16 pixels")
    wl, fwhm, pool, pool_cls, pool_names = load_pool(str(data_dir(data)))
    counts = np.bincount(pool_cls, minlength=7)[1:]
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    shares = draw_shares(rng)
    cls, obj = make_real_layout(rng, rows, cols, shares)

    n_obj = int(obj.max()) + 1
    obj_cls = np.zeros(n_obj, np.int64)
    obj_cls[obj.ravel()] = cls.ravel() - 1
    pick = first[obj_cls][:, None] + (rng.random((n_obj, 3)) * counts[obj_cls][:, None]
                                      ).astype(np.int64)
    logits = np.stack([1.5 * sc.smooth_field(rng, cls.shape, rng.uniform(5, 15)).ravel()
                       for _ in range(3)], axis=1) + rng.normal(0, 1, (n_obj, 3))[obj.ravel()]
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    w *= rng.uniform(1 - BRIGHTNESS, 1 + BRIGHTNESS, n_obj)[obj.ravel(), None]
    o = obj.ravel()
    c0 = cls.ravel().astype(np.int64) - 1
    member = first[c0] + (rng.random(c0.size) * counts[c0]).astype(np.int64)
    t = (MEMBER_MIX * rng.random(c0.size)).astype(np.float32)
    spec = pool[member] * t[:, None]
    w = (w * (1 - t)[:, None]).astype(np.float32)
    for k in range(3):
        spec += pool[pick[o, k]] * w[:, k:k + 1]
    cube = np.ascontiguousarray(spec.T).reshape(-1, rows, cols)
    cube = ndimage.gaussian_filter(cube, sigma=(0, MIX_SIGMA_PX, MIX_SIGMA_PX))
    truth = sc._blurred_argmax(cls, len(CLASS_NAMES), MIX_SIGMA_PX)
    sigma = (NOISE_REL * cube.mean(axis=(1, 2))).astype(np.float32)
    cube += rng.standard_normal(cube.shape, dtype=np.float32) * sigma[:, None, None]

    flat = cube.reshape(len(wl), -1)
    means = np.stack([flat[:, truth.ravel() == k].mean(axis=1) if (truth == k).any()
                      else pool[pool_cls == k].mean(axis=0) for k in range(1, 7)])
    pseudo, conf = sc.make_pseudo_labels(rng, truth, CLASS_NAMES, error_rate,
                                      boundary_share=BOUNDARY_SHARE, means=means,
                                      cap_touched_only=True)
    members = {name: [n for n, k in zip(pool_names, pool_cls, strict=True) if k == i]
               for i, name in enumerate(CLASS_NAMES, start=1)}
    return sc.Scene(cube=cube, wavelengths_nm=wl.astype(np.float64), truth=truth,
                 class_names=list(CLASS_NAMES), pseudo_labels=pseudo, confidence=conf,
                 seed=seed, fwhm_nm=fwhm.astype(np.float64), class_members=members)


# --------------------------------------------------------------------------- CLI

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", type=int, default=256, help="rows = cols")
    ap.add_argument("--error-rate", type=float, default=0.3)
    ap.add_argument("--data", help="Berlin data folder (default $SPECIAL_BERLIN_DATA or "
                                   "../shared/data/enmap_berlin)")
    ap.add_argument("--out", help="folder for the GeoTIFFs (none: nothing written)")
    ap.add_argument("--check", action="store_true",
                    help="shares, per-class pseudo-label OA, scikit-learn checks")
    args = ap.parse_args()
    load_pool(str(data_dir(args.data)))
    t0 = time.perf_counter()
    scene = make_real_scene(args.seed, args.size, args.size, args.error_rate, args.data)
    print(f"real scene seed {args.seed}, {args.size}×{args.size}, {scene.cube.shape[0]} bands "
          f"{scene.wavelengths_nm[0]:.0f}–{scene.wavelengths_nm[-1]:.0f} nm, "
          f"made in {time.perf_counter() - t0:.2f} s")
    counts = np.bincount(scene.truth.ravel(), minlength=7)[1:]
    target = draw_shares(np.random.default_rng(args.seed))
    wrong = scene.pseudo_labels != scene.truth
    for i, name in enumerate(scene.class_names, start=1):
        here = scene.truth == i
        oa = f"{(~wrong[here]).mean():.3f}" if here.any() else "  -  "
        print(f"  {i} {name:15s} {counts[i - 1] / scene.truth.size:6.1%} (target "
              f"{target[i - 1]:5.1%})  pseudo-label OA {oa}  "
              f"({len(scene.class_members[name])} spectra)")
    print(f"pseudo-label OA {sc.pseudo_label_accuracy(scene):.4f}; mean confidence correct "
          f"{scene.confidence[~wrong].mean():.3f}, wrong {scene.confidence[wrong].mean():.3f}")
    print(f"errors in wrong regions > 50 px: {sc.error_cluster_fraction(scene):.3f}")
    if args.out:
        paths = sc.write_scene(scene, args.out, PIXEL_SIZE_M,
                            "bench/real_scenes.py (synthetic layout, real Berlin EnMAP spectra)")
        print("wrote", ", ".join(str(p) for p in paths.values()))
    if args.check:
        sc._check(scene, args.seed)


if __name__ == "__main__":
    main()
