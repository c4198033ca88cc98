"""What every algorithm shares: running core with QGIS feedback, turning core's
errors into Processing errors, and the provider's icon."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from qgis.core import QgsProcessingException, QgsProcessingFeedback
from qgis.PyQt.QtGui import QIcon

from ..core.errors import Cancelled, UserInputError
from ..core.progress import Progress

T = TypeVar("T")

ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "special_qgis", "icon.png")
if not os.path.exists(ICON_PATH):  # plugin ZIP layout: icon.png next to processing_provider/
    ICON_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "icon.png")


def icon() -> QIcon:
    return QIcon(ICON_PATH)


def progress_for(feedback: QgsProcessingFeedback) -> Progress:
    """A core Progress that drives the Processing progress bar and honours Cancel."""
    last_text = [None]

    def report(fraction: float, text: str) -> None:
        feedback.setProgress(100.0 * fraction)
        if text and text.split(":")[0] != last_text[0]:
            # One log line per stage, not per block.
            last_text[0] = text.split(":")[0]
            feedback.setProgressText(text)

    return Progress(report, feedback.isCanceled)


def run_core(feedback: QgsProcessingFeedback, func: Callable[..., T], *args, **kwargs) -> T:
    """Call ``func(*args, progress=..., **kwargs)``; user errors become Processing errors."""
    try:
        return func(*args, progress=progress_for(feedback), **kwargs)
    except UserInputError as exc:
        raise QgsProcessingException(str(exc)) from None
    except Cancelled:
        raise QgsProcessingException("Cancelled: no output was written.") from None
