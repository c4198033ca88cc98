"""special:importproduct — a downloaded product as one standard GeoTIFF."""

from ..core import importproduct
from .base import SpecialAlgorithm, run_core
from .params import bad_bands, wavelength_arguments
from .styling import style_rgb_raster


class ImportProductAlgorithm(SpecialAlgorithm):
    ALG_ID = "importproduct"

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        result = run_core(
            feedback, importproduct.import_product,
            self.raster_path(parameters, "INPUT", context), output,
            bad_bands=bad_bands(self, parameters, context),
            **wavelength_arguments(self, parameters, context, targets=False))
        feedback.pushInfo(f"{result.product}: {result.bands} bands written, "
                          f"{len(result.bad)} of them marked bad (bbl = 0).")
        style_rgb_raster(context, output, "Imported product", result.rgb_bands)
        return {"OUTPUT": output}
