"""Attacks from inside a real root container with the default confinement. Each must fail."""

from __future__ import annotations

import os


from tests.conftest import ROOT, requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]



def sh(pyl, script: str):
    return pyl("attach", "-n", "c1", "--", "sh", "-c", script)


def test_cannot_load_kernel_modules(running):
    # busybox insmod/modprobe use init_module/finit_module: denied by seccomp and the dropped cap
    r = sh(running, "echo x > /tmp/m.ko; insmod /tmp/m.ko")
    assert r.returncode != 0
    assert "CapBnd" in sh(running, "grep CapBnd /proc/self/status").stdout
    bnd = int(sh(running, "grep CapBnd /proc/self/status").stdout.split()[1], 16)
    assert not bnd & (1 << 16)  # CAP_SYS_MODULE


def test_cannot_mknod_block_devices(running):
    r = sh(running, "mknod /tmp/sda b 8 0 && head -c 1 /tmp/sda")
    assert r.returncode != 0
    r = sh(running, "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem")
    assert r.returncode != 0  # /dev/mem is not on the allow-list


def test_cannot_remount_root_or_write_proc_sys(running):
    assert sh(running, "echo 1 > /proc/sys/kernel/sysrq").returncode != 0
    assert sh(running, "echo 1 > /proc/sys/vm/drop_caches").returncode != 0
    assert sh(running, "touch /sys/kernel/pyl-test").returncode != 0
    assert sh(running, "echo c > /proc/sysrq-trigger").returncode != 0 or not os.path.exists("/proc/sysrq-trigger")
    # remounting the container's / read-write over the host's filesystem options, or proc rw
    assert sh(running, "mount -o remount,rw /proc/sys").returncode != 0
    assert sh(running, "mount -o remount,rw /sys").returncode != 0


def test_cannot_escape_root(running):
    host_marker = "/tmp/pyl-escape-marker"
    with open(host_marker, "w") as f:
        f.write("host\n")
    try:
        # classic chroot escape: chroot into a subdir, then climb with ..
        r = sh(running, "mkdir -p /x && cd / && chroot /x /bin/true; ls /tmp/pyl-escape-marker")
        assert r.returncode != 0
        r = sh(running, "cat /proc/1/root/tmp/pyl-escape-marker")
        assert r.returncode != 0
        # the host's PID 1 is not visible
        assert "init" in sh(running, "cat /proc/1/comm").stdout
        # mounting the host disk would need the block device, which is not there or denied
        assert sh(running, "mkdir -p /mnt/h && mount /dev/vda /mnt/h").returncode != 0
    finally:
        os.unlink(host_marker)


def test_kexec_and_bpf_denied(running):
    # busybox has no kexec; check the seccomp filter is installed in attached processes
    status = sh(running, "grep Seccomp: /proc/self/status").stdout
    assert status.split()[1] == "2"


def test_host_fds_and_attacher_out_of_reach(running, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    fd = os.open(secret, os.O_RDONLY)  # inherited by pyl-attach if it did not close fds
    try:
        os.set_inheritable(fd, True)
        r = running("attach", "-n", "c1", "--", "sh", "-c", "ls -l /proc/self/fd; cat /proc/self/fd/%d" % fd)
        assert "host secret" not in r.stdout
        # no process in the container may read another's /proc/PID/exe of a host binary:
        # every process visible inside runs a binary from the container's rootfs
        r = running("attach", "-n", "c1", "--", "sh", "-c",
                    "for p in /proc/[0-9]*; do readlink $p/exe; done")
        assert "python" not in r.stdout
    finally:
        os.close(fd)


def test_cwd_is_never_a_host_path(running, tmp_path):
    os.chdir(tmp_path)
    try:
        r = running("attach", "-n", "c1", "--", "pwd")
        assert r.stdout.strip() == "/"
    finally:
        os.chdir(ROOT)
