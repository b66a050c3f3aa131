"""pyl: LXC's command-line toolkit rebuilt in Python (the shared library behind every pyl-* tool)."""

__version__ = "0.1.0"
