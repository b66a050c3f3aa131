"""Entering a running container: namespaces, cgroup, root, confinement, then exec.

Runs in a child of the supervisor (which has everything imported, so an attach costs a fork,
not an interpreter start-up), with the caller's stdio passed over the socket:
  child:  made non-dumpable, every fd but the ones it needs closed, joins the container's
          cgroup, setns() into its namespaces (user first, mnt last: entering mnt moves root and
          cwd to the container's), forks again so the grandchild is inside the PID namespace,
          waits for it and exits with its status (128+N for a signal).
  grandchild: allocates a pty from the *container's* devpts when asked (so the caller's
          terminal is never inside: no TIOCSTI injection), sets ids, environment and cwd
          resolved inside the container (never a host path: CVE-2024-21626), re-applies the
          container's confinement and execs.
Non-dumpable until exec keeps /proc/PID/exe and /proc/PID/fd out of the container's reach
(CVE-2019-5736; only without CAP_SYS_PTRACE, which the default config drops): the only host
object the container could see is gone once exec happens. A caller's terminal among its stdio
is not handed in either: the child copies it through a pipe (see shield_terminals).
"""

from __future__ import annotations

import array
import fcntl
import os
import socket
import termios
from dataclasses import dataclass, field
from typing import Any

from lxctools.errors import NotFoundError, PylError
from lxctools.kernel import ns

ATTACH_NAMESPACES = ("user", "cgroup", "ipc", "uts", "net", "pid", "mnt")
NS_ALIASES = {"MOUNT": "mnt", "MNT": "mnt", "PID": "pid", "UTSNAME": "uts", "UTS": "uts", "IPC": "ipc",
              "USER": "user", "NETWORK": "net", "NET": "net", "CGROUP": "cgroup", "TIME": "time"}
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# <asm-generic/ioctls.h>: _IOW('T', 0x31, int) and _IOR('T', 0x30, unsigned int); the termios
# module does not export them.
TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430


@dataclass
class AttachSpec:
    pid: int
    values: dict[str, Any]
    command: list[str] | None
    namespaces: tuple[str, ...] = ATTACH_NAMESPACES
    elevated: frozenset[str] = frozenset()      # subset of CAP, CGROUP, LSM
    uid: int | None = None
    gid: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    clear_env: bool = True
    keep_vars: tuple[str, ...] = ()
    cwd: str | None = None
    pty: bool = False
    cgroup_plan: Any = None
    caller_env: dict[str, str] = field(default_factory=dict)   # the pyl-attach process's environment
    stdio: tuple[int, int, int] | None = None                   # the caller's fds (no pty)
    security_plan: Any = None                                   # cached by the supervisor


def parse_namespaces(text: str) -> tuple[str, ...]:
    wanted = set()
    for part in text.replace(",", "|").split("|"):
        part = part.strip()
        if not part:
            continue
        key = NS_ALIASES.get(part.upper())
        if key is None:
            raise PylError(f"unknown namespace '{part}' (MOUNT PID UTSNAME IPC USER NETWORK CGROUP)",
                           exit_code=64)
        wanted.add(key)
    return tuple(n for n in ATTACH_NAMESPACES if n in wanted)


def build_environment(spec: AttachSpec, passwd: tuple[str, str] | None) -> dict[str, str]:
    """Order as lxc-attach: (clear|keep) -> container=lxc -> lxc.environment -> -v values."""
    caller = spec.caller_env
    if spec.clear_env:
        env = {k: caller[k] for k in spec.keep_vars if k in caller}
        env.setdefault("PATH", DEFAULT_PATH)
        if spec.pty and "TERM" in caller:
            env["TERM"] = caller["TERM"]
        if passwd is not None:
            env.setdefault("HOME", passwd[0])
    else:
        env = dict(caller)
    env["container"] = "lxc"
    items = spec.values.get("lxc.environment") or []
    for item in [items] if isinstance(items, str) else items:
        if "=" in item:
            k, _, v = item.partition("=")
            env[k] = v
        elif item in caller:
            env[item] = caller[item]
    env.update(spec.env)
    return env


def login_shell(uid: int) -> tuple[str, str] | None:
    """(home, shell) of uid from the container's /etc/passwd (called after entering its root)."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 7 and parts[2] == str(uid):
                    return parts[5] or "/", parts[6] or "/bin/sh"
    except OSError:
        pass
    return None


def _send_fd(sock: socket.socket, fd: int) -> None:
    sock.sendmsg([b"fd\n"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])


def spawn_attached(spec: AttachSpec, report: socket.socket) -> int:
    """Fork the attach child; returns its pid. `report` gets 'pid N', an fd (pty) or 'error ...'."""
    from lxctools.runtime import security
    from lxctools.runtime.procsetup import preload_for_children
    # Compiled here, once per policy (the child only installs the filter): see security.compiled.
    spec.security_plan = security.compiled(spec.security_plan or security.plan_security(spec.values))
    # What the grandchild needs after entering the container's mount namespace, loaded here
    # once (the supervisor keeps it) rather than in every child.
    preload_for_children(seccomp=spec.security_plan.seccomp is not None)
    ns_fds = {}
    try:
        for name in spec.namespaces:
            path = f"/proc/{spec.pid}/ns/{name}"
            if name == "user" and os.path.realpath(path) == os.path.realpath("/proc/self/ns/user"):
                continue  # same user namespace: setns would fail with EINVAL
            if os.readlink(path) == os.readlink(f"/proc/self/ns/{name}"):
                continue
            ns_fds[name] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        for fd in ns_fds.values():
            os.close(fd)
        raise NotFoundError("the container's init is gone (it stopped meanwhile)") from None
    child = os.fork()
    if child == 0:
        try:
            _child(spec, ns_fds, report)
        except BaseException as err:
            _report_error(report, err)
        os._exit(1)
    for fd in ns_fds.values():
        os.close(fd)
    return child


def _report_error(sock: socket.socket, err: BaseException) -> None:
    text = err.message if isinstance(err, PylError) else f"{type(err).__name__}: {err}"
    try:
        sock.sendall(f"error {text}\n".encode())
    except OSError:
        pass
    os._exit(1)


@dataclass(frozen=True)
class TerminalRelay:
    """SOURCE copied to SINK by the attach child: the caller's terminal into the command's stdin
    pipe, or the command's stdout/stderr pipe out to the caller's terminal (TO_TERMINAL).
    INDEX: the command's stdio slot (0, 1, 2) the pipe stands in for."""

    index: int
    source: int
    sink: int
    to_terminal: bool


def shield_terminals(stdio: tuple[int, int, int]) -> tuple[tuple[int, int, int], list[TerminalRelay]]:
    """The command's stdio for the caller's STDIO, and the copies that the child makes for it.

    A terminal of the caller is never given to the command: root in the container could reopen
    it through /proc/PID/fd/N (c 136:* is on the device allow-list, and any devpts node opens)
    and keep it once pyl-attach has returned: write to the user's terminal, read what they type
    at their next prompt. That happens whenever stdin is not a terminal but stdout or stderr is
    (``echo ls | pyl-attach -n c1 -- sh``), or with --no-pty. Each terminal becomes a pipe whose
    other end stays with the child, outside the container's PID namespace. Other fds (files,
    pipes, sockets) pass unchanged: byte-exact, as before. Every relay owns its two fds (a
    close-on-exec dup of the terminal, its pipe end, non-blocking); the terminal's own flags
    are left alone: they are shared with the caller's shell."""
    command = list(stdio)
    relays = []
    for index, fd in enumerate(stdio):
        if not os.isatty(fd):
            continue
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        terminal = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
        if index == 0:
            command[0] = read_end
            os.set_blocking(write_end, False)
            relays.append(TerminalRelay(0, terminal, write_end, to_terminal=False))
        else:
            command[index] = write_end
            os.set_blocking(read_end, False)
            relays.append(TerminalRelay(index, read_end, terminal, to_terminal=True))
    return (command[0], command[1], command[2]), relays


# After the command exits, what its pipes still hold goes out too, up to this much: a process
# it left behind may write on forever.
RELAY_DRAIN_LIMIT = 1 << 20


def relay_until_exit(relays: list[TerminalRelay], child: int) -> int:
    """Copy every relay until CHILD exits, then drain its output pipes; returns its wait status.

    One buffer per direction (a read waits until the last one is written), so a command that
    does not read its stdin never stalls its output. Writes to a terminal block (its flags are
    the caller's); a terminal or a command that went away ends that relay only."""
    import select
    import signal
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # the command closed its stdin: EPIPE, not death
    live = {relay.source: relay for relay in relays}
    pending = {relay.source: b"" for relay in relays}

    def drop(relay: TerminalRelay) -> None:
        live.pop(relay.source, None)
        for fd in (relay.source, relay.sink):
            try:
                os.close(fd)
            except OSError:
                pass

    try:
        waiter: int | None = os.pidfd_open(child)
    except (AttributeError, OSError):  # before Linux 5.3: look every 50 ms
        waiter = None
    status = None
    while status is None:
        readers = [source for source in live if not pending[source]]
        writers = [live[source].sink for source in live if pending[source]]
        ready_r, ready_w, _ = select.select(readers + ([waiter] if waiter is not None else []), writers, [],
                                            None if waiter is not None else 0.05)
        for relay in list(live.values()):
            try:
                if pending[relay.source] and relay.sink in ready_w:
                    written = os.write(relay.sink, pending[relay.source])
                    pending[relay.source] = pending[relay.source][written:]
                elif relay.source in ready_r:
                    data = os.read(relay.source, 65536)
                    if data:
                        pending[relay.source] = data
                    else:  # EOF: the command closed its output, or ^D on the terminal
                        drop(relay)
            except BlockingIOError:
                pass
            except OSError:  # EIO: the terminal hung up; EPIPE: the command closed its stdin
                drop(relay)
        if waiter is None or waiter in ready_r:
            pid, wait_status = os.waitpid(child, 0 if waiter is not None else os.WNOHANG)
            if pid:
                status = wait_status
    if waiter is not None:
        os.close(waiter)
    for relay in list(live.values()):
        if relay.to_terminal:
            _drain(relay, pending[relay.source])
        drop(relay)
    return status


def _drain(relay: TerminalRelay, data: bytes) -> None:
    copied = 0
    while True:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(relay.sink, view):]
            if copied >= RELAY_DRAIN_LIMIT:
                return
            data = os.read(relay.source, 65536)
        except OSError:  # BlockingIOError: nothing more for now; EIO: the terminal went away
            return
        if not data:
            return
        copied += len(data)


def _child(spec: AttachSpec, ns_fds: dict[str, int], report: socket.socket) -> None:
    from lxctools.runtime.procsetup import close_other_fds, leave_supervisor
    leave_supervisor()  # non-dumpable from here to the exec (see the module's docstring)
    relays: list[TerminalRelay] = []
    if spec.stdio is not None:
        stdio, relays = shield_terminals(spec.stdio)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
    elif spec.pty:
        null = os.open("/dev/null", os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(null, target)
        os.close(null)
    # Everything the grandchild needs after setns(mnt), when the host's Python stdlib and
    # libseccomp are out of reach, was loaded before the fork (spawn_attached).
    plan = spec.security_plan
    relay_fds = {fd for relay in relays for fd in (relay.source, relay.sink)}
    close_other_fds({report.fileno(), *ns_fds.values(), *relay_fds})
    # The container's cgroups: v1 hierarchies by writing "0" to their `tasks` (this process is
    # single-threaded, so that moves all of it, without the global rwsem whose write side waits
    # for an RCU grace period); the cgroup2 directory by having the grandchild born in it
    # (clone3 CLONE_INTO_CGROUP), which spares the grace period that a cgroup.procs write costs
    # (5-10 ms, most of what an attach spends in the kernel). The grandchild then enters the
    # cgroup namespace itself: from inside it, on an nsdelegate host, the cgroup we are in now
    # would not be visible and the clone refused.
    from lxctools.runtime import cgroups
    cgroup_dir = None
    if "CGROUP" not in spec.elevated and spec.cgroup_plan is not None:
        cgroups.enter_v1(spec.cgroup_plan)
        cgroup_dir = cgroups.open_v2_dir(spec.cgroup_plan)
    late_cgroup_ns = ns_fds.pop("cgroup", None) if cgroup_dir is not None else None
    for name in ATTACH_NAMESPACES:
        fd = ns_fds.get(name)
        if fd is not None:
            ns.setns(fd, ns.NAMESPACES[name])
            os.close(fd)
    grandchild = cgroups.fork_in_v2(spec.cgroup_plan, cgroup_dir)
    if grandchild == 0:
        try:
            for fd in relay_fds:  # the caller's terminals stay out here
                os.close(fd)
            if late_cgroup_ns is not None:
                ns.setns(late_cgroup_ns, ns.CLONE_NEWCGROUP)
                os.close(late_cgroup_ns)
            _grandchild(spec, report, plan)
        except BaseException as err:
            _report_error(report, err)
    if late_cgroup_ns is not None:
        os.close(late_cgroup_ns)
    for relay in relays:  # our copies of the command's ends: the pipes are the command's alone
        os.close(relay.index)
    report.sendall(f"pid {grandchild}\n".encode())
    report.close()
    import signal
    # Forward what reaches us (pyl-attach signals the grandchild directly; this is a safety net).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, lambda s, _f: _kill(grandchild, s))
    if relays:
        code = os.waitstatus_to_exitcode(relay_until_exit(relays, grandchild))
        os._exit(128 - code if code < 0 else code)
    while True:
        try:
            _, status = os.waitpid(grandchild, 0)
            break
        except ChildProcessError:
            os._exit(1)
    code = os.waitstatus_to_exitcode(status)
    os._exit(128 - code if code < 0 else code)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _grandchild(spec: AttachSpec, report: socket.socket, plan: Any) -> None:
    uid = spec.uid if spec.uid is not None else int(spec.values.get("lxc.init.uid") or 0)
    gid = spec.gid if spec.gid is not None else int(spec.values.get("lxc.init.gid") or 0)
    passwd = login_shell(uid)
    argv = spec.command or [passwd[1] if passwd else "/bin/sh"]
    if spec.pty:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        fcntl.ioctl(master, TIOCSPTLCK, b"\0\0\0\0")
        number = int.from_bytes(fcntl.ioctl(master, TIOCGPTN, b"\0\0\0\0"), "little")
        slave = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
        _send_fd(report, master)
        os.close(master)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for target in (0, 1, 2):
            os.dup2(slave, target)
        if slave > 2:
            os.close(slave)
    env = build_environment(spec, passwd)
    cwd = spec.cwd if spec.cwd and os.path.isdir(spec.cwd) else "/"
    os.chdir(cwd)
    # Confinement before the id switch: loading seccomp and shrinking the bounding set need
    # privileges that setresuid() to a non-root uid takes away.
    from lxctools.runtime import security
    security.drop_for_attach(plan, set(spec.elevated))
    if gid or uid:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    report.close()
    path = argv[0]
    if "/" not in path:
        for folder in env.get("PATH", DEFAULT_PATH).split(":"):
            candidate = os.path.join(folder, path)
            if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
                path = candidate
                break
    try:
        os.execve(path, argv, env)
    except OSError as err:
        os.write(2, f"pyl-attach: {argv[0]}: {err.strerror}\n".encode())
        os._exit(127 if err.errno == 2 else 126)
