"""Stage II of SPECIAL: a spectral–spatial network trained on noisy pseudo-labels with a
noise-robust schedule (docs/method.md §2), and the trained model applied to other scenes.

No ground truth enters anywhere: training uses the pseudo-labels and their confidence,
excluding only nodata pixels, pixels labelled 0 and pixels outside an optional MASK; the
model kept is the mean of the network's weights over the robust phase (no choice made
by any score), and the final map adds to it a spectral prior fitted on the most
confident pseudo-labels.

Scale: training runs on a cache of the scene held in memory (the whole scene when it
fits ``cache_bytes``, else random 256×256 chips read through windows), and each
iteration sees a few crops of it; prediction runs tile by tile with a halo. Memory is
bounded by the cache and the tile size, not by the scene.

Modules: :mod:`.schedule` (settings and the schedule's maths), :mod:`.teacher` (the
Gaussian soft targets), :mod:`.data` (chips in memory), :mod:`.rasters` (raster inputs
and the training cache), :mod:`.trainer`, :mod:`.predict`, :mod:`.algorithm` (``run``,
``apply_model``) and :mod:`.classifier` (:class:`NoiseRobustClassifier`, on arrays).
The model file is :class:`~..hsi_net.StageIIModel`.
"""

from ..hsi_net import StageIIModel
from .algorithm import StageIIResult, apply_model, run
from .classifier import NoiseRobustClassifier
from .rasters import Inputs
from .schedule import Schedule

__all__ = ["Inputs", "NoiseRobustClassifier", "Schedule", "StageIIModel", "StageIIResult",
           "apply_model", "run"]
