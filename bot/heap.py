"""Settling the heap once start-up is over: what the imports and the start built stays, the rest
goes back to the operating system.

Start-up allocates far more than an idle worker keeps (compiling the config's validators, the ORM's
mappers, the first queries). ``settle_startup_heap`` collects that garbage, freezes what survives
(full collections then scan only what was allocated since: no 70-100 ms pauses of the event loop),
and asks glibc to return the freed pages at the top of its heap and in its arenas (``malloc_trim``).
On a libc without ``malloc_trim`` (musl, macOS) that last step is skipped; nothing else changes."""

from __future__ import annotations

import ctypes
import functools
import gc
import sys
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the interpreter itself uses
    except (OSError, AttributeError):  # no glibc (musl): nothing to trim with
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the OS; True when that was possible (glibc)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def settle_startup_heap() -> None:
    """Collect, freeze what survived, release the rest. Process-wide, idempotent, cheap (a few ms):
    call it once everything is built, and again once the adapters have connected."""
    gc.collect()
    gc.freeze()
    release_free_memory()
