"""The two tools under test, as command lines, and the throwaway lxcpaths they work in.

`Tool` turns an operation into the argv a user would type (`lxc-start -P P -n c1`,
`/repo/.venv/bin/pyl-start -P P -n c1`); `Workspace` owns every folder, container and
supervisor the benchmark makes, and removes them all on exit, Ctrl-C included.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

COMMAND_TIMEOUT = 60.0  # seconds; a hung tool must not hang the benchmark


@dataclass
class Tool:
    """One of the two toolkits: `key` is "lxc" or "pyl"; `bindir` holds its commands."""

    key: str
    bindir: str
    create_config: str | None = None  # -f FILE for create (None: the tool's default config)
    env: dict[str, str] = field(default_factory=dict)

    def exe(self, tool: str) -> str:
        name = f"{self.key}-{tool}"
        return os.path.join(self.bindir, name) if self.bindir else name

    def has(self, tool: str) -> bool:
        path = self.exe(tool)
        return os.access(path, os.X_OK) if os.sep in path else shutil.which(path) is not None

    def cmd(self, tool: str, lxcpath: Path, name: str | None, *extra: str) -> list[str]:
        argv = [self.exe(tool), "-P", str(lxcpath)]
        if name is not None:
            argv += ["-n", name]
        return argv + list(extra)

    def create_cmd(self, lxcpath: Path, name: str) -> list[str]:
        extra = ["-t", "busybox"]
        if self.create_config:
            extra += ["-f", self.create_config]
        return self.cmd("create", lxcpath, name, *extra)

    def run(self, argv: list[str], timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """Run one command untimed; returns the finished process (never raises on failure)."""
        try:
            return subprocess.run(argv, env=self.env or None, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"timed out after {timeout:.0f} s")
        except OSError as err:
            return subprocess.CompletedProcess(argv, 127, "", str(err))


def first_error_line(proc: subprocess.CompletedProcess) -> str:
    for text in (proc.stderr, proc.stdout):
        for line in (text or "").splitlines():
            if line.strip():
                return line.strip()[:160]
    return f"exit status {proc.returncode}"


_MAC = re.compile(r"00:16:3e(:[0-9a-fA-F]{2}){3}")


def clone_container_dir(lxcpath: Path, source: str, target: str, index: int, rootfs: bool = True) -> None:
    """Define `target` as a copy of `source` in the same lxcpath, faster than a create.

    Both tools keep the name and the lxcpath in the config (uts name, rootfs path), so the
    source name is replaced as a word; the MAC gets a unique tail so 50 running copies can
    share a bridge. Used only to populate the listing benchmarks, never timed.
    """
    src, dst = lxcpath / source, lxcpath / target
    if rootfs:
        subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    else:
        dst.mkdir()
        (dst / "rootfs").mkdir()
        for entry in src.iterdir():
            if entry.is_file() and entry.name.startswith("config"):
                shutil.copy2(entry, dst / entry.name)
    mac = f"00:16:3e:{(index >> 16) & 0xff:02x}:{(index >> 8) & 0xff:02x}:{index & 0xff:02x}"
    for conf in dst.iterdir():
        if conf.is_file() and conf.name.startswith("config"):
            text = re.sub(rf"\b{re.escape(source)}\b", target, conf.read_text())
            conf.write_text(_MAC.sub(mac, text))


class Workspace:
    """A temporary folder holding one lxcpath per (tool, purpose); removes all of it on exit."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pyl-bench-"))
        self.paths: list[tuple[Tool, Path]] = []

    def lxcpath(self, tool: Tool, purpose: str) -> Path:
        path = self.root / f"{tool.key}-{purpose}"
        path.mkdir(exist_ok=True)
        self.paths.append((tool, path))
        return path

    def cleanup(self, log=print) -> None:
        """Stop and destroy every container, end the supervisors, unmount, delete the folder.

        SIGINT is ignored meanwhile: a second Ctrl-C must not leave running containers behind.
        """
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for tool, path in self.paths:
                self._clean_lxcpath(tool, path, log)
            self._end_supervisors()
            for tool, path in self.paths:
                if tool.key == "pyl":
                    _remove_pyl_rundir(path)
            self._unmount_below(self.root)
            shutil.rmtree(self.root, ignore_errors=True)
            _remove_lxc_lock_dirs(self.root)
        finally:
            signal.signal(signal.SIGINT, old)

    def _clean_lxcpath(self, tool: Tool, path: Path, log) -> None:
        """Stop what runs; destroy through the tool where that is quick (its own bookkeeping
        goes too); the folder itself is removed by cleanup() either way."""
        if not path.is_dir():
            return
        # Dot folders are the tool's own bookkeeping (pyl's .pyl-ipam), not containers.
        names = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        if tool.key == "lxc":
            running = running_lxc_names(path)
        else:
            proc = tool.run(tool.cmd("ls", path, None, "--active", "-1"))
            running = proc.stdout.split() if proc.returncode == 0 else names
        for name in running:
            tool.run(tool.cmd("stop", path, name, "-k"), timeout=30)
        if len(names) > 20:
            return
        for name in names:
            proc = tool.run(tool.cmd("destroy", path, name, "-f"), timeout=30)
            if proc.returncode != 0 and (path / name).exists():
                log(f"bench: cleanup: {tool.key}-destroy {name}: {first_error_line(proc)}")

    def _end_supervisors(self) -> None:
        """pyl-monitord for our lxcpaths (started by our pyl-start calls): SIGTERM, then KILL."""
        pids = supervisor_pids(self.root)
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if os.path.exists(f"/proc/{p}")]
            time.sleep(0.05)
        for pid in pids:
            _signal(pid, signal.SIGKILL)

    @staticmethod
    def _unmount_below(root: Path) -> None:
        prefix = str(root) + "/"
        with open("/proc/self/mountinfo") as f:
            targets = [line.split()[4] for line in f]
        for target in sorted((t for t in targets if t.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True)


def _remove_pyl_rundir(lxcpath: Path) -> None:
    """pyl keeps locks, state and the supervisor's log in a run dir private to each lxcpath."""
    try:
        from lxctools.paths import Layout, default_rundir
        rundir = Layout(lxcpath, default_rundir()).path_rundir
    except Exception:  # pyl's layout API moved: leave the run dir rather than guess
        return
    shutil.rmtree(rundir, ignore_errors=True)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _remove_lxc_lock_dirs(root: Path) -> None:
    """liblxc leaves /run/lxc/lock/<lxcpath>/ behind for every lxcpath it locked in."""
    lockdir = Path("/run/lxc/lock") / str(root).lstrip("/")
    shutil.rmtree(lockdir, ignore_errors=True)
    parent = lockdir.parent
    while parent != Path("/run/lxc/lock") and parent != parent.parent:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def _cmdline(pid: str) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def supervisor_pids(below: Path) -> list[int]:
    """PIDs of pyl-monitord processes serving an lxcpath inside `below`."""
    prefix = str(below)
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if _comm(pid) == "pyl-monitord" and any(a.startswith(prefix) for a in _cmdline(pid)):
            out.append(int(pid))
    return out


def lxc_monitor_pids(lxcpath: Path) -> list[int]:
    """PIDs of `[lxc monitor] LXCPATH NAME` processes for one lxcpath."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        argv = _cmdline(pid)
        if argv and argv[0].startswith("[lxc monitor]"):
            words = " ".join(argv).split()
            if len(words) >= 3 and words[2] == str(lxcpath):
                out.append(int(pid))
    return out


def running_lxc_names(lxcpath: Path) -> list[str]:
    names = []
    for pid in lxc_monitor_pids(lxcpath):
        words = " ".join(_cmdline(str(pid))).split()
        if len(words) >= 4:
            names.append(words[3])
    return names


def pss_kib(pid: int) -> int:
    """Proportional set size of one process, from /proc/PID/smaps_rollup."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
