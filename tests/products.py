"""Miniature hyperspectral products in each product's own on-disk layout.

Each ``write_*`` generator writes one product into a folder and returns a
``types.SimpleNamespace`` whose expected values are computed here, with plain numpy,
independently of the reader under test (nothing here imports ``special_qgis.core``):

- ``path``: the file a user would pick as input;
- ``files``: every file written (so a test can check that nothing else appeared);
- ``cube``: float64 (bands, rows, cols), the true physical values (reflectance after the
  product's own scaling) in the file's band order, NaN where the pixel is no data;
- ``wavelengths``, ``fwhm``: float64 (bands,) in nm, file band order;
- ``bad``: bool (bands,), bands the product flags as bad or that hold no valid value;
- ``crs``, ``transform`` (pixel-corner based, north-up), ``shape`` (rows, cols) of the
  product's map grid.

Facts about each layout come from public specifications and public readers; each
generator's docstring names them. Spectra are smooth mixtures of a few reflectance
curves in 0.01-0.6, functions of wavelength, so overlapping bands of two detectors agree.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.warp import transform as warp_points

ENVI_DTYPES = {"uint8": 1, "int16": 2, "int32": 3, "float32": 4, "float64": 5, "uint16": 12}


# ----------------------------------------------------------------------------- shared


def _reflectance(wavelengths_nm, rows: int, cols: int, rng) -> np.ndarray:
    """(bands, rows, cols) float64 reflectance, 0.01-0.6: per pixel a random mixture of
    four smooth curves (soil, vegetation, water, bright surface) of wavelength, with
    abundances that vary smoothly across the image."""
    w = np.asarray(wavelengths_nm, dtype=np.float64) / 1000.0  # µm

    def sig(x):
        return 1.0 / (1.0 + np.exp(-x))

    curves = np.stack([
        0.08 + 0.28 * (1.0 - np.exp(-(w - 0.35) / 0.6)),                      # soil
        0.03 + 0.05 * np.exp(-(((w - 0.55) / 0.04) ** 2))
        + 0.42 * sig((w - 0.715) / 0.02) * (1.0 - 0.6 * sig((w - 1.35) / 0.08)),  # vegetation
        0.005 + 0.07 * np.exp(-(w - 0.40) / 0.25),                             # water
        0.42 - 0.04 * w + 0.05 * np.sin(3.0 * w),                              # bright
    ])
    yy, xx = np.mgrid[0:rows, 0:cols] / max(rows, cols, 1)
    phase = rng.uniform(0, 2 * np.pi, size=(4, 2))
    freq = rng.uniform(2.0, 6.0, size=(4, 2))
    logits = np.stack([np.sin(freq[k, 0] * yy + phase[k, 0]) + np.cos(freq[k, 1] * xx + phase[k, 1])
                       for k in range(4)]) + rng.normal(0, 0.3, size=(4, rows, cols))
    abundance = np.exp(1.5 * logits)
    abundance /= abundance.sum(axis=0, keepdims=True)
    brightness = rng.uniform(0.85, 1.1, size=(rows, cols))
    cube = np.einsum("kb,krc->brc", curves, abundance) * brightness
    return np.clip(cube, 0.01, 0.6)


def _rotated_coords(shape, angle_deg: float, pixel_ratio: float = 1.0):
    """Coordinates (u, v) of each cell centre of a grid of ``shape`` (rows, cols) in a
    frame rotated by ``angle_deg`` about the grid centre, in units of ``pixel_ratio``
    grid cells: u along the columns, v along the rows of the rotated frame."""
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    y -= (rows - 1) / 2.0
    x -= (cols - 1) / 2.0
    a = np.deg2rad(angle_deg)
    u = (x * np.cos(a) + y * np.sin(a)) / pixel_ratio
    v = (-x * np.sin(a) + y * np.cos(a)) / pixel_ratio
    return u, v


def _swath_mask(rows: int, cols: int, angle_deg: float = 12.0) -> np.ndarray:
    """True inside a rotated swath in its bounding box (the corners are outside), with
    the first row and the last column wholly outside as well."""
    u, v = _rotated_coords((rows, cols), angle_deg)
    inside = (np.abs(u) <= 0.46 * cols) & (np.abs(v) <= 0.46 * rows)
    inside[0, :] = False
    inside[:, -1] = False
    return inside


def _header_text(items: dict) -> str:
    """ENVI header text: 'ENVI' then one 'key = value' line per item; lists, tuples and
    arrays become '{a, b, c}', strings are written as they are."""
    lines = ["ENVI"]
    for key, value in items.items():
        if isinstance(value, (list, tuple, np.ndarray)):
            value = "{" + ", ".join(_num(v) for v in value) + "}"
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def _num(v) -> str:
    """A number as text that parses back to the same float (or int)."""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return repr(float(v))


def write_envi_cube(path, cube: np.ndarray, header_items: dict, interleave: str,
                    hdr_path=None) -> str:
    """Raw little-endian binary of ``cube`` (bands, rows, cols) in ``interleave``
    (bsq/bil/bip) at ``path``, and its ENVI header (ENVI's "ENVI Header Format"
    document: samples/lines/bands, header offset, file type, data type, interleave,
    byte order, then ``header_items``) at ``hdr_path`` (default ``path + '.hdr'``).
    Returns the header's path."""
    interleave = interleave.lower()
    bands, rows, cols = cube.shape
    order = {"bsq": (0, 1, 2), "bil": (1, 0, 2), "bip": (1, 2, 0)}[interleave]
    np.ascontiguousarray(cube.transpose(order)).astype(cube.dtype.newbyteorder("<")).tofile(path)
    items = {
        "description": header_items.get("description", "{miniature test product}"),
        "samples": cols, "lines": rows, "bands": bands, "header offset": 0,
        "file type": "ENVI Standard", "data type": ENVI_DTYPES[cube.dtype.name],
        "interleave": interleave, "byte order": 0,
    }
    items.update({k: v for k, v in header_items.items() if k != "description"})
    hdr_path = str(hdr_path) if hdr_path is not None else str(path) + ".hdr"
    with open(hdr_path, "w") as fh:
        fh.write(_header_text(items))
    return hdr_path


def _utm_map_info(transform: Affine, zone: int) -> str:
    """ENVI 'map info' for a north-up UTM grid; reference pixel (1, 1) is the upper-left
    corner of the upper-left pixel."""
    return (f"{{UTM, 1.000, 1.000, {_num(transform.c)}, {_num(transform.f)}, "
            f"{_num(transform.a)}, {_num(-transform.e)}, {zone}, North, WGS-84, units=Meters}}")


def _write_gtiff(path, data: np.ndarray, crs, transform, nodata, **options) -> None:
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1],
                   count=data.shape[0], dtype=data.dtype.name, crs=crs,
                   transform=transform, nodata=nodata, **options)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _xml(parent, tag: str, text=None, **attrib):
    element = ET.SubElement(parent, tag, {k: str(v) for k, v in attrib.items()})
    if text is not None:
        element.text = text if isinstance(text, str) else _num(text)
    return element


def _write_xml(root, path) -> None:
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)


# ----------------------------------------------------------------------------- EnMAP

ENMAP_NAME = "ENMAP01-____L2A-DT0000004950_20221103T162438Z_001_V010110_20221118T145147Z"
ENMAP_NODATA = -32768


def write_enmap_l2a(folder, *, order: str = "detector", fmt: str = "GTiff",
                    nodata_bands=(1343.0, 1400.0), rows: int = 24, cols: int = 22,
                    n_vnir: int = 12, n_swir: int = 14, varied_scaling: bool = True,
                    seed: int = 0) -> SimpleNamespace:
    """EnMAP L2A product (DLR), layout of the EnMAP Level 1B/1C/2A product specification
    (DLR EN-PCV-ICD-2009-2) as read by EnMAP-Box's ``ImportEnmapL2AAlgorithm``
    (enmapboxprocessing/algorithm/importenmapl2aalgorithm.py) and
    ``ImportEnmapL1BAlgorithm.findSpectralImageFilename``.

    Writes the product folder ``<folder>/<name>/`` holding ``<name>-METADATA.XML`` and
    ``<name>-SPECTRAL_IMAGE.TIF`` (``fmt='GTiff'``: int16, GDAL nodata -32768, EPSG:32633,
    30 m) or ``<name>-SPECTRAL_IMAGE.BSQ``/``.BIL`` with ``<name>-SPECTRAL_IMAGE.HDR``
    (``fmt='BSQ'``/``'BIL'``: ENVI, data type 2, byte order 0, data ignore value -32768,
    UTM map info). ``path`` is the SPECTRAL_IMAGE file.

    METADATA.XML (element names as the importer reads them):
    ``specific/bandCharacterisation/bandID[@number]`` with ``wavelengthCenterOfBand``,
    ``FWHMOfBand``, ``GainOfBand``, ``OffsetOfBand`` (value = DN * gain + offset), one per
    band in file order; ``specific/vnirProductQuality/expectedChannelsList`` and
    ``specific/swirProductQuality/expectedChannelsList`` (comma-separated 1-based band
    numbers of each detector); ``product/bandStatistics/bandID[@number]`` with ``mean``
    and ``stdDeviation``, which are ``-1000000`` and ``0`` for a band without data (how
    DLR marks no-data bands; EnMAP-Box issues #267/#974).

    ``order='detector'``: all VNIR bands then all SWIR bands, so the wavelengths fall back
    at the VNIR/SWIR join (the 902-993 nm detector overlap); ``order='wavelength'``: all
    bands sorted by wavelength (VNIR and SWIR interleaved in the overlap).
    SWIR bands centred in ``nodata_bands`` (a (lo, hi) nm range; None for none) are
    -32768 everywhere; a rotated-swath border is -32768 in every band.
    ``varied_scaling``: the third VNIR band gets gain 0.0002, offset -0.01 (else 0.0001, 0).
    Extra fields: ``xml``, ``hdr`` (None for GTiff), ``folder``, ``dn`` (int16 file
    array), ``gain``, ``offset``, ``vnir_bands``/``swir_bands`` (1-based), ``nodata``.
    """
    if order not in ("detector", "wavelength"):
        raise ValueError(f"order must be 'detector' or 'wavelength', not {order!r}")
    fmt = {"GTIFF": "GTiff", "BSQ": "BSQ", "BIL": "BIL"}.get(str(fmt).upper(), fmt)
    if fmt not in ("GTiff", "BSQ", "BIL"):
        raise ValueError(f"fmt must be 'GTiff', 'BSQ' or 'BIL', not {fmt!r}")
    rng = np.random.default_rng(seed)

    vnir_wl = np.round(np.linspace(420.0, 990.0, n_vnir), 3)
    swir_wl = np.linspace(905.0, 2440.0, max(n_swir - 2, 2))
    swir_wl = np.round(np.sort(np.concatenate([swir_wl, [1352.5, 1391.5]]))[:n_swir], 3)
    wl = np.concatenate([vnir_wl, swir_wl])
    fwhm = np.round(np.concatenate([np.linspace(6.5, 9.8, n_vnir),
                                    np.linspace(11.4, 10.5, len(swir_wl))]), 3)
    detector = np.array(["vnir"] * n_vnir + ["swir"] * len(swir_wl))
    gain = np.full(wl.size, 0.0001)
    offset = np.zeros(wl.size)
    if varied_scaling and n_vnir >= 3:
        gain[2], offset[2] = 0.0002, -0.01
    perm = np.argsort(wl, kind="stable") if order == "wavelength" else np.arange(wl.size)
    wl, fwhm, detector = wl[perm], fwhm[perm], detector[perm]
    gain, offset = gain[perm], offset[perm]

    refl = _reflectance(wl, rows, cols, rng)
    dn = np.round((refl - offset[:, None, None]) / gain[:, None, None]).astype(np.int16)
    valid = _swath_mask(rows, cols)
    dn[:, ~valid] = ENMAP_NODATA
    empty = np.zeros(wl.size, dtype=bool)
    if nodata_bands is not None:
        lo, hi = nodata_bands
        empty = (detector == "swir") & (wl >= lo) & (wl <= hi)
        dn[empty] = ENMAP_NODATA
    cube = dn * gain[:, None, None] + offset[:, None, None]
    cube[dn == ENMAP_NODATA] = np.nan

    crs = CRS.from_epsg(32633)
    transform = Affine(30.0, 0.0, 399990.0, 0.0, -30.0, 5800020.0)
    product = Path(folder) / ENMAP_NAME
    product.mkdir(parents=True, exist_ok=True)
    stem = product / ENMAP_NAME
    xml_path = str(stem) + "-METADATA.XML"
    hdr = None
    if fmt == "GTiff":
        image = str(stem) + "-SPECTRAL_IMAGE.TIF"
        _write_gtiff(image, dn, crs, transform, ENMAP_NODATA)
        files = [image, xml_path]
    else:
        image = str(stem) + "-SPECTRAL_IMAGE." + fmt
        hdr = write_envi_cube(image, dn, {
            "description": "{EnMAP L2A spectral image}",
            "map info": _utm_map_info(transform, 33),
            "data ignore value": ENMAP_NODATA,
        }, fmt.lower(), hdr_path=str(stem) + "-SPECTRAL_IMAGE.HDR")
        files = [image, hdr, xml_path]

    vnir_bands = [i + 1 for i in range(wl.size) if detector[i] == "vnir"]
    swir_bands = [i + 1 for i in range(wl.size) if detector[i] == "swir"]
    root = ET.Element("level_X_product")
    meta = _xml(root, "metadata")
    _xml(meta, "name", ENMAP_NAME)
    specific = _xml(root, "specific")
    characterisation = _xml(specific, "bandCharacterisation")
    for i in range(wl.size):
        band = _xml(characterisation, "bandID", number=i + 1)
        _xml(band, "wavelengthCenterOfBand", wl[i])
        _xml(band, "FWHMOfBand", fwhm[i])
        _xml(band, "GainOfBand", gain[i])
        _xml(band, "OffsetOfBand", offset[i])
    for det, numbers in (("vnir", vnir_bands), ("swir", swir_bands)):
        quality = _xml(specific, f"{det}ProductQuality")
        _xml(quality, "expectedChannelsList", ",".join(str(n) for n in numbers))
    statistics = _xml(_xml(root, "product"), "bandStatistics")
    for i in range(wl.size):
        band = _xml(statistics, "bandID", number=i + 1)
        if empty[i]:
            _xml(band, "mean", "-1000000")
            _xml(band, "stdDeviation", "0")
        else:
            _xml(band, "mean", f"{np.nanmean(cube[i]):.6f}")
            _xml(band, "stdDeviation", f"{np.nanstd(cube[i]):.6f}")
    _write_xml(root, xml_path)

    return SimpleNamespace(
        path=image, files=files, folder=str(product), xml=xml_path, hdr=hdr, cube=cube,
        wavelengths=wl.astype(np.float64), fwhm=fwhm.astype(np.float64), bad=empty.copy(),
        crs=crs, transform=transform, shape=(rows, cols), dn=dn, gain=gain, offset=offset,
        vnir_bands=vnir_bands, swir_bands=swir_bands, nodata=ENMAP_NODATA)


# ----------------------------------------------------------------------------- DESIS

DESIS_NAME = "DESIS-HSI-L2A-DT0483038728_001-20200710T025453-V0210"
DESIS_NODATA = -32768


def _desis_list(values) -> str:
    """'{' then one value per line, as the DESIS SPECTRAL_IMAGE.hdr lists wavelengths."""
    return "{\n" + ",\n".join(" " + _num(v) for v in values) + "}"


def write_desis_l2a(folder, *, rows: int = 24, cols: int = 22, bands: int = 30,
                    seed: int = 1) -> SimpleNamespace:
    """DESIS L2A product (DLR/Teledyne), file set of the DESIS Product Specification
    (DLR PAV-DLR-ICD-003): ``<name>-SPECTRAL_IMAGE.tif``, ``<name>-SPECTRAL_IMAGE.hdr``,
    ``<name>-METADATA.xml``, flat in ``folder`` (as the product ZIP unpacks; SISTER's
    sister/sensors/desis.py opens them so). ``path`` is the SPECTRAL_IMAGE.tif.

    SPECTRAL_IMAGE.tif: int16, band-interleaved by pixel and compressed (EnMAP-Box
    ImportDesisL2AAlgorithm's description), UTM, 30 m, with GDAL nodata -32768 (the
    nodata convention of real files was not confirmed) in a rotated-swath border.
    SPECTRAL_IMAGE.hdr: the ENVI-style header from which EnMAP-Box's DESIS importers read
    ``wavelength = {...}``, ``fwhm = {...}``, ``data gain values = {...}`` and
    ``data offset values = {...}`` (value = DN * gain + offset; gain 1e-4), one value per
    line, and ``wavelength units = Nanometers``.
    METADATA.xml: root ``hsi_doc`` with ``metadata``, ``processing``, ``base``
    (``spatialCoverage/boundingPolygon/point`` with ``frame``, ``latitude``,
    ``longitude``; ``temporalCoverage``; ``altitudeCoverage``) and ``specific``
    (``bandCharacterisation/band`` with ``bandNumber``, ``wavelengthCenterOfBand``,
    ``wavelengthWidthOfBand``, ``gainOfBand``, ``offsetOfBand``, ``wavelengths``,
    ``response``), the element names SISTER's DESIS reader uses. Bands increase from
    401.275 to 998.75 nm (real: 235 bands, ~2.55 nm). No band is bad.
    Extra fields: ``hdr``, ``xml``, ``dn``, ``gain``, ``offset``, ``nodata``.
    """
    rng = np.random.default_rng(seed)
    wl = np.round(np.linspace(401.275, 998.75, bands), 3)
    fwhm = np.round(np.linspace(3.2, 3.9, bands), 3)
    gain = np.full(bands, 0.0001)
    offset = np.zeros(bands)
    refl = _reflectance(wl, rows, cols, rng)
    dn = np.round((refl - offset[:, None, None]) / gain[:, None, None]).astype(np.int16)
    valid = _swath_mask(rows, cols, angle_deg=-9.0)
    dn[:, ~valid] = DESIS_NODATA
    cube = dn * gain[:, None, None] + offset[:, None, None]
    cube[dn == DESIS_NODATA] = np.nan

    crs = CRS.from_epsg(32649)
    transform = Affine(30.0, 0.0, 226680.0, 0.0, -30.0, 2545380.0)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = str(folder / DESIS_NAME)
    tif, hdr, xml_path = (stem + "-SPECTRAL_IMAGE.tif", stem + "-SPECTRAL_IMAGE.hdr",
                          stem + "-METADATA.xml")
    _write_gtiff(tif, dn, crs, transform, DESIS_NODATA, interleave="pixel", compress="lzw")
    with open(hdr, "w") as fh:
        fh.write(_header_text({
            "description": "{DESIS L2A surface reflectance}",
            "samples": cols, "lines": rows, "bands": bands, "header offset": 0,
            "file type": "TIFF", "data type": 2, "interleave": "bip", "byte order": 0,
            "sensor type": "DESIS",
            "map info": _utm_map_info(transform, 49),
            "wavelength units": "Nanometers",
            "wavelength": _desis_list(wl),
            "fwhm": _desis_list(fwhm),
            "data gain values": _desis_list(gain),
            "data offset values": _desis_list(offset),
        }))

    root = ET.Element("hsi_doc")
    meta = _xml(root, "metadata")
    _xml(meta, "productName", DESIS_NAME)
    _xml(_xml(root, "processing"), "ozoneValue", "300")
    base = _xml(root, "base")
    polygon = _xml(_xml(base, "spatialCoverage"), "boundingPolygon")
    xs = [transform.c, transform.c + cols * 30.0, transform.c + cols * 30.0, transform.c]
    ys = [transform.f, transform.f, transform.f - rows * 30.0, transform.f - rows * 30.0]
    lons, lats = warp_points(crs, CRS.from_epsg(4326), xs, ys)
    for k, (lat, lon) in enumerate(zip(lats, lons, strict=True), start=1):
        point = _xml(polygon, "point")
        _xml(point, "frame", f"point_{k}")
        _xml(point, "latitude", f"{lat:.6f}")
        _xml(point, "longitude", f"{lon:.6f}")
    temporal = _xml(base, "temporalCoverage")
    _xml(temporal, "startTime", "2020-07-10T02:54:53.000Z")
    _xml(temporal, "endTime", "2020-07-10T02:54:57.000Z")
    _xml(base, "altitudeCoverage", "409000.0")
    specific = _xml(root, "specific")
    characterisation = _xml(specific, "bandCharacterisation")
    for i in range(bands):
        band = _xml(characterisation, "band")
        _xml(band, "bandNumber", str(i + 1))
        _xml(band, "wavelengthCenterOfBand", wl[i])
        _xml(band, "wavelengthWidthOfBand", fwhm[i])
        _xml(band, "gainOfBand", gain[i])
        _xml(band, "offsetOfBand", offset[i])
        sample = wl[i] + np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) * fwhm[i] / 2.0
        response = np.exp(-4 * np.log(2) * ((sample - wl[i]) / fwhm[i]) ** 2)
        _xml(band, "wavelengths", ",".join(f"{v:.3f}" for v in sample))
        _xml(band, "response", ",".join(f"{v:.5f}" for v in response))
    _xml(specific, "sceneAzimuthAngle", "101.5")
    _xml(specific, "sceneIncidenceAngle", "4.2")
    _write_xml(root, xml_path)

    return SimpleNamespace(
        path=tif, files=[tif, hdr, xml_path], hdr=hdr, xml=xml_path, cube=cube,
        wavelengths=wl.astype(np.float64), fwhm=fwhm.astype(np.float64),
        bad=np.zeros(bands, dtype=bool), crs=crs, transform=transform, shape=(rows, cols),
        dn=dn, gain=gain, offset=offset, nodata=DESIS_NODATA)


# ----------------------------------------------------------------------------- PRISMA

PRISMA_NAME = "PRS_L2D_STD_20201107101404_20201107101408_0001.he5"
PRISMA_SWATH = "HDFEOS/SWATHS/PRS_L2D_HCO"


def write_prisma_l2d(folder, *, rows: int = 20, cols: int = 18, n_vnir: int = 16,
                     n_swir: int = 20, seed: int = 2) -> SimpleNamespace:
    """PRISMA L2D product (ASI), HDF-EOS5 layout of ASI's PRISMA Products Specification
    Document, with the names read by EnMAP-Box's
    ``ImportPrismaL2DAlgorithm`` and by IREA-CNR's prismaread (R/pr_convert.R,
    pr_create_vnir.R, pr_get_geoloc.R, pr_setext_L2D.R).

    ``<folder>/PRS_L2D_STD_20201107101404_20201107101408_0001.he5`` (``path``) holds
    ``HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/VNIR_Cube`` and ``.../SWIR_Cube`` (uint16,
    (rows, bands, cols): band-interleaved by line), ``.../VNIR_PIXEL_L2_ERR_MATRIX`` and
    ``.../SWIR_PIXEL_L2_ERR_MATRIX`` (uint8, same shapes, 0 = no error),
    ``.../Geolocation Fields/Latitude`` and ``Longitude`` (float32, rows x cols); root
    attributes ``List_Cw_Vnir``, ``List_Fwhm_Vnir``, ``List_Cw_Vnir_Flags`` and the
    ``Swir`` ones in cube band order, which is descending wavelength, with unused slots at
    wavelength 0 (the first two VNIR and last two SWIR slots here; DN 0); one SWIR band
    with a wavelength has flag 0; ``L2ScaleVnirMin/Max``, ``L2ScaleSwirMin/Max``
    (reflectance = Min + DN * (Max - Min) / 65535); ``Epsg_Code`` (32632),
    ``Product_{UL,UR,LL,LR}corner_{easting,northing}`` and ``Product_center_*`` (pixel
    CENTRES, 30 m), ``Processing_Level`` ('2D'), ``Product_ID``, ``Projection_Id``,
    ``Projection_Name``, ``Product_StartTime``, ``Sun_zenith_angle``,
    ``Sun_azimuth_angle``. A rotated-swath border has DN 0 in every band of both cubes.

    The returned ``cube``/``wavelengths``/``fwhm``/``bad`` are in the merged order a reader
    produces: all VNIR cube bands in cube order, then all SWIR cube bands in cube order.
    ``bad`` = wavelength 0 or flag 0; unused (wavelength-0) bands are NaN in ``cube``.
    Transform: x0 = UL easting - 15, y0 = UL northing + 15, 30 m.
    Extra fields: ``vnir_dn``, ``swir_dn`` (file arrays), ``scale`` (dict), ``n_vnir``.
    """
    rng = np.random.default_rng(seed)
    vnir_wl = np.concatenate([[0.0, 0.0], np.round(np.linspace(1008.4, 402.4, n_vnir - 2), 4)])
    vnir_fwhm = np.concatenate([[0.0, 0.0], np.round(np.linspace(13.1, 10.9, n_vnir - 2), 4)])
    swir_wl = np.concatenate([np.round(np.linspace(2497.1, 920.3, n_swir - 2), 4), [0.0, 0.0]])
    swir_fwhm = np.concatenate([np.round(np.linspace(8.1, 12.6, n_swir - 2), 4), [0.0, 0.0]])
    vnir_flags = (vnir_wl != 0).astype(np.int8)
    swir_flags = (swir_wl != 0).astype(np.int8)
    swir_flags[int(np.argmin(np.abs(swir_wl - 1400.0)))] = 0
    # stored as float32 attributes; the expected values use what a reader gets back
    scale = {key: float(np.float32(value)) for key, value in (
        ("L2ScaleVnirMin", 0.0), ("L2ScaleVnirMax", 0.75),
        ("L2ScaleSwirMin", 0.002), ("L2ScaleSwirMax", 0.6512))}

    valid = _swath_mask(rows, cols, angle_deg=14.0)

    def detector_cube(wl, lo, hi):
        used = wl != 0
        dn = np.zeros((wl.size, rows, cols), dtype=np.uint16)
        refl = _reflectance(wl[used], rows, cols, rng)
        dn[used] = np.clip(np.round((refl - lo) / (hi - lo) * 65535), 1, 65535).astype(np.uint16)
        dn[:, ~valid] = 0
        value = lo + dn * (hi - lo) / 65535.0
        value[:, ~valid] = np.nan
        value[~used] = np.nan
        return dn, value

    vnir_dn, vnir_val = detector_cube(vnir_wl, scale["L2ScaleVnirMin"], scale["L2ScaleVnirMax"])
    swir_dn, swir_val = detector_cube(swir_wl, scale["L2ScaleSwirMin"], scale["L2ScaleSwirMax"])

    epsg = 32632
    ul_e, ul_n = 455115.0, 5080485.0  # centre of the upper-left pixel
    lr_e, lr_n = ul_e + (cols - 1) * 30.0, ul_n - (rows - 1) * 30.0
    transform = Affine(30.0, 0.0, ul_e - 15.0, 0.0, -30.0, ul_n + 15.0)
    ys, xs = np.mgrid[0:rows, 0:cols]
    east = (ul_e + xs * 30.0).ravel()
    north = (ul_n - ys * 30.0).ravel()
    lon, lat = warp_points(CRS.from_epsg(epsg), CRS.from_epsg(4326), east, north)

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / PRISMA_NAME)
    with h5py.File(path, "w") as f:
        data = f.create_group(f"{PRISMA_SWATH}/Data Fields")
        data.create_dataset("VNIR_Cube", data=vnir_dn.transpose(1, 0, 2))
        data.create_dataset("SWIR_Cube", data=swir_dn.transpose(1, 0, 2))
        data.create_dataset("VNIR_PIXEL_L2_ERR_MATRIX",
                            data=np.zeros((rows, n_vnir, cols), dtype=np.uint8))
        data.create_dataset("SWIR_PIXEL_L2_ERR_MATRIX",
                            data=np.zeros((rows, n_swir, cols), dtype=np.uint8))
        geo = f.create_group(f"{PRISMA_SWATH}/Geolocation Fields")
        geo.create_dataset("Latitude", data=np.asarray(lat, np.float32).reshape(rows, cols))
        geo.create_dataset("Longitude", data=np.asarray(lon, np.float32).reshape(rows, cols))
        a = f.attrs
        a["Product_ID"] = np.bytes_("PRS_L2D_STD")
        a["Processing_Level"] = np.bytes_("2D")
        a["Product_StartTime"] = np.bytes_("2020-11-07T10:14:04.000")
        a["Product_StopTime"] = np.bytes_("2020-11-07T10:14:08.000")
        a["Sun_zenith_angle"] = np.float32(63.2)
        a["Sun_azimuth_angle"] = np.float32(165.4)
        a["List_Cw_Vnir"] = vnir_wl.astype(np.float32)
        a["List_Fwhm_Vnir"] = vnir_fwhm.astype(np.float32)
        a["List_Cw_Vnir_Flags"] = vnir_flags
        a["List_Cw_Swir"] = swir_wl.astype(np.float32)
        a["List_Fwhm_Swir"] = swir_fwhm.astype(np.float32)
        a["List_Cw_Swir_Flags"] = swir_flags
        for key, value in scale.items():
            a[key] = np.float32(value)
        a["Epsg_Code"] = np.int32(epsg)
        a["Projection_Id"] = np.bytes_(str(epsg % 100))
        a["Projection_Name"] = np.bytes_("UTM")
        corners = {"UL": (ul_e, ul_n), "UR": (lr_e, ul_n), "LL": (ul_e, lr_n), "LR": (lr_e, lr_n),
                   "center": ((ul_e + lr_e) / 2, (ul_n + lr_n) / 2)}
        for name, (e, n) in corners.items():
            key = "Product_center" if name == "center" else f"Product_{name}corner"
            a[f"{key}_easting"] = np.float64(e)
            a[f"{key}_northing"] = np.float64(n)

    # float32 attributes are what a reader sees
    wl = np.concatenate([vnir_wl, swir_wl]).astype(np.float32).astype(np.float64)
    fwhm = np.concatenate([vnir_fwhm, swir_fwhm]).astype(np.float32).astype(np.float64)
    flags = np.concatenate([vnir_flags, swir_flags])
    return SimpleNamespace(
        path=path, files=[path], cube=np.concatenate([vnir_val, swir_val]),
        wavelengths=wl, fwhm=fwhm, bad=(wl == 0) | (flags == 0),
        crs=CRS.from_epsg(epsg), transform=transform, shape=(rows, cols),
        vnir_dn=vnir_dn, swir_dn=swir_dn, scale=scale, n_vnir=n_vnir)


# ----------------------------------------------------------------------------- EMIT

EMIT_NAME = "EMIT_L2A_RFL_001_20220815T042838_2222703_003.nc"
EMIT_FILL = -9999.0
EMIT_RES = 0.000542232520256
_NC_DIM_ONLY = "This is a netCDF dimension but not a netCDF variable.%10d"


def _nc_dimension(f, name: str, size: int):
    """A netCDF-4 dimension without a coordinate variable: an HDF5 dimension scale whose
    NAME is netCDF's 'not a variable' marker (netCDF-4 file format, NetCDF Users Guide)."""
    scale = f.create_dataset(name, shape=(size,), dtype="f4")
    scale.make_scale(_NC_DIM_ONLY % size)
    return scale


def _nc_variable(group, name: str, data: np.ndarray, dims, fill=None, **attrs):
    kwargs = {} if fill is None else {"fillvalue": np.array(fill, dtype=data.dtype)}
    var = group.create_dataset(name, data=data, **kwargs)
    if fill is not None:
        var.attrs["_FillValue"] = np.array([fill], dtype=data.dtype)
    for key, value in attrs.items():
        var.attrs[key] = np.bytes_(value) if isinstance(value, str) else value
    for axis, dim in enumerate(dims):
        var.dims[axis].attach_scale(dim)
    return var


def write_emit_l2a(folder, *, downtrack: int = 14, crosstrack: int = 10, bands: int = 30,
                   angle: float = 25.0, seed: int = 3) -> SimpleNamespace:
    """EMIT L2A surface reflectance (NASA JPL), netCDF-4 layout of the EMIT Data Product
    User Guide as written by emit-sds/emit-utils (emit_utils/daac_converter.py:
    makeDims, makeGlobalAttr, add_loc, add_glt) and the L2A PGE (emit-sds-l2a
    output_conversion: sensor_band_parameters), read by emit_utils/reformat.py and
    EnMAP-Box's ``ImportEmitL2AAlgorithm``.

    ``<folder>/EMIT_L2A_RFL_001_20220815T042838_2222703_003.nc`` (``path``), written with
    h5py as netCDF-4 (HDF5 dimension scales): dimensions ``downtrack``, ``crosstrack``,
    ``bands``, ``ortho_y``, ``ortho_x``; root variable ``reflectance`` float32
    (downtrack, crosstrack, bands), ``_FillValue`` -9999 (some pixels are -9999);
    group ``sensor_band_parameters``: ``wavelengths`` (f4, nm), ``fwhm`` (f4),
    ``good_wavelengths`` (u1, 1 good / 0 bad: 0 for 1325-1435 nm and 1770-1962 nm, the
    PGE's default bbl); group ``location``: ``glt_x``, ``glt_y`` (i4, (ortho_y, ortho_x),
    1-based crosstrack / downtrack indices, 0 = no source pixel), ``lat``, ``lon``, ``elev``
    (f8, downtrack x crosstrack); global attributes ``geotransform`` (GDAL order, degrees),
    ``spatial_ref`` (WKT of EPSG:4326), ``spatialResolution``, ``time_coverage_start``,
    ``time_coverage_end``, bounding longitudes/latitudes and others.

    The GLT maps a swath rotated by ``angle`` degrees on a north-up grid with ortho cells
    ~0.87 of a swath pixel, so the ortho grid is larger than the swath, its corners have
    GLT 0 and several cells share one source pixel (nearest-neighbour duplication).
    ``cube`` (float32) is on the ORTHO grid: cube[:, i, j] = reflectance[glt_y-1, glt_x-1, :], NaN
    where the GLT is 0 or the source is -9999; ``shape`` = GLT shape; ``crs`` EPSG:4326;
    ``bad`` = good_wavelengths == 0. Extra fields: ``glt_x``, ``glt_y``, ``source`` (the
    float32 reflectance array as written), ``lat``, ``lon``.
    """
    rng = np.random.default_rng(seed)
    wl = np.round(np.linspace(381.0, 2493.0, bands), 4).astype(np.float32)
    fwhm = np.round(np.linspace(8.5, 9.3, bands), 4).astype(np.float32)
    good = np.ones(bands, dtype=np.uint8)
    good[((wl > 1325) & (wl < 1435)) | ((wl > 1770) & (wl < 1962))] = 0

    source = _reflectance(wl, downtrack, crosstrack, rng).transpose(1, 2, 0).astype(np.float32)
    source[downtrack // 2, 1, :] = EMIT_FILL
    source[downtrack - 1, crosstrack - 2, :] = EMIT_FILL
    source[2, crosstrack - 1, :] = EMIT_FILL

    ratio = 1.15  # one swath pixel spans 1.15 ortho cells
    a = np.deg2rad(angle)
    height = int(np.ceil((downtrack * np.cos(a) + crosstrack * np.sin(a)) * ratio)) + 2
    width = int(np.ceil((crosstrack * np.cos(a) + downtrack * np.sin(a)) * ratio)) + 2
    u, v = _rotated_coords((height, width), angle, ratio)
    col = np.floor(u + crosstrack / 2.0).astype(int)
    row = np.floor(v + downtrack / 2.0).astype(int)
    inside = (col >= 0) & (col < crosstrack) & (row >= 0) & (row < downtrack)
    glt_x = np.where(inside, col + 1, 0).astype(np.int32)
    glt_y = np.where(inside, row + 1, 0).astype(np.int32)

    # float32 (the file's own type): a product-sized ortho cube in float64 would need ~9 GB.
    cube = np.full((bands, height, width), np.nan, dtype=np.float32)
    gathered = source[glt_y[inside] - 1, glt_x[inside] - 1, :]
    gathered[gathered == EMIT_FILL] = np.nan
    cube[:, inside] = gathered.T
    del gathered

    x0, y0 = 73.2051, 21.6487
    geotransform = np.array([x0, EMIT_RES, 0.0, y0, 0.0, -EMIT_RES], dtype=np.float64)
    # each swath pixel centre at the ortho position it came from
    sc, sr = np.meshgrid(np.arange(crosstrack) + 0.5 - crosstrack / 2.0,
                         np.arange(downtrack) + 0.5 - downtrack / 2.0)
    ox = (sc * np.cos(a) - sr * np.sin(a)) * ratio + (width - 1) / 2.0
    oy = (sc * np.sin(a) + sr * np.cos(a)) * ratio + (height - 1) / 2.0
    lon = x0 + (ox + 0.5) * EMIT_RES
    lat = y0 - (oy + 0.5) * EMIT_RES

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / EMIT_NAME)
    with h5py.File(path, "w", track_order=True) as f:
        dims = {name: _nc_dimension(f, name, size) for name, size in (
            ("downtrack", downtrack), ("crosstrack", crosstrack), ("bands", bands),
            ("ortho_y", height), ("ortho_x", width))}
        _nc_variable(f, "reflectance", source, [dims["downtrack"], dims["crosstrack"],
                                                dims["bands"]],
                     fill=EMIT_FILL, long_name="Surface Reflectance", units="unitless")
        sbp = f.create_group("sensor_band_parameters", track_order=True)
        _nc_variable(sbp, "wavelengths", wl, [dims["bands"]], fill=EMIT_FILL,
                     long_name="Wavelength Centers", units="nm")
        _nc_variable(sbp, "fwhm", fwhm, [dims["bands"]], fill=EMIT_FILL,
                     long_name="Full Width at Half Max", units="nm")
        _nc_variable(sbp, "good_wavelengths", good, [dims["bands"]],
                     long_name="Wavelengths where reflectance is useable: "
                               "1 = good data, 0 = bad data", units="unitless")
        loc = f.create_group("location", track_order=True)
        swath = [dims["downtrack"], dims["crosstrack"]]
        _nc_variable(loc, "lon", lon, swath, fill=EMIT_FILL, long_name="Longitude (WGS-84)",
                     units="degrees east")
        _nc_variable(loc, "lat", lat, swath, fill=EMIT_FILL, long_name="Latitude (WGS-84)",
                     units="degrees north")
        _nc_variable(loc, "elev", np.full((downtrack, crosstrack), 312.5), swath,
                     fill=EMIT_FILL, long_name="Surface Elevation", units="m")
        ortho = [dims["ortho_y"], dims["ortho_x"]]
        _nc_variable(loc, "glt_x", glt_x, ortho, fill=int(EMIT_FILL),
                     long_name="GLT Sample Lookup", units="pixel location")
        _nc_variable(loc, "glt_y", glt_y, ortho, fill=int(EMIT_FILL),
                     long_name="GLT Line Lookup", units="pixel location")
        g = f.attrs
        for key, value in {
            "ncei_template_version": "NCEI_NetCDF_Swath_Template_v2.0",
            "title": "EMIT L2A Estimated Surface Reflectance 60 m V001",
            "Conventions": "CF-1.63",
            "sensor": "EMIT (Earth Surface Mineral Dust Source Investigation)",
            "instrument": "EMIT", "platform": "ISS",
            "flight_line": "emit20220815t042838_o22270_s000",
            "time_coverage_start": "2022-08-15T04:28:38+0000",
            "time_coverage_end": "2022-08-15T04:28:50+0000",
            "product_version": "V001", "day_night_flag": "Day",
            "spatial_ref": CRS.from_epsg(4326).to_wkt(),
        }.items():
            g[key] = np.bytes_(value)
        g["geotransform"] = geotransform
        g["spatialResolution"] = np.float64(EMIT_RES)
        g["westernmost_longitude"] = np.float64(x0)
        g["easternmost_longitude"] = np.float64(x0 + width * EMIT_RES)
        g["northernmost_latitude"] = np.float64(y0)
        g["southernmost_latitude"] = np.float64(y0 - height * EMIT_RES)

    return SimpleNamespace(
        path=path, files=[path], cube=cube, wavelengths=wl.astype(np.float64),
        fwhm=fwhm.astype(np.float64), bad=good == 0, crs=CRS.from_epsg(4326),
        transform=Affine.from_gdal(*geotransform), shape=(height, width),
        glt_x=glt_x, glt_y=glt_y, source=source, lat=lat, lon=lon)


# ----------------------------------------------------------------------------- AVIRIS

AVIRIS_NAMES = {
    "classic": "f180601t01p00r06_corr_v1k1_img",
    "ng": "ang20190624t181015_rfl_v2v2_img",
    "3": "AV320230915t201611_L2A_OE_main_27577724_RFL_ORT",
}
AVIRIS_FILL = -9999.0


def _aviris_bands(flavour: str, bands):
    """Centre wavelengths and FWHM (nm), file order. Classic: four spectrometer blocks
    (A ~370-700, B ~650-1270, C ~1250-1870, D ~1840-2500 nm) in detector order, so the
    list falls back where two spectrometers meet; NG (5 nm) and AVIRIS-3 (7.5 nm):
    one monotonic list."""
    if flavour == "classic":
        n = bands or 28
        sizes = [n // 4 - 1, n // 4 + 1, n // 4, n - 3 * (n // 4)]
        blocks = [(370.0, 695.0), (655.0, 1265.0), (1255.0, 1870.0), (1845.0, 2496.0)]
        widths = (9.4, 9.8, 10.6, 11.4)
        wl = np.concatenate([np.linspace(lo, hi, k)
                             for (lo, hi), k in zip(blocks, sizes, strict=True)])
        fwhm = np.concatenate([np.full(k, w) for k, w in zip(sizes, widths, strict=True)])
    elif flavour == "ng":
        n = bands or 40
        wl, fwhm = np.linspace(377.2, 2500.4, n), np.full(n, 5.5)
    else:
        n = bands or 36
        wl, fwhm = np.linspace(390.7, 2507.9, n), np.full(n, 7.6)
    return np.round(wl, 4), np.round(fwhm, 4)


def write_aviris(folder, flavour: str = "classic", *, rows: int = 16, cols: int = 14,
                 bands=None, interleave: str = "bil", seed: int = 4) -> SimpleNamespace:
    """AVIRIS surface reflectance (NASA JPL), ENVI raw file + header as distributed by the
    AVIRIS/AVIRIS-NG/AVIRIS-3 data portals ("AVIRIS-NG Distribution Document",
    "AVIRIS-3 Distribution Document" readmes; ENVI "ENVI Header Format"):

    - ``flavour='classic'``: ``f180601t01p00r06_corr_v1k1_img`` (+ ``.hdr``), 224 bands
      in reality from four overlapping spectrometers in detector order, so the wavelength
      list is not monotonic where they meet;
    - ``'ng'``: ``ang20190624t181015_rfl_v2v2_img`` (+ ``.hdr``), monotonic, 5 nm;
    - ``'3'``: ``AV320230915t201611_L2A_OE_main_27577724_RFL_ORT`` (+ ``.hdr``), monotonic.

    float32 reflectance, ``interleave`` (BIL by default, as AVIRIS-NG rfl), byte order 0,
    ``data ignore value = -9999`` (a rotated-swath border and a few pixels),
    ``wavelength units = Nanometers``, ``wavelength``, ``fwhm``, ``bbl`` (0 for bands in
    1340-1450 and 1800-1960 nm), UTM ``map info`` (zone 11 North). ``path`` is the raw
    file; ``cube`` is NaN where -9999; ``bad`` = bbl == 0.
    Extra fields: ``hdr``, ``bbl``, ``data`` (the float32 array written).
    """
    if flavour not in AVIRIS_NAMES:
        raise ValueError(f"flavour must be one of {sorted(AVIRIS_NAMES)}, not {flavour!r}")
    rng = np.random.default_rng(seed)
    wl, fwhm = _aviris_bands(flavour, bands)
    bbl = np.where(((wl >= 1340) & (wl <= 1450)) | ((wl >= 1800) & (wl <= 1960)), 0, 1)
    data = _reflectance(wl, rows, cols, rng).astype(np.float32)
    valid = _swath_mask(rows, cols, angle_deg=-17.0)
    valid[rows // 2, cols // 3] = False
    valid[rows - 3, 2] = False
    data[:, ~valid] = AVIRIS_FILL
    cube = data.astype(np.float64)
    cube[:, ~valid] = np.nan

    pixel = {"classic": 15.0, "ng": 5.0, "3": 4.0}[flavour]
    crs = CRS.from_epsg(32611)
    transform = Affine(pixel, 0.0, 372480.0, 0.0, -pixel, 3770160.0)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = str(folder / AVIRIS_NAMES[flavour])
    hdr = write_envi_cube(path, data, {
        "description": "{AVIRIS surface reflectance}",
        "map info": _utm_map_info(transform, 11),
        "data ignore value": -9999,
        "wavelength units": "Nanometers",
        "wavelength": wl, "fwhm": fwhm, "bbl": bbl,
    }, interleave)
    return SimpleNamespace(
        path=path, files=[path, hdr], hdr=hdr, cube=cube, wavelengths=wl.astype(np.float64),
        fwhm=fwhm.astype(np.float64), bad=bbl == 0, crs=crs, transform=transform,
        shape=(rows, cols), bbl=bbl, data=data)


__all__ = ["write_aviris", "write_desis_l2a", "write_emit_l2a", "write_enmap_l2a",
           "write_envi_cube", "write_prisma_l2d", "ENVI_DTYPES"]


# ------------------------------------------------- checks shared by the product tests

TARGETS = (655.0, 553.0, 451.0)


def expected_rgb(cube: np.ndarray, nm: np.ndarray, good: np.ndarray, targets=TARGETS):
    """Per pixel: the good bands sorted by wavelength, equal wavelengths averaged, then
    np.interp (linear, edge value outside); NaN where any good band is NaN."""
    cube, nm = cube[good].astype(np.float64), nm[good]
    centres = np.unique(nm)
    merged = np.stack([cube[nm == c].mean(axis=0) for c in centres])
    flat = merged.reshape(len(centres), -1)
    out = np.empty((len(targets), flat.shape[1]))
    for i in range(flat.shape[1]):
        out[:, i] = np.interp(targets, centres, flat[:, i])
    out = out.reshape((len(targets),) + cube.shape[1:])
    out[:, np.isnan(cube).any(axis=0)] = np.nan
    return out


def snapshot(folder) -> dict:
    """Every file under ``folder`` with its size and modification time."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            stat = os.stat(os.path.join(root, name))
            out[os.path.join(root, name)] = (stat.st_size, stat.st_mtime_ns)
    return out


def assert_grid(path, product):
    with rasterio.open(path) as out:
        assert out.crs == product.crs
        assert out.transform.almost_equals(product.transform, precision=1e-9)
        assert (out.height, out.width) == tuple(product.shape)
