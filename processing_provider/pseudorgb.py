"""special:pseudorgb — a 3-band pseudo-RGB interpolated from a hyperspectral raster."""

from ..core import pseudo_rgb
from .base import SpecialAlgorithm, run_core
from .params import bad_bands, wavelength_arguments
from .styling import style_rgb_raster


class PseudoRgbAlgorithm(SpecialAlgorithm):
    ALG_ID = "pseudorgb"

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        run_core(
            feedback, pseudo_rgb.write_pseudo_rgb,
            self.raster_path(parameters, "INPUT", context), output,
            bad_bands=bad_bands(self, parameters, context),
            **wavelength_arguments(self, parameters, context),
        )
        style_rgb_raster(context, output, "Pseudo-RGB")
        return {"OUTPUT": output}
