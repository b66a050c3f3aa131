"""The start choreography: from a validated config to an exec'd container init.

Runs inside the supervisor. Plans come first (pure, every config error before any side effect),
then: the netlink worker makes the network namespace and starts setting it up (host links, then
the interfaces from inside it) -> cgroup -> clone3: PID 1 is born in its new namespaces and its
cgroup2 directory, straight from the supervisor; it joins the v1 cgroups and the worker's network
namespace (and lxc.namespace.share.* ones) -> "go": PID 1 unshares its cgroup namespace and mounts
its rootfs while the worker finishes -> "net": PID 1 applies sysctls, runs the mount hooks,
pivot_roots, says "ready" -> start-host hooks -> "exec": it confines itself and execs init.

Messages on the sync socket (PID 1 -> supervisor): "ready", "error TEXT"; supervisor -> PID 1:
"go", "net", "exec". The socket is close-on-exec: EOF without an error means init was exec'd.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from lxctools.config import lines as config_lines
from lxctools.errors import ConfigError, KernelError, PylError, StartError
from lxctools.kernel import ns
from lxctools.log import log

DEFAULT_INIT = "/sbin/init"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class StartRequest:
    name: str
    lxcpath: str
    config_file: str
    values: dict[str, Any]
    command: list[str] | None = None        # None: lxc.init.cmd / /sbin/init
    app_container: bool = False             # pyl-execute: a small init runs the command
    stdio: tuple[int, int, int] | None = None  # execute: the caller's fds
    default_bridge: str = "pylbr0"
    extra_env: dict[str, str] = field(default_factory=dict)
    rundir: str | None = None                  # to find containers named by lxc.namespace.share.*


@dataclass
class Started:
    pid: int
    starttime: int
    cgroup_plan: Any
    net_plans: tuple
    net_state: Any
    console_master: int | None
    tty_masters: list[int]
    warnings: list[str] = field(default_factory=list)


def rootfs_path(values: Mapping[str, Any], container_dir: str) -> str:
    raw = values.get("lxc.rootfs.path") or ""
    if not raw:
        return os.path.join(container_dir, "rootfs")
    return str(raw)


def _rootfs_dir_for_check(raw: str) -> str | None:
    if raw.startswith("dir:"):
        return raw[4:]
    if raw.startswith("/"):
        return raw
    return None


def init_argv(values: Mapping[str, Any], command: list[str] | None) -> list[str]:
    if command:
        return command
    cmd = values.get("lxc.init.cmd")
    if cmd:
        return shlex.split(str(cmd))
    return [DEFAULT_INIT]


def clone_flags(values: Mapping[str, Any]) -> int:
    """Namespaces to create: all by default; lxc.namespace.keep removes some (user ns: later issue)."""
    flags = (ns.CLONE_NEWNS | ns.CLONE_NEWUTS | ns.CLONE_NEWIPC | ns.CLONE_NEWPID
             | ns.CLONE_NEWNET | ns.CLONE_NEWCGROUP)
    keep = " ".join(config_lines(values.get("lxc.namespace.keep"))).split()
    for name in keep:
        if name in ns.NAMESPACES:
            flags &= ~ns.NAMESPACES[name]
    net_types = [values.get(k) for k in values if k.startswith("lxc.net.") and k.endswith(".type")]
    if "none" in net_types:
        flags &= ~ns.CLONE_NEWNET
    return flags


def start_warnings(values: Mapping[str, Any], flags: int) -> list[str]:
    """What the user should know about a start that succeeded."""
    warnings = []
    if not flags & ns.CLONE_NEWNET and "lxc.namespace.share.net" not in values:
        warnings.append("the container shares the host's network namespace (lxc.net.N.type = none or "
                        "lxc.namespace.keep): its network is not isolated")
    return warnings


SHAREABLE = ("net", "ipc", "uts")


def shared_namespaces(values: Mapping[str, Any], *, lxcpath: str, rundir: str | None) -> dict[str, int]:
    """lxc.namespace.share.<ns> = PID | container name (same lxcpath) | /path/to/container (its
    lxcpath and name, as LXC) -> {ns: pid to join}."""
    wanted: dict[str, int] = {}
    for key, raw in values.items():
        if not key.startswith("lxc.namespace.share."):
            continue
        kind, target = key.rsplit(".", 1)[1], str(raw).strip()
        if not target:
            continue
        if kind not in SHAREABLE:
            raise StartError(f"{key}: pyl can share only {', '.join(SHAREABLE)} namespaces")
        if target.isdigit():
            pid = int(target)
        else:
            from lxctools.errors import InvalidNameError
            from lxctools.names import validate_name
            from lxctools.paths import Layout
            from lxctools.runstate import read_runstate
            if rundir is None:
                raise StartError(f"{key}: give a PID (no run dir to look up '{target}')")
            where, name = lxcpath, target
            if "/" in target:
                if not os.path.isabs(target):
                    raise ConfigError(f"{key} = {target}: a container in another lxcpath is named by its "
                                      "absolute path (/path/to/container)")
                where, name = os.path.split(os.path.normpath(target))
            try:
                validate_name(name)
            except InvalidNameError as err:
                raise InvalidNameError(f"{key} = {target}: {err.message}") from None
            other = read_runstate(Layout(where, rundir), name)
            if other.pid is None:
                raise StartError(f"{key}: container '{target}' is not running")
            pid = other.pid
        if not os.path.exists(f"/proc/{pid}/ns/{kind}"):
            raise StartError(f"{key}: no process {pid}")
        wanted[kind] = pid
    return wanted


def start_container(req: StartRequest) -> Started:
    from lxctools.runtime import cgroups, rootfs, security

    values = req.values
    container_dir = os.path.join(req.lxcpath, req.name)
    raw_rootfs = rootfs_path(values, container_dir)
    check_dir = _rootfs_dir_for_check(raw_rootfs)
    if check_dir is not None and not os.path.isdir(check_dir):
        what = "is not a directory" if os.path.exists(check_dir) else "does not exist"
        raise StartError(f"rootfs '{check_dir}' {what}")
    if values.get("lxc.idmap"):
        # Starting it without the user namespace would turn an unprivileged container into a
        # root one: refuse rather than run it with less isolation than its config asks for.
        raise StartError("lxc.idmap (user namespaces, unprivileged containers) is not supported yet: "
                         "refusing to start this container as a privileged one")
    argv = init_argv(values, req.command)
    tty_count = int(values.get("lxc.tty.max") or 0)

    # Plans: pure, so every config error surfaces here, before anything is created.
    log.debug("start", f"{req.name}: planning")
    cg_layout = cgroups.detect_layout()
    cg_plan = cgroups.plan_cgroup(values, name=req.name, layout=cg_layout)
    fs_plan = rootfs.plan_rootfs(values, rootfs=raw_rootfs, tty_count=tty_count,
                                 container_name=req.name)
    sec_plan = security.compiled(security.plan_security(values))  # the init only installs the filter
    net_plans: tuple = ()
    if any(k.startswith("lxc.net.") for k in values):
        from lxctools.runtime import netplan
        net_plans = netplan.plan_networks(values, container_name=req.name, default_bridge=req.default_bridge)
    flags = clone_flags(values)
    shared = shared_namespaces(values, lxcpath=req.lxcpath, rundir=req.rundir)
    for kind in shared:
        flags &= ~ns.NAMESPACES[kind]
    if "net" in shared:
        net_plans = ()  # the joined namespace's interfaces are someone else's: lxc.net.* is ignored

    console_master, console_slave = os.openpty()
    tty_pairs = [os.openpty() for _ in range(tty_count)]
    for fd in (console_master, *(m for m, _ in tty_pairs)):
        os.set_inheritable(fd, False)
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    os.set_inheritable(child_sock.fileno(), False)

    # What PID 1 needs after pivot_root (the host's stdlib and libseccomp out of reach), loaded
    # here before the fork: once per supervisor, not in every child.
    from lxctools.runtime.procsetup import preload_for_children
    preload_for_children(seccomp=sec_plan.seccomp is not None)
    hook_env_base = {"LXC_ROOTFS_MOUNT": raw_rootfs.removeprefix("dir:"), **req.extra_env}
    created_cgroup = False
    pid = None
    net_state = None
    net_begun = False      # the worker is setting up a namespace it made (WORKER.end() owed)
    share_fds: dict[str, int] = {}
    fork_flags = flags
    try:
        from lxctools.runtime.hooks import run_hooks
        run_hooks(values, "pre-start", name=req.name, config_file=req.config_file, extra_env=hook_env_base)
        if net_plans and flags & ns.CLONE_NEWNET:
            # The netlink worker makes the container's network namespace and sets it up while
            # PID 1 is cloned and mounts its rootfs (~8 ms of pyroute2 no longer after those);
            # PID 1 joins it, as it would a lxc.namespace.share.net one.
            from lxctools.runtime.networker import WORKER
            log.debug("start", f"{req.name}: network namespace from the netlink worker")
            share_fds["net"] = WORKER.begin("setup_new_netns", net_plans, req.lxcpath)
            net_begun = True
            fork_flags = flags & ~ns.CLONE_NEWNET
        log.debug("start", f"{req.name}: creating cgroup")
        cg_plan = _create_cgroup(cgroups, values, req.name, cg_layout)
        log.debug("start", f"{req.name}: forking")
        created_cgroup = True
        for kind, owner in shared.items():
            share_fds[kind] = ns.open_ns(owner, kind)
        keep_fds = {child_sock.fileno(), console_slave, *(s for _, s in tty_pairs), *share_fds.values()}
        if req.stdio:
            keep_fds.update(req.stdio)
        pid, join_v2 = _clone_init(cg_plan, fork_flags & ~ns.CLONE_NEWCGROUP)
        if pid == 0:
            _born(req, child_sock, keep_fds, cg_plan, join_v2, share_fds, argv, fs_plan, sec_plan,
                  console_slave, [s for _, s in tty_pairs], hook_env_base,
                  new_cgroupns=bool(fork_flags & ns.CLONE_NEWCGROUP))
        child_sock.close()
        for fd in share_fds.values():
            os.close(fd)
        share_fds = {}
        os.close(console_slave)
        for _, slave in tty_pairs:
            os.close(slave)
        reader = parent_sock.makefile("rb")
        # "go": init mounts its rootfs while the network is set up here; "net": its interfaces
        # are configured, it may finish (sysctls, hooks, pivot_root) and say "ready".
        _tell_init(parent_sock, b"go\n")
        log.debug("start", f"{req.name}: init is {pid}; host network")
        if net_plans:
            # Host links and their configuration inside the container's namespace, both done by
            # the netlink worker (pyroute2 lives there, not in the supervisor: see networker).
            from lxctools.runtime.networker import WORKER
            try:
                if net_begun:
                    net_begun = False
                    net_state = WORKER.end("setup_new_netns")
                    net_state.pid = pid
                else:  # a network namespace of init's own making (lxc.namespace.clone without net)
                    net_state = WORKER.call("setup", net_plans, pid, req.lxcpath)
            except PylError:
                # init may have failed first (a mount), and the network setup then found it
                # gone: init's own error is the one worth reporting.
                early = _reported_error(parent_sock, reader)
                if early is not None:
                    raise early from None
                raise
        _tell_init(parent_sock, b"net\n")
        log.debug("start", f"{req.name}: waiting for the container's own setup")
        # PID 1 mounts its rootfs (pre-mount/mount/autodev hooks), then says "ready"; start-host
        # hooks run now, between the container's setup and its init, as in LXC.
        line = _line(reader)
        if line == "ready":
            log.debug("start", f"{req.name}: setup done, start-host hooks, exec")
            run_hooks(values, "start-host", name=req.name, config_file=req.config_file,
                      extra_env={**hook_env_base, "LXC_PID": str(pid)})
            parent_sock.sendall(b"exec\n")
            rest = _rest(reader)
        else:
            rest = line + _rest(reader)
        if rest:
            raise _child_error(rest)
        from lxctools.runstate import process_starttime
        # An application container's command may be done already: its init is then a zombie
        # that the supervisor reaps next; a system container's init must still be alive.
        starttime = process_starttime(pid, allow_zombie=req.app_container)
        if starttime is None:
            raise StartError(f"init '{argv[0]}' exited at once")
        return Started(pid=pid, starttime=starttime, cgroup_plan=cg_plan, net_plans=net_plans,
                       net_state=net_state, console_master=console_master,
                       tty_masters=[m for m, _ in tty_pairs],
                       warnings=start_warnings(values, flags) + list(sec_plan.warnings)
                       + cgroups.ignored_limits(values, cg_plan))
    except BaseException as err:
        if pid is not None:
            _kill_and_reap(pid)
        for fd in share_fds.values():
            os.close(fd)
        if net_begun:  # the worker's answer is owed: take it, and undo what it made
            from lxctools.runtime.networker import WORKER
            try:
                net_state = WORKER.end("setup_new_netns")
            except PylError:
                pass  # it failed and cleaned up after itself
            except BaseException:
                WORKER.stop()  # interrupted (^C): its answer will never be read; start afresh
        if created_cgroup:
            try:
                cgroups.kill_all(cg_plan, signal.SIGKILL)
                cgroups.destroy(cg_plan)
            except PylError as cleanup_err:
                log.error("start", f"cleanup of cgroup failed: {cleanup_err}")
        if net_state is not None:
            from lxctools.runtime.networker import WORKER
            try:
                WORKER.call("teardown", net_state)
            except PylError as cleanup_err:  # the start's own error is the one to report
                log.error("start", f"cleanup of the network failed: {cleanup_err}")
        os.close(console_master)
        for master, _ in tty_pairs:
            os.close(master)
        if isinstance(err, (PylError, KeyboardInterrupt)):
            raise
        raise StartError(f"start failed: {err}") from err
    finally:
        parent_sock.close()


def _child_error(text: str) -> StartError:
    """The error a start's child reported: "error TEXT", or "error@CODE TEXT" with an exit code."""
    if text.startswith("error@"):
        code, _, message = text[6:].partition(" ")
        return StartError(message, exit_code=int(code))
    return StartError(text.removeprefix("error "))


def _reported_error(sock: socket.socket, reader: Any) -> StartError | None:
    """The error PID 1 reported already, if any (it writes it before it exits)."""
    import select
    if not select.select([sock], [], [], 0.05)[0]:
        return None
    line = _line(reader)
    return _child_error(line) if line.startswith("error") else None


# A child that exits with our "net" or "exec" still unread in its socket resets the connection
# (unix stream sockets): once what it wrote before exiting has been read, the next read fails
# with ECONNRESET instead of returning EOF. That is the end of what it said, not a failure.
def _line(reader: Any) -> str:
    try:
        return reader.readline().decode(errors="replace").strip()
    except ConnectionResetError:
        return ""


def _rest(reader: Any) -> str:
    chunks = []
    while True:
        try:
            chunk = reader.read1(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace").strip()


def _create_cgroup(cgroups: Any, values: Mapping[str, Any], name: str, layout: Any) -> Any:
    """Create pyl.payload.NAME, or NAME-1, NAME-2... when a container of the same name from
    another lxcpath holds it (as LXC does). Later lookups go by the init's PID, not the name."""
    for attempt in range(32):
        plan = cgroups.plan_cgroup(values, name=name if attempt == 0 else f"{name}-{attempt}", layout=layout)
        try:
            cgroups.create(plan)
            return plan
        except cgroups.CgroupInUse:
            continue
    raise StartError(f"no free cgroup name for {name} (pyl.payload.{name}-N all busy)")


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass



def _tell_init(sock: socket.socket, message: bytes) -> None:
    """Send PID 1 the next step. It may have failed already (in _born, or a mount) and closed
    its end: its error line is then what the reader gets next, and EPIPE here would only hide
    it ("start failed: Broken pipe")."""
    try:
        sock.sendall(message)
    except OSError:
        pass


def _clone_init(cg_plan: Any, flags: int) -> tuple[int, bool]:
    """clone3 PID 1 straight from the supervisor: born in the new namespaces of FLAGS (the PID
    namespace with it, which unshare could only give a child of a first child) and in the plan's
    cgroup2 directory (CLONE_INTO_CGROUP, so no cgroup.procs write pays an RCU grace period).
    No first child to fork, wait for and reap: ~3 ms of every start's critical path.

    Returns (pid, join_v2) in the supervisor and (0, join_v2) in PID 1; join_v2: the kernel
    refused CLONE_INTO_CGROUP for that directory (EBUSY, E2BIG), so PID 1 writes itself into it.
    A raw clone skips CPython's after-fork work, which os.fork() does for the first child it
    replaces; what matters of it here is signals. Every signal is blocked from before the clone
    until PID 1 has reset the supervisor's handlers (leave_supervisor): one sent to PID 1
    meanwhile is delivered with its default action once it unblocks, never to a supervisor
    handler. One the supervisor caught just before the block has had its Python handler run
    by the time clone3 is called (CPython runs pending handlers when a Python function is
    entered, and ns.clone3 is one), so PID 1 inherits no pending handler call either. The
    supervisor is single-threaded, which a raw clone needs (see ns.clone3)."""
    from lxctools.runtime import cgroups
    cgroup_dir = cgroups.open_v2_dir(cg_plan)
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    join_v2 = False
    try:
        if cgroup_dir is None:
            pid = ns.clone3(flags)
        else:
            try:
                pid = ns.clone3(flags, cgroup_fd=cgroup_dir)
            except KernelError as err:
                log.debug("start", f"clone3 into {cg_plan.unified.path}: {err.message}; init joins it itself")
                join_v2 = True
                pid = ns.clone3(flags)
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)  # nothing was cloned
        raise
    finally:
        if cgroup_dir is not None:
            os.close(cgroup_dir)
    if pid:  # PID 1 unblocks once its handlers are the defaults (_born)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return pid, join_v2


def _born(req, sock, keep_fds, cg_plan, join_v2, share_fds, argv, fs_plan, sec_plan,
          console_slave, tty_slaves, hook_env, new_cgroupns: bool) -> None:
    """PID 1, just cloned: leave the supervisor behind, join the v1 cgroups (and the cgroup2
    directory if it was not born there), then the namespaces made elsewhere (the worker's
    network namespace, lxc.namespace.share.*); the rest is _container_init. Never returns.

    The v1 hierarchies are joined by writing "0" to ``tasks`` (no RCU grace period, see
    cgroups.enter_v1). PID 1 unshares its cgroup namespace after "go", in every final cgroup."""
    try:
        from lxctools.runtime import cgroups
        from lxctools.runtime.procsetup import close_other_fds, leave_supervisor
        leave_supervisor()  # handlers and mask back to the defaults, in that order
        close_other_fds(keep_fds)
        cgroups.enter_v1(cg_plan)
        if join_v2:
            cgroups.attach_v2(cg_plan, 0)
        for kind, fd in share_fds.items():  # lxc.namespace.share.*: joined, not created
            ns.setns(fd, ns.NAMESPACES[kind])
            os.close(fd)
    except BaseException as err:  # report, never return into the supervisor's code
        _report_and_exit(sock, err)
    _container_init(req, sock, argv, fs_plan, sec_plan, console_slave, tty_slaves, hook_env,
                    new_cgroupns=new_cgroupns)


def _report_and_exit(sock: socket.socket, err: BaseException) -> None:
    try:
        text = err.message if isinstance(err, PylError) else f"{type(err).__name__}: {err}"
        sock.sendall(f"error {text}\n".encode())
    finally:
        os._exit(1)


def _container_init(req, sock, argv, fs_plan, sec_plan, console_slave, tty_slaves,
                    hook_env, new_cgroupns: bool) -> None:
    """PID 1 of the new PID namespace: finish the setup from inside and exec init. Never returns."""
    try:
        ns.set_pdeathsig(0)
        values = req.values
        reader = sock.makefile("rb")
        line = reader.readline().decode().strip()
        if line != "go":
            os._exit(1)
        if new_cgroupns:  # now in every final cgroup: they become the namespace's root
            ns.unshare(ns.CLONE_NEWCGROUP)
        uts = values.get("lxc.uts.name") or req.name
        ns.sethostname(str(uts))
        console_path = os.ttyname(console_slave)
        tty_paths = [os.ttyname(fd) for fd in tty_slaves]
        from lxctools.runtime import security
        from lxctools.runtime.procsetup import apply_proc_settings, apply_prlimits
        apply_prlimits(values)
        _mount_rootfs(req, fs_plan, console_path, tty_paths, hook_env, network=lambda: _wait_for_network(reader))
        apply_proc_settings(values, os.getpid())
        _setup_stdio(req, console_slave)
        for fd in tty_slaves:
            os.close(fd)
        env = _init_environment(values, req)
        sock.sendall(b"ready\n")
        if reader.readline().strip() != b"exec":
            os._exit(1)  # the supervisor gave up (a start-host hook failed)
        # The file object holds its own reference to the socket: without this close, an
        # application container's init (which never execs) would keep the supervisor waiting
        # for EOF until its command ended.
        reader.close()
        _run_start_hooks(values, req, env)
        cwd = str(values.get("lxc.init.cwd") or "/")
        try:
            os.chdir(cwd)
        except OSError as err:
            raise StartError(f"lxc.init.cwd '{cwd}': {err.strerror}") from None
        # Confinement before the id switch: seccomp and the bounding set need root's privileges.
        security.apply_security(sec_plan)
        _set_ids(values)
        if req.app_container:
            from lxctools.runtime.appinit import run_app_init
            run_app_init(argv, env, sock)
        _exec(argv, env, sock)
    except BaseException as err:
        _report_and_exit(sock, err)


def _wait_for_network(reader: Any) -> None:
    if reader.readline().strip() != b"net":
        os._exit(1)  # the supervisor gave up (the network setup failed) and is killing us


def _mount_rootfs(req: StartRequest, fs_plan: Any, console_path: str, tty_paths: list[str],
                  hook_env: dict[str, str], network: Callable[[], None]) -> None:
    """The rootfs plan, with LXC's hooks at their points: pre-mount (container's mount
    namespace, nothing mounted yet), mount (everything mounted, before pivot_root), autodev
    (after mount, when /dev is pyl's tmpfs). They still see the host's paths, as in LXC.

    NETWORK returns once the supervisor has configured the container's interfaces. The mounts
    run before that, while the netlink worker works (~5 ms of a start saved); the hooks and
    lxc.sysctl.* (net.ipv4.conf.eth0.* needs eth0) after it, as in LXC, where the network is
    set up inside before any hook runs."""
    from lxctools.runtime import rootfs
    from lxctools.runtime.hooks import hook_commands, run_hooks
    from lxctools.runtime.procsetup import apply_sysctls
    values = req.values
    if hook_commands(values, "pre-mount"):
        network()
        network = _nothing
    run_hooks(values, "pre-mount", name=req.name, config_file=req.config_file, extra_env=hook_env)
    root_fd = rootfs.prepare_root(fs_plan)
    try:
        rootfs.mount_operations(fs_plan, root_fd, console_path=console_path, tty_paths=tty_paths)
        network()
        # Through /proc, which is still the host's mount here (the container's own /proc/sys
        # will be read-only); namespaced sysctls (net.*, kernel.shm*...) resolve to the
        # namespaces of the writer, which are already the container's.
        apply_sysctls(values)
        run_hooks(values, "mount", name=req.name, config_file=req.config_file, extra_env=hook_env)
        if str(values.get("lxc.autodev", "1")) not in ("0", "false"):
            run_hooks(values, "autodev", name=req.name, config_file=req.config_file, extra_env=hook_env)
        rootfs.switch_root(fs_plan, root_fd)
    finally:
        os.close(root_fd)


def _nothing() -> None:
    pass


def _setup_stdio(req: StartRequest, console_slave: int) -> None:
    os.setsid()
    if req.stdio:
        fds = req.stdio
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.close(console_slave)
        return
    # No TIOCSCTTY: like the kernel's own PID 1, init gets the console as stdio but not as its
    # controlling terminal, so the getty it spawns on /dev/console can take it (without
    # CAP_SYS_ADMIN a getty cannot steal a terminal that is already init's).
    for target in (0, 1, 2):
        os.dup2(console_slave, target)
    if console_slave > 2:
        os.close(console_slave)


def _init_environment(values: Mapping[str, Any], req: StartRequest) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "container": "lxc", "TERM": "linux", "HOME": "/"}
    for item in config_lines(values.get("lxc.environment")):
        if "=" in item:
            key, _, val = item.partition("=")
            env[key] = val
        elif item in os.environ:
            env[item] = os.environ[item]
    return env


def _run_start_hooks(values: Mapping[str, Any], req: StartRequest, env: dict[str, str]) -> None:
    from lxctools.runtime.hooks import hook_commands
    if hook_commands(values, "start"):
        from lxctools.runtime.hooks import run_hooks
        run_hooks(values, "start", name=req.name, config_file=req.config_file, extra_env={})


def _set_ids(values: Mapping[str, Any]) -> None:
    uid = int(values.get("lxc.init.uid") or 0)
    gid = int(values.get("lxc.init.gid") or 0)
    groups = [int(g) for g in " ".join(config_lines(values.get("lxc.init.groups"))).replace(",", " ").split()]
    if gid or uid or groups:
        os.setgroups(groups)
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)


def _exec(argv: list[str], env: dict[str, str], sock: socket.socket) -> None:
    path = argv[0]
    try:
        if "/" not in path:
            for folder in env["PATH"].split(":"):
                candidate = os.path.join(folder, path)
                if os.access(candidate, os.X_OK):
                    path = candidate
                    break
        os.execve(path, argv, env)
    except OSError as err:
        raise StartError(f"cannot run init '{argv[0]}': {err.strerror}") from None
