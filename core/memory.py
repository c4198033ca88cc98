"""Returning freed heap memory to the system."""

import ctypes


def release_freed_memory() -> None:
    """Give the heap's freed pages back to the system (glibc's malloc_trim).

    glibc keeps freed pages otherwise: a checkpoint's second copy of the weights, or the
    buffers of one big tile, would stay in the process's footprint while the next
    allocations land elsewhere.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
