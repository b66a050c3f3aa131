"""Tab-completion helpers: cheap (no pyroute2, no supervisor), never raise, filter by state."""

from __future__ import annotations

import os


def container_names(parsed_args, prefix: str) -> list[str]:
    try:
        from lxctools.cli.driver import make_layout
        from lxctools.container import list_container_names
        from lxctools.runstate import read_runstate
        from lxctools.state import ALLOWED
        layout = make_layout(parsed_args)
        names = [n for n in list_container_names(layout) if n.startswith(prefix)]
        operation = getattr(parsed_args, "_name_states", None)
        if operation and operation in ALLOWED and operation != "any":
            allowed = ALLOWED[operation]
            names = [n for n in names if read_runstate(layout, n).state in allowed]
        return names
    except Exception:  # completion must never print a traceback into the user's shell
        return []


def directories(prefix: str) -> list[str]:
    try:
        base = os.path.dirname(prefix) or "."
        stem = os.path.basename(prefix)
        out = []
        for entry in os.scandir(base):
            if entry.is_dir() and entry.name.startswith(stem):
                path = os.path.join(os.path.dirname(prefix), entry.name)
                out.append(path + "/")
        return out
    except OSError:
        return []


def config_keys(prefix: str, **_: object) -> list[str]:
    try:
        from lxctools.config.keys import complete_keys
        return complete_keys(prefix)
    except Exception:
        return []
