"""The HDF5/netCDF products, PRISMA L2D and EMIT L2A, through GDAL's multidimensional
API."""

from __future__ import annotations

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import Affine

from ..errors import UserInputError
from ..gdal_compat import call as gdal_call

# Output cells of an EMIT window gathered at a time: bounds the source block read for them.
_GLT_TILE = 256


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
