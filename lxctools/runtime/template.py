"""Run a template with LXC's protocol (--path --name --rootfs, then the user's args).

Templates written for LXC work unchanged. A template fails -> TemplateError; the caller
removes the half-made container.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lxctools.errors import NotFoundError, PylError
from lxctools.paths import templates_dirs


class TemplateError(PylError):
    pass


def resolve_template(template: str) -> Path:
    """`-t busybox` -> templates/busybox (checkout or install prefix), `-t /path` -> that file."""
    if "/" in template:
        path = Path(template)
        if not path.is_file():
            raise NotFoundError(f"template '{template}' does not exist")
    else:
        for folder in templates_dirs():
            for candidate in (folder / template, folder / f"pyl-{template}", folder / f"lxc-{template}"):
                if candidate.is_file():
                    path = candidate
                    break
            else:
                continue
            break
        else:
            lxc_path = Path("/usr/share/lxc/templates") / f"lxc-{template}"
            if lxc_path.is_file():
                path = lxc_path
            else:
                names = ", ".join(sorted(available_templates())) or "none"
                raise NotFoundError(f"unknown template '{template}' (available: {names})")
    if not os.access(path, os.X_OK):
        raise NotFoundError(f"template '{path}' is not executable")
    return path.resolve()


def available_templates() -> list[str]:
    names: set[str] = set()
    for folder in templates_dirs():
        if folder.is_dir():
            names.update(p.name for p in folder.iterdir() if p.is_file() and os.access(p, os.X_OK))
    return sorted(names)


def run_template(template: Path, *, path: Path, name: str, rootfs: Path, args: list[str],
                 quiet: bool) -> None:
    argv = [str(template), f"--path={path}", f"--name={name}", f"--rootfs={rootfs}", *args]
    out = subprocess.DEVNULL if quiet else None
    # The template's own stdout is for the user (progress); its stdin is never ours to hand out.
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                              cwd=str(path), env=_template_env())
    except OSError as err:
        raise TemplateError(f"cannot run template '{template}': {err.strerror}") from err
    if proc.returncode != 0:
        how = (f"exit status {proc.returncode}" if proc.returncode > 0
               else f"signal {-proc.returncode}")
        raise TemplateError(f"template '{template.name}' failed ({how}); nothing was created")


def _template_env() -> dict[str, str]:
    env = dict(os.environ)
    # Templates are often Python or shell: give them a sane PATH even from cron.
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["PYL_PYTHON"] = sys.executable
    return env
