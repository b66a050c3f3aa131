"""The shipped templates (templates/busybox, local, none) driven with LXC's protocol.

Each test makes PATH/config with one line first (as pyl-create/lxc-create would), runs the
template as a subprocess and inspects the rootfs and what was appended. Run times are printed
(pytest -s). The boot tests start the busybox rootfs's real /sbin/init in fresh namespaces
through util-linux `unshare` -- a separate process, never the pytest process -- and stop it
with the halt signal the template configured; the private mount namespace dies with it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
BUSYBOX = Path("/bin/busybox")

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="the busybox template chroots: needs root")
needs_busybox = pytest.mark.skipif(not BUSYBOX.is_file(), reason="busybox-static is not installed")

BUSYBOX_KEYS = [
    "lxc.signal.halt = SIGUSR1",
    "lxc.signal.reboot = SIGTERM",
    "lxc.autodev = 1",
    "lxc.tty.max = 4",
    "lxc.pty.max = 1024",
    "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed",
    "lxc.init.cmd = /sbin/init",
]


def run_template(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    start = time.perf_counter()
    proc = subprocess.run([str(TEMPLATES / name), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)
    elapsed = (time.perf_counter() - start) * 1000
    print(f"\n[timing] template {name}: {elapsed:.1f} ms (exit {proc.returncode})")
    proc.elapsed_ms = elapsed  # type: ignore[attr-defined]
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def container_dir(tmp_path: Path, first_line: str = "lxc.uts.name = placeholder") -> Path:
    path = tmp_path / "c1"
    path.mkdir()
    (path / "config").write_text(first_line + "\n")
    return path


def config_lines(path: Path) -> list[str]:
    return [line.strip() for line in (path / "config").read_text().splitlines()]


# --- busybox --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def busybox_container(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (IS_ROOT and BUSYBOX.is_file()):
        pytest.skip("needs root and busybox-static")
    path = container_dir(tmp_path_factory.mktemp("bb"))
    proc = run_template("busybox", f"--path={path}", "--name=c1", f"--rootfs={path / 'rootfs'}")
    assert proc.elapsed_ms < 1000  # type: ignore[attr-defined]  # ~30 ms; generous for slow CI
    return path


def test_busybox_every_applet_is_linked(busybox_container: Path) -> None:
    rootfs = busybox_container / "rootfs"
    assert (rootfs / "bin/busybox").is_file() and not (rootfs / "bin/busybox").is_symlink()
    assert os.access(rootfs / "bin/busybox", os.X_OK)
    full = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True,
                          check=True).stdout.split()
    names = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(full) == len(names) > 100
    assert {p.rsplit("/", 1)[-1] for p in full} == set(names)
    binary = (rootfs / "bin/busybox").stat()
    for applet in full:
        # Hard links to the container's own copy (a new inode per applet would cost ~0.2 ms each).
        st = (rootfs / applet).lstat()
        assert (st.st_dev, st.st_ino) == (binary.st_dev, binary.st_ino), applet
    assert binary.st_nlink == len(full)


def test_busybox_skeleton_and_init(busybox_container: Path) -> None:
    rootfs = busybox_container / "rootfs"
    for d in ("bin", "sbin", "etc", "dev", "proc", "sys", "tmp", "root", "var/run", "var/log",
              "run", "home", "mnt", "usr/bin", "usr/sbin", "lib"):
        assert (rootfs / d).is_dir(), d
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    # /sbin/init is busybox
    assert (rootfs / "sbin/init").samefile(rootfs / "bin/busybox")
    for script in ("etc/init.d/rcS", "usr/share/udhcpc/default.script"):
        assert os.access(rootfs / script, os.X_OK), script
        assert (rootfs / script).read_text().startswith("#!/bin/sh\n")
    inittab = (rootfs / "etc/inittab").read_text().splitlines()
    assert "::sysinit:/etc/init.d/rcS" in inittab
    for n in range(1, 5):
        assert f"tty{n}::respawn:/sbin/getty -L tty{n} 115200 vt100" in inittab
    assert "tty5::respawn:/sbin/getty -L tty5 115200 vt100" not in inittab
    assert "console::respawn:/sbin/getty -L console 115200 vt100" in inittab
    assert any(line.startswith("::shutdown:") for line in inittab)
    # never `umount -r`: it would remount the host's filesystem read-only
    assert not any("umount" in line and "-r" in line for line in inittab)


def test_busybox_etc_files(busybox_container: Path) -> None:
    etc = busybox_container / "rootfs/etc"
    assert (etc / "passwd").read_text().splitlines()[0] == "root:x:0:0:root:/root:/bin/sh"
    assert (etc / "shadow").read_text().startswith("root::")
    assert (etc / "shadow").stat().st_mode & 0o777 == 0o600
    assert "tty:x:5:" in (etc / "group").read_text().splitlines()
    assert (etc / "hostname").read_text() == "c1\n"
    assert "127.0.1.1\tc1" in (etc / "hosts").read_text()
    assert (etc / "resolv.conf").read_text() == ""
    assert "PATH=" in (etc / "profile").read_text() and "PS1=" in (etc / "profile").read_text()
    assert "iface eth0 inet dhcp" in (etc / "network/interfaces").read_text()
    assert os.readlink(etc / "mtab") == "/proc/mounts"


def test_busybox_config_lines_appended_once(busybox_container: Path) -> None:
    lines = config_lines(busybox_container)
    assert lines[0] == "lxc.uts.name = placeholder"  # never rewritten, only appended to
    for key in BUSYBOX_KEYS + ["lxc.uts.name = c1",
                               f"lxc.rootfs.path = {busybox_container / 'rootfs'}"]:
        assert lines.count(key) == 1, key
    assert sum(line.startswith("lxc.rootfs.path") for line in lines) == 1
    # what pyl-create re-reads after the template
    from lxctools.config.model import ContainerConfig
    values = ContainerConfig.load(busybox_container / "config").values()
    assert values["lxc.uts.name"] == "c1"
    assert values["lxc.signal.halt"] == "SIGUSR1"
    assert values["lxc.init.cmd"] == "/sbin/init"


def test_busybox_runs_without_host_libraries(busybox_container: Path) -> None:
    rootfs = busybox_container / "rootfs"
    out = subprocess.run(["chroot", str(rootfs), "/bin/sh", "-c", "echo ok; ls /lib | wc -l"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "0"]


@needs_root
@needs_busybox
def test_busybox_keeps_existing_rootfs_path_and_reads_it(tmp_path: Path) -> None:
    rootfs = tmp_path / "elsewhere"
    path = container_dir(tmp_path, f"lxc.rootfs.path = dir:{rootfs}")
    # `--opt value` spelling, and no --rootfs: the template reads lxc.rootfs.path
    run_template("busybox", "--path", str(path), "--name", "c2")
    assert (rootfs / "bin/busybox").is_file()
    assert not (path / "rootfs").exists()
    lines = config_lines(path)
    assert sum(line.startswith("lxc.rootfs.path") for line in lines) == 1
    assert "lxc.uts.name = c2" in lines


@needs_root
@needs_busybox
def test_busybox_static_ip_and_options(tmp_path: Path) -> None:
    path = container_dir(tmp_path)
    run_template("busybox", f"--path={path}", "--name=web", f"--rootfs={path / 'rootfs'}",
                 "--ip=10.0.3.7/22", "--gateway=10.0.3.1", "--dns=9.9.9.9", "--dns=1.1.1.1",
                 "--ttys=2", "--lock-root")
    etc = path / "rootfs/etc"
    interfaces = (etc / "network/interfaces").read_text()
    assert "iface eth0 inet static" in interfaces
    assert "\taddress 10.0.3.7\n\tnetmask 255.255.252.0\n\tgateway 10.0.3.1\n" in interfaces
    assert (etc / "resolv.conf").read_text() == "nameserver 9.9.9.9\nnameserver 1.1.1.1\n"
    assert (etc / "shadow").read_text().startswith("root:!:")
    inittab = (etc / "inittab").read_text()
    assert "tty2::respawn" in inittab and "tty3::" not in inittab
    assert "lxc.tty.max = 2" in config_lines(path)


@needs_root
@needs_busybox
def test_busybox_mapped_ids_chown_config(tmp_path: Path) -> None:
    path = container_dir(tmp_path)
    run_template("busybox", f"--path={path}", "--name=u1", f"--rootfs={path / 'rootfs'}",
                 "--mapped-uid=1234", "--mapped-gid=2345", "--rootfs-owner=100000:100000")
    st = (path / "config").stat()
    assert (st.st_uid, st.st_gid) == (1234, 2345)
    for p in (path / "rootfs", path / "rootfs/etc/passwd", path / "rootfs/bin/sh"):
        st = p.lstat()
        assert (st.st_uid, st.st_gid) == (100000, 100000), p


@pytest.mark.parametrize("args, message", [
    (["--name=x"], "--path is required"),
    (["--path={path}"], "--name is required"),
    (["--path={path}", "--name=x", "--bogus"], "unknown option '--bogus'"),
    (["--path={path}", "--name=x", "--busybox-path=/nonexistent/busybox"], "is not an executable file"),
    (["--path={path}", "--name=x", "--ip=10.0.0.1"], "CIDR"),
    (["--path={path}", "--name=x", "--ip=10.0.0.300/24"], "not an IPv4 address"),
    (["--path={path}", "--name=x", "--gateway=10.0.0.1"], "--gateway needs --ip"),
    (["--path={path}", "--name=x", "--ttys=many"], "--ttys needs a number"),
    (["--path={path}/missing", "--name=x"], "does not exist"),
])
def test_busybox_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    path = container_dir(tmp_path)
    proc = run_template("busybox", *[a.format(path=path) for a in args], check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert proc.stderr.startswith("busybox: ")
    assert config_lines(path) == ["lxc.uts.name = placeholder"]  # nothing appended on failure


@needs_root
def test_busybox_rejects_a_dynamic_binary(tmp_path: Path) -> None:
    path = container_dir(tmp_path)
    proc = run_template("busybox", f"--path={path}", "--name=x", f"--rootfs={path / 'rootfs'}",
                        f"--busybox-path={shutil.which('true')}", check=False)
    assert proc.returncode != 0
    assert "not a static busybox" in proc.stderr
    assert config_lines(path) == ["lxc.uts.name = placeholder"]


def test_busybox_help() -> None:
    proc = run_template("busybox", "-h")
    assert proc.stdout.startswith("Usage: busybox --path=PATH --name=NAME")
    assert "--busybox-path" in proc.stdout


# --- local ----------------------------------------------------------------------------------

def _sample_tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text("sample\n")
    (root / "bin").mkdir()
    (root / "bin/tool").write_text("#!/bin/sh\n")
    os.chmod(root / "bin/tool", 0o4755)
    os.symlink("/bin/tool", root / "bin/alias")
    os.link(root / "bin/tool", root / "bin/hardlink")
    (root / "tmp").mkdir()
    os.chmod(root / "tmp", 0o1777)
    if IS_ROOT:
        os.chown(root / "etc/hostname", 1001, 1002)


def _check_sample(rootfs: Path) -> None:
    assert (rootfs / "etc/hostname").read_text() == "sample\n"
    assert (rootfs / "bin/tool").stat().st_mode & 0o7777 == 0o4755
    assert os.readlink(rootfs / "bin/alias") == "/bin/tool"
    assert (rootfs / "bin/hardlink").stat().st_ino == (rootfs / "bin/tool").stat().st_ino
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    if IS_ROOT:
        st = (rootfs / "etc/hostname").stat()
        assert (st.st_uid, st.st_gid) == (1001, 1002)


@pytest.mark.parametrize("compression", ["", "gz", "xz"])
def test_local_from_tarball(tmp_path: Path, compression: str) -> None:
    tree = tmp_path / "tree"
    _sample_tree(tree)
    tarball = tmp_path / f"root.tar{'.' + compression if compression else ''}"
    with tarfile.open(tarball, f"w:{compression}") as tar:
        tar.add(tree, arcname=".")
    path = container_dir(tmp_path)
    run_template("local", f"--path={path}", "--name=c1", f"--rootfs={path / 'rootfs'}",
                 f"--tarball={tarball}")
    _check_sample(path / "rootfs")
    assert config_lines(path).count(f"lxc.rootfs.path = {path / 'rootfs'}") == 1


def test_local_tarball_strip(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _sample_tree(tree)
    tarball = tmp_path / "root.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tree, arcname="rootfs")
    path = container_dir(tmp_path)
    run_template("local", f"--path={path}", "--name=c1", f"--tarball={tarball}", "--strip=1")
    _check_sample(path / "rootfs")  # default rootfs: PATH/rootfs


def test_local_from_directory(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    _sample_tree(tree)
    path = container_dir(tmp_path, f"lxc.rootfs.path = dir:{path_rootfs(tmp_path)}")
    run_template("local", f"--path={path}", "--name=c1", "--from", str(tree))
    _check_sample(path_rootfs(tmp_path))
    # lxc.rootfs.path was there: not appended again
    assert sum(line.startswith("lxc.rootfs.path") for line in config_lines(path)) == 1


def path_rootfs(tmp_path: Path) -> Path:
    return tmp_path / "c1" / "rootfs"


@pytest.mark.parametrize("args, message", [
    ([], "no rootfs source"),
    (["--tarball=/nonexistent.tar", "--from=/tmp"], "not both"),
    (["--tarball=/nonexistent.tar"], "does not exist"),
    (["--from=/nonexistent-dir"], "does not exist"),
    (["--from={tmp}"], "lies inside --from"),
    (["--from=/tmp", "--strip=1"], "--strip only applies to --tarball"),
])
def test_local_errors(tmp_path: Path, args: list[str], message: str) -> None:
    path = container_dir(tmp_path)
    proc = run_template("local", f"--path={path}", "--name=c1", f"--rootfs={path / 'rootfs'}",
                        *[a.format(tmp=tmp_path) for a in args], check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert config_lines(path) == ["lxc.uts.name = placeholder"]


def test_local_bad_tarball(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball at all")
    path = container_dir(tmp_path)
    proc = run_template("local", f"--path={path}", "--name=c1", f"--tarball={junk}", check=False)
    assert proc.returncode != 0
    assert "cannot extract" in proc.stderr


# --- none -----------------------------------------------------------------------------------

def test_none_creates_empty_rootfs(tmp_path: Path) -> None:
    path = container_dir(tmp_path)
    proc = run_template("none", f"--path={path}", "--name=c1")
    rootfs = path / "rootfs"
    assert rootfs.is_dir() and not any(rootfs.iterdir())
    assert "is empty: put a root filesystem there" in proc.stderr
    assert proc.stdout == ""
    assert config_lines(path)[-1] == f"lxc.rootfs.path = {rootfs}"


def test_none_keeps_an_existing_tree(tmp_path: Path) -> None:
    tree = tmp_path / "mine"
    _sample_tree(tree)
    path = container_dir(tmp_path, f"lxc.rootfs.path = {tree}")
    proc = run_template("none", f"--path={path}", "--name=c1", f"--rootfs={tree}")
    assert "using the existing tree" in proc.stderr
    _check_sample(tree)
    assert config_lines(path) == [f"lxc.rootfs.path = {tree}"]


def test_none_errors(tmp_path: Path) -> None:
    path = container_dir(tmp_path)
    (tmp_path / "file").write_text("")
    proc = run_template("none", f"--path={path}", "--name=c1", f"--rootfs={tmp_path / 'file'}",
                        check=False)
    assert proc.returncode != 0 and "is not a directory" in proc.stderr
    proc = run_template("none", "--name=c1", check=False)
    assert proc.returncode != 0 and "--path is required" in proc.stderr


# --- booting the busybox rootfs -------------------------------------------------------------

# Minimal stand-in for pyl-start: private mounts of proc, ro sysfs and an autodev-like /dev,
# optional network set-up, then exec the rootfs's /sbin/init as PID 1 of the new pid ns.
_BOOT = r'''
set -e
R=$1
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
mount -t sysfs -o ro sysfs "$R/sys"
mount -t tmpfs -o mode=755 dev "$R/dev"
for spec in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
    set -- $spec
    mknod -m 666 "$R/dev/$1" c "$2" "$3"
done
mkdir "$R/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
eval "$NETSETUP"
cd "$R"
exec $DROP chroot . /sbin/init
'''

needs_boot = pytest.mark.skipif(
    not (IS_ROOT and BUSYBOX.is_file() and all(map(shutil.which, ("unshare", "nsenter", "setpriv")))),
    reason="needs root, busybox-static and util-linux unshare/nsenter/setpriv")


class Booted:
    def __init__(self, rootfs: Path, netsetup: str, drop_sys_admin: bool) -> None:
        self.rootfs = rootfs
        self.proc = subprocess.Popen(
            # --kill-child: if unshare dies, so does the container (nothing left behind)
            ["unshare", "--fork", "--kill-child", "--pid", "--mount", "--uts", "--net", "--ipc",
             "--propagation", "private", "sh", "-c", _BOOT, "sh", str(rootfs)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env={**os.environ, "NETSETUP": netsetup,
                 # as pyl's common.toml: no CAP_SYS_ADMIN for the container
                 "DROP": "setpriv --bounding-set=-sys_admin" if drop_sys_admin else ""})
        self.init_pid = 0

    def wait_for_init(self) -> None:
        self.init_pid = self._find_init()

    def _find_init(self) -> int:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                pids = children.read_text().split()
            except FileNotFoundError:
                pids = []
            # exec of the rootfs's /sbin/init: a hard link to busybox, so exe names either path
            if pids and os.readlink(f"/proc/{pids[0]}/exe").rsplit("/", 1)[-1] in ("busybox", "init"):
                return int(pids[0])
            if self.proc.poll() is not None:
                raise AssertionError(f"boot failed: {self.proc.stdout.read().decode()}")
            time.sleep(0.02)
        raise AssertionError("init did not start")

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return False

    def netns(self, *cmd: str) -> str:
        return subprocess.run(["nsenter", "-t", str(self.init_pid), "-n", *cmd],
                              capture_output=True, text=True, timeout=10).stdout

    def halt(self, sig: int = signal.SIGUSR1, timeout: float = 10.0) -> float:
        start = time.monotonic()
        os.kill(self.init_pid, sig)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - start

    def console(self) -> str:
        """Everything init and rcS printed (after the container stopped)."""
        assert self.proc.stdout is not None
        return self.proc.stdout.read().decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                # PID 1 gone: the kernel kills the whole pid namespace
                os.kill(self.init_pid or self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def boot():
    booted: list[Booted] = []

    def start(rootfs: Path, netsetup: str = "", drop_sys_admin: bool = False) -> Booted:
        b = Booted(rootfs, netsetup, drop_sys_admin)
        booted.append(b)  # before waiting: a failed boot is still cleaned up
        b.wait_for_init()
        return b

    yield start
    for b in booted:
        b.kill()


def _make_busybox(tmp_path: Path, *args: str) -> Path:
    path = container_dir(tmp_path)
    run_template("busybox", f"--path={path}", "--name=bb", f"--rootfs={path / 'rootfs'}", *args)
    return path / "rootfs"


def _booted(rootfs: Path) -> bool:
    # rcS ends with the resolv.conf step; syslogd was started before it
    log = rootfs / "var/log/messages"
    return log.exists() and "syslogd started" in log.read_text()


_VETH = "ip link add eth0 type veth peer name host0; ip link set host0 up; "


@needs_boot
def test_boot_static_address_then_halt(tmp_path: Path, boot) -> None:
    rootfs = _make_busybox(tmp_path, "--ip=10.231.0.5/24", "--gateway=10.231.0.1")
    c = boot(rootfs, _VETH, drop_sys_admin=True)
    assert c.wait_for(lambda: (rootfs / "etc/resolv.conf").read_text() != "")
    assert "inet 10.231.0.5/24" in c.netns("ip", "-4", "addr", "show", "eth0")
    assert "default via 10.231.0.1 dev eth0" in c.netns("ip", "-4", "route")
    assert (rootfs / "etc/resolv.conf").read_text() == "nameserver 10.231.0.1\n"
    assert Path(f"/proc/{c.init_pid}/root/etc/hostname").read_text() == "bb\n"
    took = c.halt(signal.SIGUSR1)
    print(f"\n[timing] busybox init halt on SIGUSR1: {took * 1000:.0f} ms")
    assert took < 5
    # rcS and the shutdown actions stay quiet even without CAP_SYS_ADMIN
    assert [line for line in c.console().splitlines() if line.strip()] == [
        "The system is going down NOW!", "Sent SIGTERM to all processes",
        "Sent SIGKILL to all processes", "Requesting system halt"]


@needs_boot
def test_boot_keeps_host_configured_address_and_halts_on_sigpwr(tmp_path: Path, boot) -> None:
    rootfs = _make_busybox(tmp_path)
    c = boot(rootfs, _VETH + "ip addr add 10.232.0.9/24 dev eth0; ip link set eth0 up; "
                             "ip route add default via 10.232.0.1")
    assert c.wait_for(lambda: _booted(rootfs) and (rootfs / "etc/resolv.conf").read_text() != "")
    assert (rootfs / "etc/resolv.conf").read_text() == "nameserver 10.232.0.1\n"
    # no DHCP client when the host side addressed eth0
    comms = [Path(f"/proc/{p}/comm").read_text().strip()
             for p in Path(f"/proc/{c.init_pid}/task/{c.init_pid}/children").read_text().split()]
    assert "udhcpc" not in comms and "syslogd" in comms
    took = c.halt(signal.SIGPWR)
    assert took < 5


@needs_boot
@pytest.mark.skipif(not shutil.which("dnsmasq"), reason="dnsmasq is not installed")
def test_boot_dhcp(tmp_path: Path, boot) -> None:
    rootfs = _make_busybox(tmp_path)
    # A DHCP server on the peer end, inside the container's own network namespace.
    # --no-ping: dnsmasq otherwise pings a new address before offering it and answers the
    # first DISCOVER only ~3 s later.
    server = ("ip link set eth0 up; ip addr add 10.233.0.1/24 dev host0; ip link set lo up; "
              "dnsmasq --conf-file=/dev/null --interface=host0 --bind-interfaces --port=0 --no-ping "
              f"--dhcp-range=10.233.0.50,10.233.0.60,1h --dhcp-leasefile={tmp_path}/leases "
              f"--pid-file={tmp_path}/dnsmasq.pid --dhcp-option=6,10.233.0.1 --domain=pyl.test")
    c = boot(rootfs, _VETH + server)
    start = time.monotonic()
    assert c.wait_for(lambda: "nameserver 10.233.0.1" in (rootfs / "etc/resolv.conf").read_text(),
                      timeout=15), (rootfs / "var/log/messages").read_text()
    print(f"\n[timing] DHCP lease after {(time.monotonic() - start) * 1000:.0f} ms")
    assert "search pyl.test" in (rootfs / "etc/resolv.conf").read_text()
    assert re.search(r"inet 10\.233\.0\.(5\d|60)/24 ", c.netns("ip", "-4", "addr", "show", "eth0"))
    assert "default via 10.233.0.1 dev eth0" in c.netns("ip", "-4", "route")
    assert c.halt(signal.SIGUSR1) < 5
