"""The source of any raster GDAL opens (GeoTIFF, ENVI with AVIRIS' headers, ...), read
through rasterio; EnMAP and DESIS band information from their metadata files."""

from __future__ import annotations

import contextlib
import os
from typing import Optional

import numpy as np
from rasterio.windows import Window

from .. import raster_io
from .. import wavelengths as wl_mod
from ..errors import UserInputError
from .metadata import _aviris_name, _envi_list, _floats, _parse_xml, _read_envi_header, _sibling

# EnMAP marks bands without data in its band statistics with this mean and a zero
# standard deviation (DLR's METADATA.XML, product/bandStatistics).
_ENMAP_EMPTY_MEAN = -1000000.0
PRODUCT_HINT = ("Choose a raster file such as GeoTIFF or ENVI (.img/.dat with its .hdr), "
                "or a product's image file (EnMAP/DESIS *-SPECTRAL_IMAGE, PRISMA .he5, "
                "EMIT .nc).")


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
