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

import contextlib
import os
import re
import xml.etree.ElementTree as ElementTree
from typing import Optional

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine
from rasterio.windows import Window

from . import raster_io
from . import wavelengths as wl_mod
from .errors import UserInputError
from .gdal_compat import call as gdal_call

# EnMAP marks bands without data in its band statistics with this mean and a zero
# standard deviation (DLR's METADATA.XML, product/bandStatistics).
_ENMAP_EMPTY_MEAN = -1000000.0
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Output cells of an EMIT window gathered at a time: bounds the source block read for them.
_GLT_TILE = 256
PRODUCT_HINT = ("Choose a raster file such as GeoTIFF or ENVI (.img/.dat with its .hdr), "
                "or a product's image file (EnMAP/DESIS *-SPECTRAL_IMAGE, PRISMA .he5, "
                "EMIT .nc).")


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


def open_source(path: str, param: str = "INPUT"):
    """The source that reads ``path``; :class:`UserInputError` when it cannot be read."""
    path = product_file(path)
    raster_io.check_input_file(path, param, PRODUCT_HINT)
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
        self.path = path
        self._stack = contextlib.ExitStack()
        self._src = src = self._stack.enter_context(
            raster_io.open_raster(path, param, PRODUCT_HINT))
        self.count, self.width, self.height = src.count, src.width, src.height
        self.crs, self.transform = src.crs, src.transform
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
            self._stack.close()
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
        self._stack.close()


def _aviris_name(name: str) -> Optional[str]:
    lower = name.lower()
    if lower.startswith("av3"):
        return "AVIRIS-3"
    if lower.startswith("ang"):
        return "AVIRIS-NG"
    if re.match(r"^f\d{6}t\d{2}", lower):
        return "AVIRIS"
    return None


# ------------------------------------------------------------------------- HDF5 products

def _open_hdf5(path: str, param: str):
    """PRISMA and EMIT through GDAL's multidimensional API (HDF5 and netCDF drivers) of
    the GDAL QGIS itself runs on. A pip h5py brings its own HDF5 library, which clashes
    with the one QGIS has already loaded (desktop QGIS fails with "Not a datatype")."""
    try:
        from osgeo import gdal
    except ImportError:
        raise UserInputError(f"{param}: '{path}' is an HDF5/netCDF product (PRISMA .he5 or "
                             f"EMIT .nc), which is read through GDAL's Python bindings "
                             f"(osgeo.gdal), not importable here. Run it inside QGIS, or "
                             f"install GDAL's Python bindings.") from None
    flag = getattr(gdal, "OF_MULTIDIM_RASTER", None)
    handle = gdal_call(gdal.OpenEx, path, flag) if flag is not None else None
    root = gdal_call(handle.GetRootGroup) if handle is not None else None
    if root is None:
        raise UserInputError(
            f"{param}: '{path}' is an HDF5/netCDF file that GDAL {gdal.__version__} cannot "
            f"open as a multidimensional dataset (GDAL 3.1 or newer with its HDF5 and netCDF "
            f"drivers is needed). Download the file again if it is damaged.")
    groups = root.GetGroupNames() or []
    arrays = root.GetMDArrayNames() or []
    if "HDFEOS" in groups:
        return PrismaSource(handle, root, path, param)
    if "reflectance" in arrays or "location" in groups:
        return EmitSource(handle, root, path, param)
    raise UserInputError(
        f"{param}: '{path}' is an HDF5/netCDF file but neither a PRISMA L2D product "
        f"(expected HDFEOS/SWATHS/PRS_L2D_HCO with VNIR_Cube and SWIR_Cube) nor an EMIT "
        f"L2A reflectance file (expected a 'reflectance' variable with the "
        f"'sensor_band_parameters' and 'location' groups).")


def _array(root, name: str):
    return gdal_call(root.OpenMDArrayFromFullname, name)


def _attr(root, name: str, path: str, what: str = "a PRISMA L2D product"):
    attribute = gdal_call(root.GetAttribute, name)
    if attribute is None:
        raise UserInputError(f"INPUT: '{path}' lacks the attribute '{name}' of {what}; "
                             f"download the product again.")
    return attribute.Read()


def _shape(array) -> tuple:
    return tuple(int(d.GetSize()) for d in array.GetDimensions())


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

    SWATH = "/HDFEOS/SWATHS/PRS_L2D_HCO"

    def __init__(self, handle, root, path: str, param: str = "INPUT") -> None:
        self.path, self._handle = path, handle
        swaths = gdal_call(root.OpenGroupFromFullname, "/HDFEOS/SWATHS")
        names = (swaths.GetGroupNames() or []) if swaths is not None else []
        if "PRS_L2D_HCO" not in names:
            raise UserInputError(
                f"{param}: '{path}' is a PRISMA file, but not an L2D product (its swaths: "
                f"{', '.join(names) or 'none'}; expected PRS_L2D_HCO). Only L2D is on a map "
                f"grid: order or process the scene to L2D.")
        self._cubes = [_array(root, f"{self.SWATH}/Data Fields/{name}")
                       for name in ("VNIR_Cube", "SWIR_Cube")]
        if any(c is None for c in self._cubes):
            raise UserInputError(f"{param}: '{path}' has no {self.SWATH[1:]}/Data Fields/"
                                 f"VNIR_Cube and SWIR_Cube; it is not a complete PRISMA L2D "
                                 f"product.")
        shapes = [_shape(c) for c in self._cubes]
        self.product = "PRISMA L2D"
        centres, widths, flags, self._ranges = [], [], [], []
        for name, shape in zip(("Vnir", "Swir"), shapes, strict=True):
            cw = np.atleast_1d(np.asarray(_attr(root, f"List_Cw_{name}", path), np.float64))
            fw = np.atleast_1d(np.asarray(_attr(root, f"List_Fwhm_{name}", path), np.float64))
            fl_attr = gdal_call(root.GetAttribute, f"List_Cw_{name}_Flags")
            fl = (np.atleast_1d(np.asarray(fl_attr.Read())) if fl_attr is not None
                  else np.ones(cw.size))
            if len(shape) != 3 or shape[1] != cw.size or fw.size != cw.size \
                    or fl.size != cw.size:
                raise UserInputError(
                    f"{param}: '{path}': the {name.upper()} cube has shape {shape} but "
                    f"List_Cw_{name} has {cw.size} wavelengths; the product is damaged.")
            centres.append(cw)
            widths.append(fw)
            flags.append(fl)
            lo = float(_attr(root, f"L2Scale{name}Min", path))
            hi = float(_attr(root, f"L2Scale{name}Max", path))
            self._ranges.append((lo, (hi - lo) / 65535.0))
        if shapes[0][0] != shapes[1][0] or shapes[0][2] != shapes[1][2]:
            raise UserInputError(f"{param}: '{path}': the VNIR and SWIR cubes differ in size.")
        self.height, self.width = shapes[0][0], shapes[0][2]
        self._sizes = [shapes[0][1], shapes[1][1]]
        self.count = sum(self._sizes)
        self.wavelengths = np.concatenate(centres)
        self.fwhm = np.concatenate(widths)
        flag = np.concatenate(flags)
        self.flags = {}
        for i in range(self.count):
            if self.wavelengths[i] <= 0:
                self.flags[i] = "unused band (centre wavelength 0 in the product)"
            elif flag[i] == 0:
                self.flags[i] = "flagged bad in the product (List_Cw_*_Flags)"
        epsg = int(_attr(root, "Epsg_Code", path))
        ul_x = float(_attr(root, "Product_ULcorner_easting", path))
        ul_y = float(_attr(root, "Product_ULcorner_northing", path))
        lr_x = float(_attr(root, "Product_LRcorner_easting", path))
        lr_y = float(_attr(root, "Product_LRcorner_northing", path))
        dx = (lr_x - ul_x) / (self.width - 1) if self.width > 1 else 30.0
        dy = (ul_y - lr_y) / (self.height - 1) if self.height > 1 else 30.0
        self.crs = CRS.from_epsg(epsg)
        self.transform = Affine(dx, 0.0, ul_x - dx / 2, 0.0, -dy, ul_y + dy / 2)

    def read(self, bands: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        bands = np.asarray(bands, dtype=np.int64)
        out = np.empty((len(bands), y1 - y0, x1 - x0), np.float32)
        empty = None
        for c, cube in enumerate(self._cubes):
            block = cube.ReadAsArray(array_start_idx=[y0, 0, x0],
                                     count=[y1 - y0, self._sizes[c], x1 - x0])
            if block is None:
                raise OSError(f"GDAL could not read rows {y0}-{y1} of '{self.path}'")
            zero = (block == 0).all(axis=1)                     # block: (rows, bands, cols)
            empty = zero if empty is None else empty & zero
            first = sum(self._sizes[:c])
            mine = np.flatnonzero((bands >= first) & (bands < first + self._sizes[c]))
            lo, step = self._ranges[c]
            for k in mine:
                out[k] = block[:, bands[k] - first, :] * np.float32(step) + np.float32(lo)
        out[:, empty] = np.nan
        return out

    def close(self) -> None:
        self._cubes = []
        self._handle = None


class EmitSource:
    """EMIT L2A reflectance (NASA JPL, netCDF4): ``reflectance`` (downtrack, crosstrack,
    bands) float32 with fill −9999; ``sensor_band_parameters/wavelengths``, ``fwhm`` and
    ``good_wavelengths`` (0 = bad); orthorectified on the map grid given by the global
    attributes ``geotransform`` (GDAL order) and ``spatial_ref`` (WKT) through the GLT
    ``location/glt_x``, ``glt_y`` (1-based source column and row; 0 = no source pixel,
    nodata)."""

    def __init__(self, handle, root, path: str, param: str = "INPUT") -> None:
        self.path, self._handle = path, handle
        self.product = "EMIT L2A"
        self._refl = _array(root, "/reflectance")
        if self._refl is None:
            raise UserInputError(f"{param}: '{path}' has no 'reflectance' variable; use the "
                                 f"EMIT L2A reflectance file (EMIT_L2A_RFL_*.nc).")
        glt_x, glt_y = _array(root, "/location/glt_x"), _array(root, "/location/glt_y")
        if glt_x is None or glt_y is None:
            raise UserInputError(
                f"{param}: '{path}' has no 'location' group with the GLT (glt_x, glt_y) "
                f"that puts the EMIT swath on a map grid. Use the complete EMIT_L2A_RFL_*.nc "
                f"file as downloaded (not a subset without its location group).")
        centres = _array(root, "/sensor_band_parameters/wavelengths")
        if centres is None:
            raise UserInputError(f"{param}: '{path}' has no sensor_band_parameters/wavelengths; "
                                 f"it is not a complete EMIT L2A reflectance file.")
        shape = _shape(self._refl)
        if len(shape) != 3:
            raise UserInputError(f"{param}: '{path}': 'reflectance' is not a 3-D cube.")
        self.count = shape[2]
        self.wavelengths = np.asarray(centres.ReadAsArray(), np.float64).ravel()
        widths = _array(root, "/sensor_band_parameters/fwhm")
        self.fwhm = (None if widths is None
                     else np.asarray(widths.ReadAsArray(), np.float64).ravel())
        if self.wavelengths.size != self.count:
            raise UserInputError(f"{param}: '{path}' lists {self.wavelengths.size} wavelengths "
                                 f"for {self.count} bands; the file is damaged.")
        self.flags = {}
        good = _array(root, "/sensor_band_parameters/good_wavelengths")
        if good is not None:
            self.flags = {int(i): "flagged bad in the product (good_wavelengths = 0)"
                          for i in np.flatnonzero(np.asarray(good.ReadAsArray()).ravel() == 0)}
        fill = self._refl.GetNoDataValueAsDouble()
        self._fill = -9999.0 if fill is None else float(fill)
        self._glt_x = np.asarray(glt_x.ReadAsArray(), np.int64)
        self._glt_y = np.asarray(glt_y.ReadAsArray(), np.int64)
        self.height, self.width = self._glt_x.shape
        what = "an EMIT L2A reflectance file (its map grid)"
        gt = np.asarray(_attr(root, "geotransform", path, what), np.float64).ravel()
        wkt = str(_attr(root, "spatial_ref", path, what))
        self.transform = Affine.from_gdal(*[float(v) for v in gt[:6]])
        self.crs = CRS.from_wkt(wkt)

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
                r0, r1, c0, c1 = int(sy.min()), int(sy.max()) + 1, int(sx.min()), int(sx.max()) + 1
                block = self._refl.ReadAsArray(array_start_idx=[r0, c0, 0],
                                               count=[r1 - r0, c1 - c0, self.count])
                if block is None:
                    raise OSError(f"GDAL could not read '{self.path}'")
                values = block[sy - r0, sx - c0][:, bands].T.astype(np.float32)
                values[values == np.float32(self._fill)] = np.nan
                target = out[:, ty - y0:ty1 - y0, tx - x0:tx1 - x0]
                target[:, valid] = values
        return out

    def close(self) -> None:
        self._refl = None
        self._handle = None
