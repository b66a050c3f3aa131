"""Which file descriptors a new process gets: no ctypes here, so a client may use it cheaply."""

from __future__ import annotations

import os

# Above any RLIMIT_NOFILE pyl meets; os.closerange uses close_range(2), so the span costs nothing.
_FD_LIMIT = 1 << 20


def close_fds_except(keep: set[int]) -> None:
    """Close every fd above stdio that is not in KEEP: one close_range per gap between them."""
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _FD_LIMIT)
