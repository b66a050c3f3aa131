"""Shared fixtures: a throwaway lxcpath and run dir per test, the `pyl` runner, and the leak check.

Integration tests use real containers. After each one, `no_leaks` fails the test if anything
the test made is still there: a process, a mount, a cgroup, a link, a supervisor. In CI
(PYL_NO_SKIP=1, set by .ci/run) a skipped test is a failure: CI has root and every kernel
feature, so a skip there means a test silently did not run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "bin" / "pyl"
IS_ROOT = os.geteuid() == 0

# A busybox container with only loopback: what most integration tests need (no bridge).
NO_NET = str(ROOT / "configs" / "empty-net.toml")

requires_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (namespaces, cgroups, mounts)")


def busybox_path() -> str | None:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(candidate):
            return candidate
    return None


requires_busybox = pytest.mark.skipif(busybox_path() is None, reason="needs busybox-static (apt-get install busybox-static)")


def cgroup_kind() -> str | None:
    """This host's cgroup layout: "v1", "v2", "hybrid", or None without a cgroupfs."""
    global _CGROUP_KIND
    if _CGROUP_KIND == "":
        try:
            from lxctools.runtime.cgroups import detect_layout
            _CGROUP_KIND = detect_layout().kind
        except Exception:
            _CGROUP_KIND = None
    return _CGROUP_KIND


_CGROUP_KIND: str | None = ""


def pytest_collection_modifyitems(config, items):
    """A test of one cgroup layout's mechanism (v1's devices.allow on a hybrid host) is not run,
    rather than skipped, on another: there it is not missing, it does not apply, and CI's
    PYL_NO_SKIP must not count it as a failure. The deselection is shown in the summary."""
    kind = cgroup_kind()
    keep, other_layout = [], []
    for item in items:
        marker = item.get_closest_marker("cgroup_layouts")
        (other_layout if marker is not None and kind not in marker.args else keep).append(item)
    if other_layout:
        config.hook.pytest_deselected(items=other_layout)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("PYL_NO_SKIP") == "1" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped in CI, where every requirement is present: {reason}"


@pytest.fixture(autouse=True)
def _own_rundir(tmp_path_factory, monkeypatch):
    """Library code called in the test process (ipam's host-wide table, the bridge's state) finds
    pyl's run dir through PYL_RUNDIR: a throwaway one, never the host's /run/pyl."""
    if not os.environ.get("PYL_RUNDIR"):
        monkeypatch.setenv("PYL_RUNDIR", str(tmp_path_factory.mktemp("rundir")))


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class Pyl:
    """Runs pyl tools as a user would (a separate process), against this test's lxcpath."""

    def __init__(self, lxcpath: Path, rundir: Path) -> None:
        self.lxcpath = lxcpath
        self.rundir = rundir
        self.env = dict(os.environ)
        self.env.update({"PYL_RUNDIR": str(rundir), "PYL_MONITOR_LINGER": "0",
                         "PYL_LXCPATH": str(lxcpath), "PYTHONDONTWRITEBYTECODE": "1"})
        self.env.pop("PYL_NO_SKIP", None)

    def argv(self, tool: str, *args: str) -> list[str]:
        return [sys.executable, str(BIN), tool, "-P", str(self.lxcpath), *args]

    def __call__(self, tool: str, *args: str, input: bytes | str | None = None, timeout: float = 60,
                 check: bool = False) -> Result:
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run(self.argv(tool, *args), input=data, capture_output=True, env=self.env,
                              timeout=timeout, stdin=None if data is not None else subprocess.DEVNULL)
        result = Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
        if check and proc.returncode != 0:
            raise AssertionError(f"pyl-{tool} {' '.join(args)} -> {proc.returncode}\n{result.stderr}{result.stdout}")
        return result

    def ok(self, tool: str, *args: str, **kw) -> Result:
        return self(tool, *args, check=True, **kw)

    def popen(self, tool: str, *args: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(self.argv(tool, *args), env=self.env, **kw)

    def supervisor_pids(self) -> list[int]:
        """The supervisor of this lxcpath, if one runs (a list: a test may catch two)."""
        out = subprocess.run(["pgrep", "-f", f"lxctools.monitor.daemon {self.lxcpath} "],
                             capture_output=True, text=True)
        pids = [int(p) for p in out.stdout.split()]
        # the netlink worker is a fork of the supervisor, with its command line: not a second one
        return [p for p in pids if _parent(p) not in pids]


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("PPid:"))
    except (OSError, StopIteration):
        return None


@pytest.fixture
def pyl(tmp_path_factory):
    # Short paths: the supervisor's socket path must fit in sun_path (108 bytes).
    base = Path(tempfile.mkdtemp(prefix="pylt-", dir="/tmp"))
    lxcpath = base / "lxc"
    rundir = base / "run"
    lxcpath.mkdir()
    rundir.mkdir()
    runner = Pyl(lxcpath, rundir)
    before = snapshot()
    yield runner
    try:
        names = _container_names(lxcpath)
        _stop_everything(runner)
        after = wait_for_clean(before, base, names)
        leaks = _leaks(before, after, base, names)
        stale = _stale_lock_files(rundir, lxcpath)
        if stale:
            leaks["lock files"] = stale
        assert not leaks, f"test leaked: {leaks}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _stale_lock_files(rundir: Path, lxcpath: Path) -> list[str]:
    """Lock files that outlived what they guard: an operation lock of a name with no container
    folder (in the lxcpath, or in a container's snaps folder), any lock under the run folder
    of an lxcpath that is gone, a running lock with nothing running (all is stopped by now)."""
    from lxctools.paths import Layout
    lxcpaths = [lxcpath, *lxcpath.glob("*/snaps")]
    known = {Layout(p, rundir).run_path("lock"): p for p in lxcpaths}
    stale = []
    for lock_dir in rundir.glob("*/lock"):
        if not lock_dir.is_dir():
            continue  # pyl-net's own lock (run/net/lock): one file per run dir, not per name
        where = known.get(str(lock_dir))
        stale += [str(p) for p in lock_dir.iterdir() if where is None or not os.path.lexists(where / p.name)]
    stale += [str(p) for p in rundir.glob("*/state/*.running")]
    return sorted(stale)


def _container_names(lxcpath: Path) -> set[str]:
    try:
        return {entry.name for entry in lxcpath.iterdir()} | {"c1", "c2"}
    except OSError:
        return {"c1", "c2"}


def _ours(kind: str, item: str, base: Path, names: set[str]) -> bool:
    """Only what this test could have made counts (other suites or benchmarks may run beside)."""
    if kind == "processes":
        return str(base) in item or " pyl-init " in item
    if kind == "cgroups":
        if os.path.basename(item) == "pyl.monitor":
            return True  # the supervisor's own (pure v2): it removes it when it leaves
        leaf = os.path.basename(item).removeprefix("pyl.payload.")
        return leaf in names or leaf.rsplit("-", 1)[0] in names
    if kind == "mounts":
        return str(base) in item or "pyl" in item
    if kind == "links" and item == "pylbr0":
        return True  # pyl's default bridge: up before the test (then not new) or the test's own
    if kind == "links":
        # host ends are pyl + up to 6 characters of the container name + 6 random ones
        return any(item.startswith("pyl" + "".join(c for c in n if c.isalnum())[:6]) and
                   len(item) == 3 + min(6, len("".join(c for c in n if c.isalnum()))) + 6 for n in names)
    return True


def _leaks(before, after, base: Path, names: set[str]) -> dict[str, list[str]]:
    leaks = {}
    for kind in after:
        new = sorted(i for i in after[kind] - before[kind] if _ours(kind, i, base, names))
        if new:
            leaks[kind] = new
    return leaks


def _stop_everything(runner: Pyl) -> None:
    """Kill whatever a (possibly failed) test left running in its lxcpath, then let the supervisor go."""
    listing = runner("ls", "--running", "-1")
    for name in listing.stdout.split():
        runner("stop", "-n", name, "-k")
    runner("monitor", "-Q")
    # a container on the default bridge brings pylbr0, its NAT and dnsmasq up on demand, with
    # their state under this test's run dir: take them down with it
    runner("net", "stop")


def snapshot() -> dict[str, set[str]]:
    return {
        "processes": _pyl_processes(),
        "mounts": _mounts(),
        "cgroups": _cgroups(),
        "links": _links(),
        "nft": _nft_tables(),
    }


def wait_for_clean(before: dict[str, set[str]], base: Path, names: set[str],
                   timeout: float = 10.0) -> dict[str, set[str]]:
    deadline = time.monotonic() + timeout
    while True:
        after = snapshot()
        if not _leaks(before, after, base, names) or time.monotonic() > deadline:
            return after
        time.sleep(0.05)


def _pyl_processes() -> set[str]:
    found = set()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if "lxctools.monitor" in cmd or comm in ("pyl-monitord", "pyl-init") or "/pylt-" in cmd:
            found.add(f"{entry} {comm} {cmd}")
    return found


def _mounts() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f if "pyl" in line}


def _cgroups() -> set[str]:
    found = set()
    for root, dirs, _files in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            if d.startswith("pyl."):
                found.add(os.path.join(root, d))
        depth = root.count("/") - "/sys/fs/cgroup".count("/")
        if depth >= 3:
            dirs[:] = []
    return found


def _nft_tables() -> set[str]:
    """pyl's NAT table (`ip pyl`), made with the default bridge."""
    if not shutil.which("nft"):
        return set()
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return {line.strip() for line in out.splitlines() if "pyl" in line}


def _links() -> set[str]:
    try:
        names = os.listdir("/sys/class/net")
    except OSError:
        return set()
    return {n for n in names if n.startswith(("pyl", "veth"))}


@pytest.fixture
def running(pyl):
    """`pyl` with a running busybox container c1 (loopback only), stopped afterwards."""
    pyl.ok("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    pyl.ok("start", "-n", "c1")
    yield pyl
    pyl("stop", "-n", "c1", "-k")
