"""special:pseudorgb — a 3-band pseudo-RGB interpolated from a hyperspectral raster."""

from qgis.core import QgsProcessingParameterRasterDestination

from ..core import pseudo_rgb
from .common import (
    BAD_BANDS_HELP,
    INPUT_HELP,
    WAVELENGTHS_HELP,
    SpecialAlgorithm,
    add_bad_bands_parameter,
    add_input_parameter,
    add_wavelength_parameters,
    bad_bands,
    run_core,
    style_rgb_raster,
)


class PseudoRgbAlgorithm(SpecialAlgorithm):
    ALG_ID = "pseudorgb"
    TITLE = "Pseudo-RGB from hyperspectral raster"
    GROUP = "tools"
    INPUT = "INPUT"
    WAVELENGTHS = "WAVELENGTHS"
    TARGET_WAVELENGTHS = "TARGET_WAVELENGTHS"
    OUTPUT = "OUTPUT"

    def shortHelpString(self):  # noqa: N802
        return (
            "Renders a hyperspectral raster as a 3-band image by linear interpolation "
            "between the two good bands nearest each target wavelength, by wavelength "
            "whatever the band order (bands sharing a wavelength are averaged; a target "
            "outside the sensor's range takes the edge band). The values are interpolated "
            "radiance or "
            "reflectance, not stretched. This is how SPECIAL (Pang et al. 2025, arXiv "
            "2501.16222) shows a hyperspectral cube to CLIP; the layer is displayed "
            "stretched to its 2–98 % values.\n\n"
            + INPUT_HELP + WAVELENGTHS_HELP + BAD_BANDS_HELP +
            "\nOutput: Float32 GeoTIFF on the input's grid (CRS, geotransform, size). A "
            "pixel that is nodata in any good input band is nodata (NaN) in the output."
        )

    def initAlgorithm(self, config=None):  # noqa: N802
        add_input_parameter(self, self.INPUT)
        add_wavelength_parameters(self)
        add_bad_bands_parameter(self)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Pseudo-RGB"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        run_core(
            feedback, pseudo_rgb.write_pseudo_rgb,
            self.raster_path(parameters, self.INPUT, context), output,
            wavelengths_override=self.parameterAsString(parameters, self.WAVELENGTHS, context),
            targets=self.parameterAsString(parameters, self.TARGET_WAVELENGTHS, context),
            bad_bands=bad_bands(self, parameters, context),
        )
        style_rgb_raster(context, output, "Pseudo-RGB")
        return {self.OUTPUT: output}
