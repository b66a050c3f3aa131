"""LXC hooks (lxc.hook.*): run each configured command with LXC's arguments and environment.

Version 0 (default): argv = hook, NAME, "lxc", HOOKTYPE, extra args. Version 1: those go into
LXC_HOOK_* environment variables instead. A failing pre-start/pre-mount/mount/autodev/
start-host/start hook aborts the start; stop/post-stop/destroy failures are only logged.
"""

from __future__ import annotations

import os

from lxctools.errors import StartError
from lxctools.kernel import signals
from lxctools.log import log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Mapping

FATAL_HOOKS = frozenset({"pre-start", "pre-mount", "mount", "autodev", "start-host", "start"})


def hook_commands(values: Mapping[str, object], hook: str) -> list[str]:
    from lxctools.config import lines
    return [command for command in lines(values.get(f"lxc.hook.{hook}")) if command]


def hook_env(values: Mapping[str, object], hook: str, *, name: str, config_file: str,
             extra_env: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LXC_")}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    version = str(values.get("lxc.hook.version", "0"))
    env.update({
        "LXC_NAME": name,
        "LXC_CONFIG_FILE": config_file,
        "LXC_ROOTFS_PATH": str(values.get("lxc.rootfs.path", "")),
        "LXC_CGNS_AWARE": "1",
        "LXC_HOOK_VERSION": version,
        "LXC_LOG_LEVEL": "ERROR",
    })
    if values.get("lxc.console.logfile"):
        env["LXC_CONSOLE_LOGPATH"] = str(values["lxc.console.logfile"])
    if version == "1":
        env["LXC_HOOK_TYPE"] = hook
        env["LXC_HOOK_SECTION"] = "lxc"
    env.update(extra_env)
    return env


def run_hooks(values: Mapping[str, object], hook: str, *, name: str, config_file: str,
              extra_env: Mapping[str, str], extra_args: list[str] | None = None,
              timeout: float = 120.0) -> None:
    commands = hook_commands(values, hook)
    if not commands:
        return
    # Only with a hook to run: subprocess (with signal, threading, selectors...) and shlex are
    # ~5 ms of a pyl-destroy otherwise. The supervisor preloads both for its children.
    import shlex
    import subprocess
    env = hook_env(values, hook, name=name, config_file=config_file, extra_env=extra_env)
    version = env["LXC_HOOK_VERSION"]
    for command in commands:
        argv = shlex.split(command)
        if version != "1":
            argv += [name, "lxc", hook, *(extra_args or [])]
        try:
            # Not the supervisor's ignored signals and mask (nohup's SIGHUP, a cron job's mask).
            proc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  timeout=timeout, preexec_fn=signals.restore_defaults)
        except (OSError, subprocess.TimeoutExpired) as err:
            _fail(hook, command, str(getattr(err, "strerror", None) or err))
            continue
        if proc.stdout:
            log.debug("hooks", f"{hook} hook {command}: {proc.stdout.decode(errors='replace').strip()}")
        if proc.returncode != 0:
            _fail(hook, command, f"exit status {proc.returncode}")


def _fail(hook: str, command: str, why: str) -> None:
    message = f"lxc.hook.{hook} '{command}' failed: {why}"
    if hook in FATAL_HOOKS:
        raise StartError(message)
    log.warn("hooks", message)
