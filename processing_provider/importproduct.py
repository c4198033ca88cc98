"""special:importproduct — a downloaded product as one standard GeoTIFF."""

from qgis.core import QgsProcessingParameterRasterDestination

from ..core import importproduct
from .common import (
    BAD_BANDS_HELP,
    INPUT_HELP,
    SpecialAlgorithm,
    add_bad_bands_parameter,
    add_input_parameter,
    add_wavelength_parameters,
    bad_bands,
    run_core,
    style_rgb_raster,
)


class ImportProductAlgorithm(SpecialAlgorithm):
    ALG_ID = "importproduct"
    TITLE = "Import hyperspectral product"
    GROUP = "tools"

    def shortHelpString(self):  # noqa: N802
        return (
            "Writes a hyperspectral product as downloaded (EnMAP or DESIS L1C/L2A, PRISMA "
            "L2D, EMIT L2A reflectance, AVIRIS) as one Float32 GeoTIFF that any QGIS or GDAL "
            "tool understands: the cube scaled to the product's physical units (e.g. "
            "reflectance 0–1), every band in the product's order with the standard band "
            "metadata wavelength and wavelength_units (nm), fwhm and bbl (0 = bad band), "
            "nodata as NaN, on the product's map grid (EMIT: orthorectified through its "
            "GLT). Any other raster the algorithms read is written the same way. The "
            "output is shown as pseudo-RGB (the good bands nearest 655, 553 and 451 nm). "
            "The product is never modified. The other algorithms read the same products "
            "directly; importing once saves reading a compressed product again for each "
            "step of the SPECIAL pipeline (Pang et al. 2025, arXiv 2501.16222).\n\n"
            + INPUT_HELP + BAD_BANDS_HELP +
            "<b>Band wavelengths</b> (advanced): replaces the product's band centres (nm, "
            "one per band).\n"
            "\n<b>What is read</b>: EnMAP: the SPECTRAL_IMAGE (GeoTIFF or ENVI BSQ/BIL) and "
            "METADATA.XML (band centres, FWHM, gain and offset, empty bands). DESIS: the "
            "SPECTRAL_IMAGE and METADATA.xml (centres, FWHM, gains, offsets; else from the "
            "image's .hdr). "
            "PRISMA L2D: VNIR and SWIR cubes merged, centres, FWHM and flags, the L2Scale "
            "min/max, the grid from the corner coordinates and EPSG code. EMIT: "
            "reflectance, wavelengths, FWHM, good_wavelengths, the GLT and geotransform. "
            "AVIRIS: the ENVI header's wavelength, fwhm, bbl and data ignore value."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_input_parameter(self, "INPUT", "Product file or hyperspectral raster")
        add_bad_bands_parameter(self)
        add_wavelength_parameters(self, advanced=True, targets=False)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Imported raster"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        result = run_core(
            feedback, importproduct.import_product,
            self.raster_path(parameters, "INPUT", context), output,
            bad_bands=bad_bands(self, parameters, context),
            wavelengths_override=self.parameterAsString(parameters, "WAVELENGTHS", context))
        feedback.pushInfo(f"{result.product}: {result.bands} bands written, "
                          f"{len(result.bad)} of them marked bad (bbl = 0).")
        style_rgb_raster(context, output, "Imported product", result.rgb_bands)
        return {"OUTPUT": output}
