"""Attacks from inside a real root container with the default config, past what
test_security_inside covers: the host's kernel facilities reachable by syscalls on every ABI
(keyrings, BPF, perf), the host's system console, the window in which a process entering the
container is still a fork of the host's supervisor, and host terminals handed to the container.

Busybox has no tool for most of these, so each attack is a small static C program compiled on
the host (gcc) and copied into the container's rootfs. Every one must fail.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import NO_NET, requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox,
              pytest.mark.skipif(os.uname().machine != "x86_64", reason="the probes are x86_64 code")]

# --- the attack programs --------------------------------------------------------------------------

PROBE_C = r"""
// Each call with arguments that fail harmlessly when it reaches the kernel (EINVAL, EFAULT,
// EOPNOTSUPP...), through the x86_64, the i386 (int 0x80) and the x32 entry points. Prints
// "NAME ABI ERRNO"; a filtered call fails with EPERM.
#define _GNU_SOURCE
#include <stdio.h>
#include <errno.h>
#include <unistd.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/syscall.h>

static sigjmp_buf no_i386;
static void on_fault(int sig) { (void)sig; siglongjmp(no_i386, 1); }
static long i386_call(long nr, long a, long b, long c, long d, long e) {
    long ret;
    asm volatile ("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d), "D"(e) : "memory");
    return ret;
}
struct probe { const char *name; long n64, n32, nx32; long a, b, c, d, e; };
static const struct probe P[] = {
    {"kexec_load", 246, 283, 528, 0, 0, 0, 0xFFFF0000, 0},
    {"kexec_file_load", 320, -1, 320, -1, -1, 0, 0, 0xFFFF0000},
    {"init_module", 175, 128, 175, 0, 0, 0, 0, 0},
    {"finit_module", 313, 350, 313, -1, 0, 0, 0, 0},
    {"delete_module", 176, 129, 176, 0, 04000, 0, 0, 0},
    {"open_by_handle_at", 304, 342, 304, -1, 0, 0, 0, 0},
    {"bpf", 321, 357, 321, 0xFFFF, 0, 0, 0, 0},
    {"perf_event_open", 298, 336, 298, 0, 0, -1, -1, 0},
    {"keyctl", 250, 288, 250, 0xFFFF, 0, 0, 0, 0},
    {"add_key", 248, 286, 248, 0, 0, 0, 0, 0},
    {"request_key", 249, 287, 249, 0, 0, 0, 0, 0},
    {"userfaultfd", 323, 374, 323, 0xFFFFFFFF, 0, 0, 0, 0},
};
int main(void) {
    // Without IA32 emulation int 0x80 faults: then there is no i386 entry point to check.
    int have_i386 = 0;
    signal(SIGSEGV, on_fault);
    if (!sigsetjmp(no_i386, 1)) have_i386 = i386_call(20, 0, 0, 0, 0, 0) > 0;
    signal(SIGSEGV, SIG_DFL);
    for (unsigned i = 0; i < sizeof P / sizeof *P; i++) {
        const struct probe *p = &P[i];
        errno = 0;
        long r = syscall(p->n64, p->a, p->b, p->c, p->d, p->e);
        printf("%s x86_64 %d\n", p->name, r < 0 ? errno : 0);
        if (p->n32 >= 0 && have_i386) {
            r = i386_call(p->n32, p->a, p->b, p->c, p->d, p->e);
            printf("%s i386 %d\n", p->name, r < 0 && r > -4096 ? (int)-r : 0);
        }
        errno = 0;
        r = syscall(p->nx32 | 0x40000000, p->a, p->b, p->c, p->d, p->e);
        // Without x32 in the kernel an unfiltered call is ENOSYS; the filter still says EPERM.
        printf("%s x32 %d\n", p->name, r < 0 ? errno : 0);
    }
    return 0;
}
"""

KEYS_C = r"""
// add NAME: put a secret into the calling root's user keyring (run on the host).
// del NAME: take it out again. read NAME: find and print it (run in the container).
#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/keyctl.h>
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    if (!strcmp(argv[1], "add"))
        return syscall(SYS_add_key, "user", argv[2], "host-secret", 11, KEY_SPEC_USER_KEYRING) < 0;
    long id = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", argv[2], 0);
    if (id < 0) { printf("search: %s\n", strerror(errno)); return 1; }
    if (!strcmp(argv[1], "del")) return syscall(SYS_keyctl, KEYCTL_UNLINK, id, KEY_SPEC_USER_KEYRING) < 0;
    char buf[64] = {0};
    long n = syscall(SYS_keyctl, KEYCTL_READ, id, buf, sizeof buf - 1);
    printf("read: %s\n", n > 0 ? buf : strerror(errno));
    return 0;
}
"""

RACER_C = r"""
// For SECONDS, watch /proc for processes whose executable is not a file of this container
// (a fork of the host's supervisor on its way into the container, CVE-2019-5736 and
// CVE-2016-9962): read their exe, environ, maps, mem and fds, and ptrace them. Prints
// "seen=N leaks=M"; every success is a leak.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static int leaks, seen;
static void leak(int pid, const char *what) { if (leaks++ < 20) printf("LEAK pid %d: %s\n", pid, what); }
static int can_open(const char *fmt, int pid, int flags) {
    char path[64]; snprintf(path, sizeof path, fmt, pid);
    int fd = open(path, flags);
    if (fd < 0) return 0;
    close(fd); return 1;
}
int main(int argc, char **argv) {
    time_t end = time(NULL) + atoi(argv[1]);
    while (time(NULL) < end) {
        DIR *d = opendir("/proc"); struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 1 || pid == getpid()) continue;
            char path[64], target[512]; snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_RDONLY);
            if (fd < 0) { if (errno == EACCES || errno == EPERM) seen++; continue; }
            // The opened file's name as this process sees it (not the target's, which may
            // exit meanwhile): outside our root it is the host's name for it.
            struct stat host, inside;
            char self[64]; snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(self, target, sizeof target - 1);
            target[n > 0 ? n : 0] = 0;
            fstat(fd, &host); close(fd);
            if (stat(target, &inside) == 0 && inside.st_dev == host.st_dev && inside.st_ino == host.st_ino)
                continue;  // a binary of this container
            seen++;
            leak(pid, "opened /proc/PID/exe: a host binary");
            if (can_open("/proc/%d/environ", pid, O_RDONLY)) leak(pid, "environ");
            if (can_open("/proc/%d/maps", pid, O_RDONLY)) leak(pid, "maps");
            if (can_open("/proc/%d/mem", pid, O_RDONLY)) leak(pid, "mem");
            snprintf(path, sizeof path, "/proc/%d/fd/0", pid);
            if (readlink(path, target, sizeof target) >= 0) leak(pid, "fd/0");
            if (ptrace(PTRACE_SEIZE, pid, 0, 0) == 0) {
                leak(pid, "ptrace");
                if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) == 0) waitpid(pid, NULL, __WALL);
                ptrace(PTRACE_DETACH, pid, 0, 0);
            }
        }
        closedir(d);
    }
    printf("seen=%d leaks=%d\n", seen, leaks);
    return 0;
}
"""

TTYGRAB_C = r"""
// For SECONDS, look for a process whose stdout is a terminal that is not one of this
// container's (its devpts, its console and ttys): a terminal of the host, handed in by
// pyl-attach. Reopen it through /proc/PID/fd/1, wait until that process is gone, then write
// to it: the user's shell now owns that terminal.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
int main(int argc, char **argv) {
    const char *own[] = {"/dev/pts/ptmx", "/dev/console", "/dev/tty1", "/dev/tty2", "/dev/tty3", "/dev/tty4"};
    struct stat mine[6];
    for (int i = 0; i < 6; i++) if (stat(own[i], &mine[i])) mine[i].st_rdev = 0;
    time_t end = time(NULL) + atoi(argv[1]);
    while (time(NULL) < end) {
        DIR *d = opendir("/proc"); struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 1 || pid == getpid()) continue;
            char path[64]; snprintf(path, sizeof path, "/proc/%d/fd/1", pid);
            struct stat st;
            if (stat(path, &st) || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 136 || st.st_dev == mine[0].st_dev)
                continue;
            int ours = 0;
            for (int i = 1; i < 6; i++) ours |= st.st_rdev == mine[i].st_rdev;
            if (ours) continue;
            int fd = open(path, O_RDWR | O_NOCTTY);
            if (fd < 0) continue;
            printf("grabbed the terminal of pid %d\n", pid); fflush(stdout);
            while (kill(pid, 0) == 0) usleep(10000);
            dprintf(fd, "\r\nINJECTED-BY-THE-CONTAINER\r\n");
            return 1;
        }
        closedir(d);
    }
    printf("no host terminal\n");
    return 0;
}
"""

SOURCES = {"probe": PROBE_C, "keys": KEYS_C, "racer": RACER_C, "ttygrab": TTYGRAB_C}


@pytest.fixture(scope="session")
def attack_tools(tmp_path_factory) -> dict[str, Path]:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("needs gcc (with the static glibc, libc6-dev) to build the attack programs")
    out = tmp_path_factory.mktemp("attack-tools")
    tools = {}
    for name, source in SOURCES.items():
        (out / f"{name}.c").write_text(source)
        built = subprocess.run([gcc, "-static", "-O1", "-o", str(out / name), str(out / f"{name}.c")],
                               capture_output=True, text=True)
        if built.returncode != 0:
            pytest.skip(f"cannot build a static {name}: {built.stderr.strip()[-300:]}")
        tools[name] = out / name
    return tools


def install(pyl, tools: dict[str, Path], *names: str, container: str = "c1") -> None:
    for name in names:
        shutil.copy2(tools[name], pyl.lxcpath / container / "rootfs" / "bin" / name)


def sh(pyl, script: str):
    return pyl("attach", "-n", "c1", "--", "sh", "-c", script)


# --- kernel facilities the host shares ----------------------------------------------------------

# Calls that reach past every namespace (see seccomp_policy.DEFAULT_POLICY). configs/common.seccomp
# used to carry only LXC's five, so a default container could read root's keyrings on the host
# and, with CAP_BPF and CAP_PERFMON kept, trace the host kernel.
DENIED = ("kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "open_by_handle_at",
          "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd")


def test_host_reaching_syscalls_fail_with_eperm_on_every_abi(running, attack_tools):
    install(running, attack_tools, "probe")
    r = running("attach", "-n", "c1", "--", "/bin/probe")
    results = {}
    for line in r.stdout.split("\n"):
        if line.strip():
            name, abi, err = line.split()
            results[(name, abi)] = int(err)
    assert {name for name, _ in results} == set(DENIED), r.stdout + r.stderr
    assert {abi for _, abi in results} >= {"x86_64", "x32"}
    wrong = {key: err for key, err in results.items() if err != 1}
    assert not wrong, f"reached the kernel (errno != EPERM): {wrong}"


def test_host_root_keyring_is_out_of_reach(running, attack_tools):
    install(running, attack_tools, "keys")
    name = f"pyl-test-{os.getpid()}-{time.monotonic_ns()}"
    subprocess.run([str(attack_tools["keys"]), "add", name], check=True)
    try:
        r = running("attach", "-n", "c1", "--", "/bin/keys", "read", name)
        assert "host-secret" not in r.stdout
        assert r.returncode != 0
    finally:
        subprocess.run([str(attack_tools["keys"]), "del", name], check=False)


def test_bpf_perfmon_and_ptrace_capabilities_are_dropped(running):
    # CAP_BPF + CAP_PERFMON: tracing programs that read kernel memory and write other
    # processes' memory. CAP_SYS_PTRACE: lets root inside read and trace the non-dumpable host
    # processes that enter the container (pyl-attach, pyl-execute's init) before they exec.
    fields = dict(line.split(":\t") for line in sh(running, "grep ^Cap /proc/self/status").stdout.splitlines())
    for key in ("CapBnd", "CapEff", "CapPrm"):
        mask = int(fields[key], 16)
        for name, bit in (("sys_ptrace", 19), ("perfmon", 38), ("bpf", 39)):
            assert not mask & 1 << bit, f"{key} keeps {name}"


def test_host_system_console_cannot_be_opened(running):
    # c 5:1 is the host's /dev/console (its serial console: the admin's login prompt). The
    # container's own /dev/console is a pty (c 136:N), so the allow-list has no use for 5:1.
    r = sh(running, "mknod /tmp/hostconsole c 5 1 && (exec 3<>/tmp/hostconsole) && echo OPENED")
    assert "OPENED" not in r.stdout
    assert "Operation not permitted" in r.stderr


# --- the supervisor's forks in the container ----------------------------------------------------

def test_execute_init_is_out_of_reach(pyl):
    # pyl-execute's init is a fork of the supervisor that never execs: its memory holds the
    # supervisor's (other containers' console scrollback), its environ the supervisor's, its exe
    # the host's python. Root in the container must reach none of it.
    pyl.env["PYL_TEST_SUPERVISOR_SECRET"] = "s3cr3t-of-the-host"
    pyl.ok("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    r = pyl("execute", "-n", "c1", "--", "sh", "-c",
            "cat /proc/1/environ; echo; head -c 4 /proc/1/exe && echo EXE-READ; cat /proc/1/maps;"
            "(exec 3</proc/1/mem) && echo MEM-OPENED; readlink /proc/1/fd/0 && echo FD-READ;"
            "readlink /proc/1/cwd && echo CWD-READ; true")
    assert r.returncode == 0, r.stderr
    assert "s3cr3t-of-the-host" not in r.stdout
    assert "PATH=" not in r.stdout
    for leaked in ("EXE-READ", "python", "MEM-OPENED", "FD-READ", "CWD-READ"):
        assert leaked not in r.stdout, r.stdout


def test_attaching_process_is_out_of_reach_before_it_execs(running, attack_tools):
    install(running, attack_tools, "racer")
    racer = running.popen("attach", "-n", "c1", "--", "/bin/racer", "6", stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            running("attach", "-n", "c1", "--", "true", timeout=30)
        out, err = racer.communicate(timeout=30)
    finally:
        if racer.poll() is None:
            racer.kill()
            racer.wait()
    report = out.decode(errors="replace")
    assert "leaks=0" in report, report + err.decode(errors="replace")


def test_host_terminal_is_never_handed_to_the_container(running, attack_tools):
    # stdin a pipe (so no pty is made) but stdout/stderr the user's terminal: `echo ... |
    # pyl-attach` from a shell. Root in the container must not be able to keep that terminal
    # (and write to it, or read what the user types next) once pyl-attach has returned.
    install(running, attack_tools, "ttygrab")
    grab = running.popen("attach", "-n", "c1", "--", "/bin/ttygrab", "6", stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    master, slave = pty.openpty()
    try:
        time.sleep(0.5)
        r = subprocess.run(running.argv("attach", "-n", "c1", "--", "sh", "-c", "echo from-inside; sleep 0.5"),
                           env=running.env, stdin=subprocess.PIPE, stdout=slave, stderr=slave, timeout=30)
        assert r.returncode == 0
        received = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                received += os.read(master, 4096)
        grab_out, _ = grab.communicate(timeout=30)
    finally:
        os.close(master)
        os.close(slave)
        if grab.poll() is None:
            grab.kill()
            grab.wait()
    assert b"from-inside" in received          # the command's output still reaches the terminal
    assert b"INJECTED" not in received, grab_out
    assert b"grabbed" not in grab_out
