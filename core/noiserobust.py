"""Stage II of SPECIAL (special:noiserobust, special:applymodel): the names this module
has always offered. The code lives in the package :mod:`.stage2` (docs/method.md §2);
import from here or from there."""

from __future__ import annotations

# ruff: noqa: F401 (everything below is re-exported)
from .class_map import CONFIDENCE_NODATA
from .device import describe_device, resolve_device
from .errors import UserInputError
from .hsi_net import (
    DEFAULT_PREDICT_TILE,
    DEFAULT_WIDTH,
    BandStats,
    CubeReader,
    StageIIModel,
    build_network,
    predict_tiles,
    tiles,
)
from .progress import Progress, as_progress
from .stage2.algorithm import StageIIResult, apply_model, run
from .stage2.classifier import NoiseRobustClassifier
from .stage2.data import _STATS_SAMPLES, Chip, _subsample, band_stats, gather_spectra, pixel_index
from .stage2.predict import MODEL_EXTENSION, check_outputs, write_prediction
from .stage2.rasters import (
    _CONFIDENCE_BINS,
    CHIP,
    Inputs,
    LabelSummary,
    _open_inputs,
    _read_aux,
    build_cache,
    check_aligned,
    summarise_labels,
)
from .stage2.schedule import (
    _GMM_SAMPLES,
    _MIN_POOL,
    Schedule,
    gmm_split,
    pool_thresholds,
    sample_random_set,
    schedule_loss,
)
from .stage2.teacher import _ABSENT_CLASS_GAP, GaussianSoftTargets
from .stage2.trainer import _PCA_SAMPLES, _PRIOR_PER_CLASS, Trainer, augment, fit_chips, unaugment
