"""Readers of hyperspectral files as users download them.

A *source* gives windowed reads of a cube in physical units (the product's scaling
applied, nodata as NaN) with its map grid, band centres, widths and the bands the
product itself flags as bad. One class per layout:

- :class:`GdalSource`: any raster GDAL reads (GeoTIFF, ENVI, ...), which covers AVIRIS
  classic, AVIRIS-NG and AVIRIS-3 (ENVI headers with ``wavelength``, ``fwhm``, ``bbl``,
  ``data ignore value``, ``data gain values``), and, with their metadata files, the DLR
  products EnMAP L1C/L2A (``*-SPECTRAL_IMAGE.TIF`` or ``.BSQ``/``.BIL`` +
  ``*-METADATA.XML``) and DESIS L1C/L2A (``*-SPECTRAL_IMAGE.tif`` + its ``.hdr`` +
  ``*-METADATA.xml``);
- :class:`PrismaSource`: PRISMA L2D (HDF5-EOS ``.he5``), VNIR and SWIR cubes merged;
- :class:`EmitSource`: EMIT L2A reflectance (netCDF4), orthorectified through its GLT.

Band order is always the file's (detector order, overlaps included); nothing here sorts.
Facts about each layout come from the products' public specifications and public
readers (EnMAP-Box's importers, NASA's emit-utils); see docs in each class.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
from typing import Optional

import numpy as np

from . import wavelengths as wl_mod
from .errors import UserInputError

# EnMAP marks bands without data in its band statistics with this mean and a zero
# standard deviation (DLR's METADATA.XML, product/bandStatistics).
_ENMAP_EMPTY_MEAN = -1000000.0
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Output cells of an EMIT window gathered at a time: bounds the source block read for them.
_GLT_TILE = 256


def product_file(path: str) -> str:
    """The file behind a GDAL subdataset name such as ``HDF5:"f.he5"://HDFEOS/...`` or
    ``NETCDF:"f.nc":reflectance`` (how QGIS names a layer added from such a file)."""
    match = re.match(r'^(?:HDF5|NETCDF):"?([^"]+?)"?(?::|$)', path or "")
    if match and os.path.isfile(match.group(1)):
        return match.group(1)
    return path


def is_hdf5(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == _HDF5_SIGNATURE
    except OSError:
        return False


def is_product_file(path: str) -> bool:
    """True for a file that QGIS cannot open as one raster layer but we read (PRISMA's
    ``.he5``, EMIT's ``.nc``)."""
    return os.path.isfile(path) and is_hdf5(path)


def open_source(path: str, param: str = "INPUT"):
    """The source that reads ``path``; :class:`UserInputError` when it cannot be read."""
    path = product_file(path)
    if not path or not os.path.exists(path):
        raise UserInputError(f"{param}: the file '{path}' does not exist.")
    if os.path.isdir(path):
        raise UserInputError(f"{param}: '{path}' is a folder, not a raster file. Choose the "
                             f"product's image file (e.g. *-SPECTRAL_IMAGE.TIF, *.he5, *.nc).")
    if is_hdf5(path):
        return _open_hdf5(path, param)
    return GdalSource(path, param)


# ------------------------------------------------------------------------- helpers

def _floats(values, what: str, path: str) -> np.ndarray:
    try:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise UserInputError(f"INPUT: {what} in '{path}' are not numbers.") from None


def _envi_list(text: Optional[str]) -> Optional[list[str]]:
    """'{1, 2, 3}' → ['1', '2', '3']."""
    if text is None:
        return None
    items = [t for t in re.split(r"[,\s{}]+", str(text)) if t]
    return items or None


def _read_envi_header(path: str) -> dict:
    """Key → value of an ENVI header (values in braces joined across lines)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    items = {}
    for match in re.finditer(r"^\s*([^=\n]+?)\s*=\s*(\{[^}]*\}|[^\n]*)", text, re.M):
        items[match.group(1).strip().lower()] = match.group(2).strip()
    return items


def _sibling(path: str, old: str, candidates: tuple[str, ...]) -> tuple[Optional[str], str]:
    """The first existing file named as ``path`` with the suffix from ``old`` replaced by
    one of ``candidates``; also the name expected (for the error when none exists)."""
    folder, name = os.path.split(path)
    stem = name[:name.upper().rfind(old.upper())]
    for suffix in candidates:
        full = os.path.join(folder, stem + suffix)
        if os.path.isfile(full):
            return full, full
    return None, os.path.join(folder, stem + candidates[0])


def _parse_xml(path: str):
    try:
        return ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError) as exc:
        raise UserInputError(f"INPUT: the product's metadata file '{path}' cannot be read "
                             f"({exc}). Download the product again.") from None


# ------------------------------------------------------------------------- GDAL

class GdalSource:
    """Any raster GDAL opens, read through rasterio; for EnMAP and DESIS products the band
    information comes from the product's metadata files beside the image."""

    def __init__(self, path: str, param: str = "INPUT") -> None:
        import rasterio

        self.path = path
        try:
            self._src = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            raise UserInputError(
                f"{param}: '{path}' is not a raster that GDAL can read ({exc}). Choose a raster "
                f"file such as GeoTIFF or ENVI (.img/.dat with its .hdr), or a product's image "
                f"file (EnMAP/DESIS *-SPECTRAL_IMAGE, PRISMA .he5, EMIT .nc).") from None
        src = self._src
        self.count, self.width, self.height = src.count, src.width, src.height
        self.crs, self.transform = src.crs, src.transform
        self.dtype = src.dtypes[0]
        self.files = [path] + [f for f in (src.files or []) if f != path]
        self.nodata = [None if v is None else float(v) for v in src.nodatavals]
        self.scales = np.asarray(src.scales, dtype=np.float64)
        self.offsets = np.asarray(src.offsets, dtype=np.float64)
        self.wavelengths: Optional[np.ndarray] = None
        self.fwhm: Optional[np.ndarray] = None
        self.flags: dict[int, str] = {}
        self.product = "ENVI" if src.driver == "ENVI" else src.driver
        name = os.path.basename(path).upper()
        try:
            if name.startswith("ENMAP") and "-SPECTRAL_IMAGE" in name:
                self._enmap()
            elif name.startswith("DESIS") and "-SPECTRAL_IMAGE" in name:
                self._desis()
            else:
                self._generic()
        except Exception:
            src.close()
            raise

    # -- metadata
    def _generic(self) -> None:
        src = self._src
        self.wavelengths = wl_mod.read_open(src, self.path)
        envi = {k.lower(): v for k, v in src.tags(ns="ENVI").items()}
        per_band = [{k.lower(): v for k, v in src.tags(b).items()}
                    for b in range(1, self.count + 1)]
        fwhm = [t.get("fwhm") for t in per_band]
        if all(v is not None for v in fwhm):
            self.fwhm = _floats(fwhm, "FWHM values", self.path)
        elif _envi_list(envi.get("fwhm")):
            self.fwhm = _floats(_envi_list(envi["fwhm"]), "FWHM values", self.path)
        if self.fwhm is not None and self.fwhm.size != self.count:
            self.fwhm = None
        if self.fwhm is not None and self.wavelengths is not None:
            units = envi.get("wavelength_units") or per_band[0].get("wavelength_units")
            self.fwhm = wl_mod.to_nm(self.fwhm, units, source=f"FWHM of '{self.path}'")
        band_bbl = {b: t["bbl"] for b, t in enumerate(per_band) if "bbl" in t}
        if band_bbl:  # GDAL band metadata (e.g. written by EnMAP-Box or by importproduct)
            values = _floats(list(band_bbl.values()), "bbl values", self.path)
            self.flags = {b: "flagged bad in the band metadata (bbl = 0)"
                          for b, v in zip(band_bbl, values, strict=True) if v == 0}
        elif _envi_list(envi.get("bbl")):
            values = _floats(_envi_list(envi["bbl"]), "bbl values", self.path)
            if values.size != self.count:
                raise UserInputError(
                    f"INPUT: the ENVI header's bad-band list (bbl) of '{self.path}' has "
                    f"{values.size} values but the raster has {self.count} bands. Correct "
                    f"the header, or remove 'bbl' and give bad bands with BAD_BANDS.")
            self.flags = {int(i): "flagged bad in the ENVI header (bbl = 0)"
                          for i in np.flatnonzero(values == 0)}
        if self.product == "ENVI":
            self.product = _aviris_name(os.path.basename(self.path)) or "ENVI"

    def _metadata_file(self, mission: str, suffixes: tuple[str, ...]) -> str:
        """The product's metadata XML beside the image (an error naming it if absent)."""
        xml_path, expected = _sibling(self.path, "-SPECTRAL_IMAGE", suffixes)
        if xml_path is None:
            raise UserInputError(
                f"INPUT: '{os.path.basename(self.path)}' is a {mission} image, but its "
                f"metadata file '{expected}' is not beside it. Keep the product's files "
                f"together in one folder as delivered (the metadata file holds the band "
                f"wavelengths and gains).")
        self.files.append(xml_path)
        return xml_path

    def _bands_from_xml(self, bands: list, xml_path: str, centre: str, width: str, gain: str,
                        offset: str) -> None:
        """Centres, widths, gains and offsets from one XML element per band."""
        if len(bands) != self.count:
            raise UserInputError(
                f"INPUT: '{xml_path}' describes {len(bands)} bands but the image "
                f"'{self.path}' has {self.count}. The files do not belong together: "
                f"download the product again.")

        def values(tag):
            return _floats([b.findtext(tag) for b in bands], f"<{tag}> values", xml_path)

        self.wavelengths, self.fwhm = values(centre), values(width)
        self.scales, self.offsets = values(gain), values(offset)

    def _enmap(self) -> None:
        xml_path = self._metadata_file("EnMAP", ("-METADATA.XML", "-METADATA.xml"))
        root = _parse_xml(xml_path)
        bands = root.findall("specific/bandCharacterisation/bandID")
        if not bands:
            raise UserInputError(
                f"INPUT: '{xml_path}' has no specific/bandCharacterisation/bandID elements; "
                f"it is not the METADATA.XML of an EnMAP L1C/L2A product.")
        self._bands_from_xml(bands, xml_path, "wavelengthCenterOfBand", "FWHMOfBand",
                             "GainOfBand", "OffsetOfBand")
        stats = root.findall("product/bandStatistics/bandID")
        if len(stats) == self.count:
            for i, band in enumerate(stats):
                try:
                    mean = float(band.findtext("mean"))
                    std = float(band.findtext("stdDeviation"))
                except (TypeError, ValueError):
                    continue
                if mean == _ENMAP_EMPTY_MEAN and std == 0:
                    self.flags[i] = "no data in this band (the METADATA.XML's band statistics)"
        level = "L2A" if "L2A" in os.path.basename(self.path).upper() else "L1C"
        self.product = f"EnMAP {level}"

    def _desis(self) -> None:
        """Band centres, widths, gains and offsets from the METADATA.xml's
        ``specific/bandCharacterisation/band`` elements (DESIS product specification,
        PAV-DLR-ICD-003), else from the ENVI-style ``-SPECTRAL_IMAGE.hdr`` beside the
        image."""
        xml_path = self._metadata_file("DESIS", ("-METADATA.xml", "-METADATA.XML"))
        level = "L2A" if "-L2A-" in os.path.basename(self.path).upper() else "L1C"
        self.product = f"DESIS {level}"
        bands = _parse_xml(xml_path).findall("specific/bandCharacterisation/band")
        if bands:
            self._bands_from_xml(bands, xml_path, "wavelengthCenterOfBand",
                                 "wavelengthWidthOfBand", "gainOfBand", "offsetOfBand")
            return
        hdr_path, hdr_expected = _sibling(self.path, "-SPECTRAL_IMAGE",
                                          ("-SPECTRAL_IMAGE.hdr", "-SPECTRAL_IMAGE.HDR"))
        if hdr_path is None:
            raise UserInputError(
                f"INPUT: neither '{xml_path}' nor a header '{hdr_expected}' beside it gives "
                f"the DESIS band wavelengths and gains. Keep the product's files together.")
        self.files.append(hdr_path)
        header = _read_envi_header(hdr_path)
        units = header.get("wavelength units")
        for key in ("wavelength", "fwhm", "data gain values", "data offset values"):
            items = _envi_list(header.get(key))
            if items is None and key == "data offset values":
                self.offsets = np.zeros(self.count)
                continue
            if items is None or len(items) != self.count:
                raise UserInputError(
                    f"INPUT: '{hdr_path}' lists {len(items or [])} '{key}' values but the "
                    f"image has {self.count} bands: the files do not belong together.")
            numbers = _floats(items, f"'{key}'", hdr_path)
            if key == "wavelength":
                self.wavelengths = wl_mod.to_nm(numbers, units, source=hdr_path)
            elif key == "fwhm":
                self.fwhm = wl_mod.to_nm(numbers, units, source=hdr_path)
            elif key == "data gain values":
                self.scales = numbers
            else:
                self.offsets = numbers

    # -- data
    def read(self, bands: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """(len(bands), rows, cols) float32 in physical units, NaN where nodata."""
        from rasterio.windows import Window

        bands = np.asarray(bands, dtype=np.int64)
        out = self._src.read([int(b) + 1 for b in bands],
                             window=Window(x0, y0, x1 - x0, y1 - y0), out_dtype="float32")
        for k, b in enumerate(bands):
            nodata = self.nodata[b]
            if nodata is not None and not np.isnan(nodata):
                out[k][out[k] == np.float32(nodata)] = np.nan
            if self.scales[b] != 1.0 or self.offsets[b] != 0.0:
                out[k] *= np.float32(self.scales[b])
                out[k] += np.float32(self.offsets[b])
        return out

    def close(self) -> None:
        self._src.close()


def _aviris_name(name: str) -> Optional[str]:
    lower = name.lower()
    if lower.startswith("av3") or lower.startswith("av320"):
        return "AVIRIS-3"
    if lower.startswith("ang"):
        return "AVIRIS-NG"
    if re.match(r"^f\d{6}t\d{2}", lower):
        return "AVIRIS"
    return None


# ------------------------------------------------------------------------- HDF5 products

def _open_hdf5(path: str, param: str):
    try:
        import h5py
    except ImportError:
        from .dependencies import HDF5, message

        raise UserInputError(f"{param}: '{path}' is an HDF5/netCDF product (PRISMA .he5 or "
                             f"EMIT .nc), which needs the Python package h5py. "
                             f"{message(list(HDF5))}") from None

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise UserInputError(f"{param}: '{path}' is an HDF5 file that cannot be read ({exc}). "
                             f"Download it again.") from None
    try:
        if "HDFEOS/SWATHS" in handle:
            return PrismaSource(handle, path, param)
        if "reflectance" in handle or "location" in handle:
            return EmitSource(handle, path, param)
        raise UserInputError(
            f"{param}: '{path}' is an HDF5/netCDF file but neither a PRISMA L2D product "
            f"(expected HDFEOS/SWATHS/PRS_L2D_HCO with VNIR_Cube and SWIR_Cube) nor an EMIT "
            f"L2A reflectance file (expected a 'reflectance' variable with the "
            f"'sensor_band_parameters' and 'location' groups).")
    except BaseException:
        handle.close()
        raise


def _attr(handle, name: str, path: str):
    if name not in handle.attrs:
        raise UserInputError(f"INPUT: '{path}' lacks the attribute '{name}' of a PRISMA L2D "
                             f"product; download the product again.")
    value = handle.attrs[name]
    return value.decode() if isinstance(value, bytes) else value


class PrismaSource:
    """PRISMA L2D (ASI, HDF5-EOS): ``HDFEOS/SWATHS/PRS_L2D_HCO/Data Fields/VNIR_Cube`` and
    ``SWIR_Cube``, each (rows, bands, cols) uint16, merged as VNIR bands then SWIR bands in
    their stored order (descending wavelength, overlap kept). Band centres, widths and
    flags from the root attributes ``List_Cw_Vnir``/``List_Fwhm_Vnir``/
    ``List_Cw_Vnir_Flags`` (and Swir); a zero centre or flag marks an unused band.
    Reflectance = ``L2ScaleVnirMin`` + DN × (``L2ScaleVnirMax`` − min) / 65535. The map
    grid: ``Epsg_Code`` and the centres of the corner pixels ``Product_ULcorner_easting``/
    ``_northing`` and ``Product_LRcorner_*``. A pixel whose DN is 0 in every band of both
    cubes is nodata (the grid's background)."""

    SWATH = "HDFEOS/SWATHS/PRS_L2D_HCO"

    def __init__(self, handle, path: str, param: str = "INPUT") -> None:
        from rasterio.crs import CRS
        from rasterio.transform import Affine

        self.path, self._h = path, handle
        swaths = list(handle["HDFEOS/SWATHS"].keys())
        if "PRS_L2D_HCO" not in swaths:
            other = ", ".join(swaths) or "none"
            raise UserInputError(
                f"{param}: '{path}' is a PRISMA file, but not an L2D product (its swaths: "
                f"{other}; expected PRS_L2D_HCO). Only L2D is on a map grid: order or "
                f"process the scene to L2D.")
        fields = handle[self.SWATH].get("Data Fields") or handle[self.SWATH].get("Data_Fields")
        if fields is None or "VNIR_Cube" not in fields or "SWIR_Cube" not in fields:
            raise UserInputError(f"{param}: '{path}' has no {self.SWATH}/Data Fields/VNIR_Cube "
                                 f"and SWIR_Cube; it is not a complete PRISMA L2D product.")
        self._cubes = [fields["VNIR_Cube"], fields["SWIR_Cube"]]
        self.product = "PRISMA L2D"
        self.files = [path]
        centres, widths, flags, self._ranges = [], [], [], []
        for name, cube in zip(("Vnir", "Swir"), self._cubes, strict=True):
            cw = np.asarray(_attr(handle, f"List_Cw_{name}", path), dtype=np.float64).ravel()
            fw = np.asarray(_attr(handle, f"List_Fwhm_{name}", path), dtype=np.float64).ravel()
            fl_name = f"List_Cw_{name}_Flags"
            fl = (np.asarray(handle.attrs[fl_name]).ravel() if fl_name in handle.attrs
                  else np.ones(cw.size))
            if cube.ndim != 3 or cube.shape[1] != cw.size or fw.size != cw.size \
                    or fl.size != cw.size:
                raise UserInputError(
                    f"{param}: '{path}': the {name.upper()} cube has shape {cube.shape} but "
                    f"List_Cw_{name} has {cw.size} wavelengths; the product is damaged.")
            centres.append(cw)
            widths.append(fw)
            flags.append(fl)
            lo = float(_attr(handle, f"L2Scale{name}Min", path))
            hi = float(_attr(handle, f"L2Scale{name}Max", path))
            self._ranges.append((lo, (hi - lo) / 65535.0))
        if self._cubes[0].shape[0] != self._cubes[1].shape[0] or \
                self._cubes[0].shape[2] != self._cubes[1].shape[2]:
            raise UserInputError(f"{param}: '{path}': the VNIR and SWIR cubes differ in size.")
        self.height, self.width = self._cubes[0].shape[0], self._cubes[0].shape[2]
        self._nv = centres[0].size
        self.count = self._nv + centres[1].size
        self.wavelengths = np.concatenate(centres)
        self.fwhm = np.concatenate(widths)
        flag = np.concatenate(flags)
        self.flags = {}
        for i in range(self.count):
            if self.wavelengths[i] <= 0:
                self.flags[i] = "unused band (centre wavelength 0 in the product)"
            elif flag[i] == 0:
                self.flags[i] = "flagged bad in the product (List_Cw_*_Flags)"
        epsg = int(_attr(handle, "Epsg_Code", path))
        ul_x = float(_attr(handle, "Product_ULcorner_easting", path))
        ul_y = float(_attr(handle, "Product_ULcorner_northing", path))
        lr_x = float(_attr(handle, "Product_LRcorner_easting", path))
        lr_y = float(_attr(handle, "Product_LRcorner_northing", path))
        dx = (lr_x - ul_x) / max(1, self.width - 1) if self.width > 1 else 30.0
        dy = (ul_y - lr_y) / max(1, self.height - 1) if self.height > 1 else 30.0
        self.crs = CRS.from_epsg(epsg)
        self.transform = Affine(dx, 0.0, ul_x - dx / 2, 0.0, -dy, ul_y + dy / 2)
        self.dtype = "float32"

    def read(self, bands: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        bands = np.asarray(bands, dtype=np.int64)
        out = np.empty((len(bands), y1 - y0, x1 - x0), np.float32)
        empty = None
        for c, cube in enumerate(self._cubes):
            block = cube[y0:y1, :, x0:x1]                       # (rows, bands, cols) DN
            zero = (block == 0).all(axis=1)
            empty = zero if empty is None else empty & zero
            first = 0 if c == 0 else self._nv
            mine = np.flatnonzero((bands >= first) & (bands < first + block.shape[1]))
            lo, step = self._ranges[c]
            for k in mine:
                out[k] = block[:, bands[k] - first, :] * np.float32(step) + np.float32(lo)
        out[:, empty] = np.nan
        return out

    def close(self) -> None:
        self._h.close()


class EmitSource:
    """EMIT L2A reflectance (NASA JPL, netCDF4): ``reflectance`` (downtrack, crosstrack,
    bands) float32 with fill −9999; ``sensor_band_parameters/wavelengths``, ``fwhm`` and
    ``good_wavelengths`` (0 = bad); orthorectified on the map grid given by the global
    attributes ``geotransform`` (GDAL order) and ``spatial_ref`` (WKT) through the GLT
    ``location/glt_x``, ``glt_y`` (1-based source column and row; 0 = no source pixel,
    nodata)."""

    def __init__(self, handle, path: str, param: str = "INPUT") -> None:
        from rasterio.crs import CRS
        from rasterio.transform import Affine

        self.path, self._h = path, handle
        self.product = "EMIT L2A"
        self.files = [path]
        if "reflectance" not in handle:
            raise UserInputError(f"{param}: '{path}' has no 'reflectance' variable; use the "
                                 f"EMIT L2A reflectance file (EMIT_L2A_RFL_*.nc).")
        loc = handle.get("location")
        if loc is None or "glt_x" not in loc or "glt_y" not in loc:
            raise UserInputError(
                f"{param}: '{path}' has no 'location' group with the GLT (glt_x, glt_y) "
                f"that puts the EMIT swath on a map grid. Use the complete EMIT_L2A_RFL_*.nc "
                f"file as downloaded (not a subset without its location group).")
        band_params = handle.get("sensor_band_parameters")
        if band_params is None or "wavelengths" not in band_params:
            raise UserInputError(f"{param}: '{path}' has no sensor_band_parameters/wavelengths; "
                                 f"it is not a complete EMIT L2A reflectance file.")
        self._refl = handle["reflectance"]
        if self._refl.ndim != 3:
            raise UserInputError(f"{param}: '{path}': 'reflectance' is not a 3-D cube.")
        self.count = self._refl.shape[2]
        self.wavelengths = np.asarray(band_params["wavelengths"][()], np.float64)
        self.fwhm = (np.asarray(band_params["fwhm"][()], np.float64)
                     if "fwhm" in band_params else None)
        if self.wavelengths.size != self.count:
            raise UserInputError(f"{param}: '{path}' lists {self.wavelengths.size} wavelengths "
                                 f"for {self.count} bands; the file is damaged.")
        self.flags = {}
        if "good_wavelengths" in band_params:
            good = np.asarray(band_params["good_wavelengths"][()]).ravel()
            self.flags = {int(i): "flagged bad in the product (good_wavelengths = 0)"
                          for i in np.flatnonzero(good == 0)}
        fill = self._refl.attrs.get("_FillValue", -9999.0)
        self._fill = float(np.asarray(fill).ravel()[0])
        self._glt_x = np.asarray(loc["glt_x"][()], np.int64)
        self._glt_y = np.asarray(loc["glt_y"][()], np.int64)
        self.height, self.width = self._glt_x.shape
        gt = handle.attrs.get("geotransform")
        wkt = handle.attrs.get("spatial_ref")
        if gt is None or wkt is None:
            raise UserInputError(f"{param}: '{path}' lacks the global attributes "
                                 f"'geotransform' and 'spatial_ref' of its map grid.")
        wkt = wkt.decode() if isinstance(wkt, bytes) else str(wkt)
        self.transform = Affine.from_gdal(*[float(v) for v in np.asarray(gt).ravel()[:6]])
        self.crs = CRS.from_wkt(wkt)
        self.dtype = "float32"

    def read(self, bands: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        bands = np.asarray(bands, dtype=np.int64)
        out = np.full((len(bands), y1 - y0, x1 - x0), np.nan, np.float32)
        for ty in range(y0, y1, _GLT_TILE):
            for tx in range(x0, x1, _GLT_TILE):
                ty1, tx1 = min(ty + _GLT_TILE, y1), min(tx + _GLT_TILE, x1)
                gx = self._glt_x[ty:ty1, tx:tx1]
                gy = self._glt_y[ty:ty1, tx:tx1]
                valid = (gx > 0) & (gy > 0)
                if not valid.any():
                    continue
                sy, sx = gy[valid] - 1, gx[valid] - 1
                r0, r1, c0, c1 = sy.min(), sy.max() + 1, sx.min(), sx.max() + 1
                block = self._refl[r0:r1, c0:c1, :]                   # (rows, cols, bands)
                values = block[sy - r0, sx - c0][:, bands].T.astype(np.float32)
                values[values == np.float32(self._fill)] = np.nan
                target = out[:, ty - y0:ty1 - y0, tx - x0:tx1 - x0]
                target[:, valid] = values
        return out

    def close(self) -> None:
        self._h.close()
