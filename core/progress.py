"""Progress reporting and cancellation shared by every long ``core`` function.

QGIS feedback, a terminal progress bar and tests all drive ``core`` through the
same two callables, so ``core`` never needs to know who is watching.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

from .errors import Cancelled

ProgressCallback = Callable[[float, str], None]
CancelCheck = Callable[[], bool]
LogCallback = Callable[[str], None]


class Progress:
    """Reports a fraction in [0, 1] with a short text, and checks for cancellation.

    ``sub(start, end)`` gives a child whose 0..1 maps onto ``start..end`` of this one,
    so a pipeline can hand each stage its own share of the bar. ``log`` receives lines
    for the user's log (e.g. which bands were left out).
    """

    def __init__(
        self,
        callback: Optional[ProgressCallback] = None,
        cancelled: Optional[CancelCheck] = None,
        _start: float = 0.0,
        _end: float = 1.0,
        log: Optional[LogCallback] = None,
        _logged: Optional[set] = None,
    ) -> None:
        self._callback = callback
        self._cancelled = cancelled
        self._start = _start
        self._end = _end
        self._log = log
        # Shared with sub-progresses: a pipeline whose stages each open INPUT logs its
        # band report once.
        self._logged = set() if _logged is None else _logged

    def update(self, fraction: float, text: str = "") -> None:
        if self._callback is not None:
            fraction = min(max(fraction, 0.0), 1.0)
            self._callback(self._start + fraction * (self._end - self._start), text)

    def log_lines(self, lines) -> None:
        """Send ``lines`` (an iterable of str) to the log, if anyone listens; a line
        already sent by this progress or its family is not repeated."""
        if self._log is not None:
            for line in lines:
                if line not in self._logged:
                    self._logged.add(line)
                    self._log(line)

    def check(self) -> None:
        """Raise :class:`Cancelled` if the user asked to stop."""
        if self._cancelled is not None and self._cancelled():
            raise Cancelled("Cancelled by the user.")

    def sub(self, start: float, end: float) -> Progress:
        span = self._end - self._start
        return Progress(
            self._callback,
            self._cancelled,
            self._start + start * span,
            self._start + end * span,
            self._log,
            self._logged,
        )


def as_progress(progress: Optional[Progress]) -> Progress:
    return progress if progress is not None else Progress()
