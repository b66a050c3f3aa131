"""Run a template with LXC's protocol (--path --name --rootfs, then the user's args).

Templates written for LXC work unchanged. A template fails -> TemplateError; the caller
removes the half-made container.
"""

from __future__ import annotations

import os
import sys

from lxctools.errors import NotFoundError, PylError
from lxctools.paths import templates_dirs


class TemplateError(PylError):
    pass


def resolve_template(template: str) -> str:
    """`-t busybox` -> templates/busybox (checkout or install prefix), `-t /path` -> that file."""
    if "/" in template:
        path = template
        if not os.path.isfile(path):
            raise NotFoundError(f"template '{template}' does not exist")
    else:
        candidates = [os.path.join(folder, name) for folder in templates_dirs()
                      for name in (template, f"pyl-{template}", f"lxc-{template}")]
        candidates.append(f"/usr/share/lxc/templates/lxc-{template}")
        path = next((c for c in candidates if os.path.isfile(c)), "")
        if not path:
            names = ", ".join(sorted(available_templates())) or "none"
            raise NotFoundError(f"unknown template '{template}' (available: {names})")
    if not os.access(path, os.X_OK):
        raise NotFoundError(f"template '{path}' is not executable")
    return os.path.realpath(path)


def available_templates() -> list[str]:
    names: set[str] = set()
    for folder in templates_dirs():
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        names.update(e.name for e in entries if e.is_file() and os.access(e.path, os.X_OK))
    return sorted(names)


def template_help(template: str) -> int:
    """The template's own --help, on our stdout; its exit status. Nothing is created."""
    try:
        return _run([template, "--help"], cwd="/", env=_template_env(), quiet=False)
    except OSError as err:
        raise TemplateError(f"cannot run template '{template}': {err.strerror}") from err


def run_template(template: str, *, path: str, name: str, rootfs: str, args: list[str],
                 quiet: bool) -> None:
    argv = [template, f"--path={path}", f"--name={name}", f"--rootfs={rootfs}", *args]
    # The template's own stdout is for the user (progress); its stdin is never ours to hand out.
    try:
        status = _run(argv, cwd=path, env=_template_env(), quiet=quiet)
    except OSError as err:
        raise TemplateError(f"cannot run template '{template}': {err.strerror}") from err
    if status != 0:
        how = f"exit status {status}" if status > 0 else f"signal {-status}"
        raise TemplateError(f"template '{os.path.basename(template)}' failed ({how}); nothing was created")


def _run(argv: list[str], *, cwd: str, env: dict[str, str], quiet: bool) -> int:
    """fork, chdir, exec, wait: what subprocess.run does here, without importing subprocess
    (~3 ms of pyl-create: threading, selectors, locale). An exec failure comes back through a
    close-on-exec pipe as the OSError it was; Ctrl-C kills the template before re-raising."""
    from lxctools.kernel import signals
    from lxctools.kernel.fds import close_fds_except
    from lxctools.kernel.ns import set_pdeathsig
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            # A pyl-create killed outright (SIGKILL, the OOM killer) takes its template along:
            # an orphan would go on writing into a folder the next look at the name reaps.
            set_pdeathsig(9)
            if os.getppid() != parent:  # it died before the line above
                os._exit(127)
            null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
            os.dup2(null, 0)
            if quiet:
                os.dup2(null, 1)
                os.dup2(null, 2)
            # stdio and nothing else: pyl's own fds are close-on-exec already (the container's
            # lock and `partial` flocks among them), but fds our caller let us inherit are not,
            # and a daemon started by the template would hold them for its whole life.
            close_fds_except({report_w})
            # Ignored signals survive exec: CPython's SIGPIPE would give a template's
            # `yes | head` EPIPE errors instead of a quiet end, nohup's SIGHUP its daemons.
            signals.restore_defaults()
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        except OSError as err:
            os.write(report_w, f"{err.errno}".encode())
        finally:
            os._exit(127)
    os.close(report_w)
    try:
        with os.fdopen(report_r, "rb") as report:
            failed = report.read()
        _, status = os.waitpid(pid, 0)
    except BaseException:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        raise
    if failed:
        errno = int(failed)
        raise OSError(errno, os.strerror(errno))
    return os.waitstatus_to_exitcode(status)


def _template_env() -> dict[str, str]:
    env = dict(os.environ)
    # Templates are often Python or shell: give them a sane PATH even from cron.
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["PYL_PYTHON"] = sys.executable
    return env
