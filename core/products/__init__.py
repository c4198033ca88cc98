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

The modules: :mod:`.dispatch` (:func:`open_source`), :mod:`.gdal_source`,
:mod:`.metadata` (the metadata files' readers), :mod:`.hdf5` (PRISMA, EMIT).
"""

from .dispatch import is_hdf5, open_source, product_file
from .gdal_source import PRODUCT_HINT, GdalSource
from .hdf5 import EmitSource, PrismaSource

__all__ = ["PRODUCT_HINT", "EmitSource", "GdalSource", "PrismaSource", "is_hdf5",
           "open_source", "product_file"]
