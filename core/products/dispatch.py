"""Which source reads a path: the file behind a GDAL subdataset name, HDF5 or not."""

from __future__ import annotations

import os
import re

from .. import raster_io
from .gdal_source import PRODUCT_HINT, GdalSource
from .hdf5 import _open_hdf5

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


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
