"""Where PyTorch runs: the device (CPU or a CUDA GPU), the CPU thread count and the guard
that keeps Triton out of the process. Every PyTorch stage starts with
:func:`resolve_device`."""

from __future__ import annotations

import numbers
import os
import sys
from typing import Optional

from .errors import UserInputError

# CPU threads for PyTorch (the plugin's setting, or a user's shell); unset or 0 = PyTorch's
# own default (all cores). The fallback when no thread count is passed explicitly.
ENV_THREADS = "SPECIAL_QGIS_THREADS"
# What DEVICE may say ('cuda:N' is taken too); the Processing parameter's options.
DEVICES = ("auto", "cpu", "cuda")

_default_threads: Optional[int] = None  # PyTorch's own count, before we changed it


def _threads_from_env() -> int:
    text = os.environ.get(ENV_THREADS, "").strip()
    try:
        return int(text or 0)
    except ValueError:
        raise UserInputError(f"{ENV_THREADS}='{text}' is not a whole number of CPU threads.") \
            from None


def apply_threads(threads: Optional[int] = None) -> None:
    """Set PyTorch's CPU thread count: ``threads`` when given, else SPECIAL_QGIS_THREADS
    (None, 0 or unset: PyTorch's own default, restored if an earlier run changed it).
    Called on the thread that does the work: OpenMP's thread count is a per-thread
    setting."""
    global _default_threads
    import torch

    if _default_threads is None:
        _default_threads = torch.get_num_threads()
    if threads is None:
        threads = _threads_from_env()
    elif not isinstance(threads, numbers.Integral) or isinstance(threads, bool):
        raise UserInputError(f"threads={threads!r} is not a whole number of CPU threads.")
    threads = int(threads)
    threads = threads if threads > 0 else _default_threads
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def hide_triton() -> None:
    """Tell PyTorch that Triton is absent. torch.optim imports torch._dynamo, which imports
    Triton when it is installed (the CUDA wheels pull it in), and Triton's own LLVM crashed
    desktop QGIS, which has Mesa's libLLVM loaded, on its first training step (seen under
    Xvfb). We never compile kernels, so nothing is lost."""
    if "triton" not in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]  # `import triton` now fails




def resolve_device(device: str = "auto", threads: Optional[int] = None):
    """'auto' → CUDA if PyTorch sees a GPU, else CPU. 'cuda' without one is an error.
    Every PyTorch stage starts here, so it also applies the CPU thread setting
    (``threads``, else SPECIAL_QGIS_THREADS; see :func:`apply_threads`)."""
    hide_triton()
    import torch

    apply_threads(threads)
    key = (device or "auto").strip().lower()
    if key == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserInputError(
                "DEVICE: 'cuda' was asked for, but PyTorch sees no CUDA GPU on this machine. "
                "Use DEVICE=auto (GPU when there is one) or DEVICE=cpu."
            )
        return torch.device(key)
    raise UserInputError(f"DEVICE: '{device}' is not one of {', '.join(DEVICES)}.")


def describe_device(device) -> str:
    """'cpu, 2 threads' or 'cuda:0 (NVIDIA H100 80GB HBM3)', for the log."""
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu, {threads} thread{'s' if threads != 1 else ''}"
