# PYTHON_ARGCOMPLETE_OK
"""Console-script entry points: one function per pyl-* tool, all through the one driver."""

from __future__ import annotations

import sys

from lxctools.cli.driver import TOOLS, multicall, run_tool


def _entry(tool: str):
    def main() -> None:
        sys.exit(run_tool(tool))
    main.__name__ = tool.replace("-", "_")
    return main


def pyl() -> None:
    sys.exit(multicall())


for _tool in TOOLS:
    globals()[_tool.replace("-", "_")] = _entry(_tool)
