"""Giving freed system RAM back to the operating system.

glibc's allocator keeps freed blocks of up to 32 MB in its heap (its mmap threshold grows
after the first large free), so a process that frees many weight-sized tensors (quantizing
a model, dropping streamed copies) keeps a high RSS, and the next run grows it further.
``malloc_trim(0)`` returns the free pages.  A no-op where glibc is not the allocator.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_trim = None


def trim_host_memory() -> bool:
    """Return free heap pages to the system (glibc only); True if it ran."""
    global _trim
    if _trim is None:
        _trim = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _trim = libc.malloc_trim
                _trim.argtypes = [ctypes.c_size_t]
                _trim.restype = ctypes.c_int
            except (OSError, AttributeError):
                _trim = False
    if not _trim:
        return False
    _trim(0)
    return True
