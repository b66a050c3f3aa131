"""Carry out a CgroupPlan on cgroupfs: create (limits, devices), attach, destroy, and the
process-level queries (procs, populated, kill_all) plus pyl-cgroup's read_value/write_value.

Everything is plain file I/O on the directories in the plan, so unit tests run it against a fake
tree in a temp dir; only pure-v2 device control reaches lxctools.kernel.bpf (imported lazily).
"""

from __future__ import annotations

import errno
import os
import signal as _signal
import time

from lxctools.errors import BusyError, KernelError, NotFoundError, PylError, StartError, TimeoutError_, UsageError
from lxctools.kernel.files import read_file
from lxctools.runtime.cgroups.layout import V1, V2, CgroupLayout
from lxctools.runtime.cgroups.plan import MONITOR_NAME, CgroupDir, CgroupPlan


def write_file(path: str, value: str) -> None:
    """One write(2) of the whole value: cgroupfs parses each write separately."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


# ---------------------------------------------------------------- create


def _copy_cpuset(d: CgroupDir) -> None:
    # A v1 cpuset cgroup starts with empty cpus/mems and refuses tasks until both are set.
    for f in ("cpuset.cpus", "cpuset.mems"):
        mine = os.path.join(d.path, f)
        try:
            if read_file(mine).strip():
                continue
        except FileNotFoundError:
            pass
        write_file(mine, read_file(os.path.join(d.parent, f)).strip() or "\n")


def _controllers(directory: str) -> tuple[list[str], set[str]]:
    """(cgroup.controllers, cgroup.subtree_control) of a v2 directory; empty when unreadable."""
    try:
        return (read_file(os.path.join(directory, "cgroup.controllers")).split(),
                set(read_file(os.path.join(directory, "cgroup.subtree_control")).split()))
    except OSError:
        return [], set()


def _holds_processes(directory: str) -> bool:
    """A non-root cgroup with processes of its own (only non-root cgroups have cgroup.type)."""
    if not os.path.exists(os.path.join(directory, "cgroup.type")):
        return False
    try:
        return bool(read_file(os.path.join(directory, "cgroup.procs")).split())
    except OSError:
        return False


def _enable_in(directory: str, controllers: list[str], required: tuple[str, ...]) -> None:
    sc = os.path.join(directory, "cgroup.subtree_control")
    if _holds_processes(directory):
        # Enable nothing here: the kernel refuses domain controllers (EBUSY) but accepts the
        # threaded ones (cpu, cpuset, pids, perf_event), which make this cgroup a thread root:
        # every child is then "domain invalid" and moving a process into it fails EOPNOTSUPP.
        need = [c for c in controllers if c in required]
        if need:
            raise StartError(f"cannot enable cgroup2 controller '{need[0]}' in {directory}: "
                             f"it holds processes (errno {errno.EBUSY})",
                             hint="the cgroup still holds processes (no-internal-process rule): move the "
                                  "supervisor into pyl.monitor first, see plan_monitor_cgroup")
        return
    try:
        write_file(sc, " ".join("+" + c for c in controllers))
        return
    except OSError:
        pass  # the kernel applies all or nothing: retry one by one to keep what can be had
    for c in controllers:
        try:
            write_file(sc, "+" + c)
        except OSError as e:
            if c in required:
                hint = None
                if e.errno == errno.EBUSY:
                    hint = ("the cgroup still holds processes (no-internal-process rule): move the "
                            "supervisor into pyl.monitor first, see plan_monitor_cgroup")
                raise StartError(f"cannot enable cgroup2 controller '{c}' in {directory}: "
                                 f"{e.strerror} (errno {e.errno})", hint=hint) from e


def _ancestors(d: CgroupDir) -> list[str]:
    """Directories from the mount root down to the parent's parent."""
    rel = os.path.relpath(d.parent, d.mountpoint)
    parts = [] if rel == "." else rel.split(os.sep)
    return [os.path.join(d.mountpoint, *parts[:i]) for i in range(len(parts))]


def _enable_v2_controllers(d: CgroupDir, required: tuple[str, ...], all_offered: bool) -> None:
    """Enable in the parent's cgroup.subtree_control every controller it offers (as LXC does, so
    stats and later pyl-cgroup writes find their files); fail only for ``required`` ones, which are
    also enabled down the ancestors when the parent does not offer them yet (ancestors hold no
    processes, so the no-internal-process rule allows it; the parent may still hold some).
    Runs before the child's mkdir, so the child has the controllers' files when limits are written."""
    offered, enabled = _controllers(d.parent)
    absent = [c for c in required if c not in offered]
    if absent:
        for a in _ancestors(d):
            a_offered, a_enabled = _controllers(a)
            todo = [c for c in absent if c in a_offered and c not in a_enabled]
            if todo:
                _enable_in(a, todo, required)
        offered, enabled = _controllers(d.parent)
    for c in required:
        if c not in offered:
            raise StartError(
                f"cgroup2 controller '{c}' is not available in {d.parent}",
                hint="the host does not delegate it here (systemd: Delegate=yes on the unit)")
    # On hybrid hosts the v1 hierarchies carry the controllers: touch the unified parent (often the
    # host's root cgroup) only for what the config asks for. The plan's controllers (the layout's
    # view of the parent) bound the set, so a plan from a narrowed layout touches no more than it names.
    wanted = [c for c in offered if c in required or (all_offered and c in d.controllers)]
    missing = [c for c in wanted if c not in enabled]
    if missing:
        _enable_in(d.parent, missing, required)


class CgroupInUse(StartError):
    """The container's cgroup already exists and something runs in it (a container of the same
    name from another lxcpath, or a live one): the caller may pick another name."""


def _mkdir(d: CgroupDir, exclusive: bool) -> bool:
    """mkdir; True if this call created it."""
    try:
        os.mkdir(d.path, 0o755)
        return True
    except FileExistsError:
        if not exclusive:
            return False
        if _dir_populated(d):
            raise CgroupInUse(f"cgroup {d.path} already exists and holds processes")
        # Leftover of a crashed start: nothing runs there, so take it over from scratch.
        _rmdir_tree(d.path, retry=0.0)
        os.mkdir(d.path, 0o755)
        return True
    except OSError as e:
        raise StartError(f"cannot create cgroup {d.path}: {e.strerror} (errno {e.errno})") from e


def _apply_devices(plan: CgroupPlan) -> None:
    policy = plan.devices
    if policy is None:
        return
    if plan.device_backend == "v1":
        d = plan.v1_dir("devices")
        assert d is not None
        for fname, line in policy.v1_writes():
            try:
                write_file(os.path.join(d.path, fname), line)
            except OSError as e:
                key = "lxc.cgroup." + fname
                raise StartError(f"{key} = {line}: {e.strerror} (errno {e.errno})") from e
    elif plan.device_backend == "bpf":
        from lxctools.kernel import bpf  # ctypes only when a pure-v2 start needs it

        d = plan.unified
        assert d is not None
        try:
            bpf.attach_device_program(d.path, policy.default_allow, policy.bpf_rules())
        except (PylError, OSError) as e:  # KernelError, or PermissionDeniedError for EPERM
            raise StartError(f"cannot attach the device program to {d.path}: {e}",
                             hint=getattr(e, "hint", None)) from e


def create(plan: CgroupPlan) -> None:
    """mkdir in every hierarchy, then limits and device rules; undo everything on failure."""
    created: list[CgroupDir] = []
    try:
        for d in plan.dirs:
            if d.version == V2 and plan.exclusive:
                _enable_v2_controllers(d, plan.required_v2_controllers, all_offered=plan.kind == "v2")
            if _mkdir(d, plan.exclusive):
                created.append(d)
            if d.version == V1 and "cpuset" in d.controllers:
                _copy_cpuset(d)
        for s in plan.settings:
            try:
                write_file(s.file, s.value)
            except OSError as e:
                what = "no such cgroup file" if e.errno in (errno.ENOENT, errno.EACCES) and \
                    not os.path.exists(s.file) else e.strerror
                raise StartError(f"cannot set {s.key} = {s.value}: {what} (errno {e.errno})") from e
        _apply_devices(plan)
    except BaseException:
        for d in reversed(created):
            try:
                _rmdir_tree(d.path, retry=0.5)
            except PylError:
                pass
        raise


# ---------------------------------------------------------------- attach / procs


def attach(plan: CgroupPlan, pid: int) -> None:
    """Move ``pid`` into the plan's cgroup in every hierarchy."""
    for d in plan.dirs:
        _write_pid(d, "cgroup.procs", pid)


def enter_v1(plan: CgroupPlan) -> None:
    """Move the calling thread into the plan's v1 cgroups: for a single-threaded process (a
    fresh fork) the same as writing its PID to cgroup.procs, but cheap. Writing "0" to v1
    ``tasks`` is the one migration the kernel does without taking cgroup_threadgroup_rwsem,
    whose write side waits for an RCU grace period (~7 ms on a 2-vCPU VM) when it was idle."""
    for d in plan.dirs:
        if d.version == V1:
            _write_pid(d, "tasks", 0)


def attach_v2(plan: CgroupPlan, pid: int) -> None:
    """Move ``pid`` (its whole thread group) into the plan's cgroup2 directory, if any. This
    write pays the grace period above; start overlaps it with the host's network setup."""
    unified = plan.unified
    if unified is not None:
        _write_pid(unified, "cgroup.procs", pid)


def leave_monitor_cgroup(pid: int, layout: CgroupLayout) -> bool:
    """Move PID, a host daemon started from the supervisor's side (pyl-net's dnsmasq), out of
    pyl.monitor into the cgroup the supervisor came from, if LAYOUT (the caller's) sits in
    pyl.monitor: it outlives the supervisor, which could then never remove pyl.monitor (pure
    v2 only; elsewhere the supervisor does not move). True if it moved."""
    unified = layout.unified
    if layout.kind != "v2" or unified is None:
        return False
    parent, _, leaf = unified.path.rstrip("/").rpartition("/")
    if leaf != MONITOR_NAME:
        return False
    write_file(os.path.join(unified.mountpoint, parent.strip("/"), "cgroup.procs"), str(pid))
    return True


def open_v2_dir(plan: CgroupPlan) -> int | None:
    """An fd of the plan's cgroup2 directory, for clone3(CLONE_INTO_CGROUP); None without one."""
    unified = plan.unified
    if unified is None:
        return None
    try:
        return os.open(unified.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise KernelError(f"cannot open {unified.path}: {e.strerror}", e.errno) from e


def fork_in_v2(plan: CgroupPlan, cgroup_dir: int | None) -> int:
    """fork(), the child in PLAN's cgroup2 directory, open as CGROUP_DIR (closed here, in both
    processes; None, no cgroup2: a plain fork). The child is born there with
    clone3(CLONE_INTO_CGROUP), so nobody waits for an RCU grace period; before Linux 5.7 this
    process moves itself there first (cgroup.procs, which pays it) and the child follows. For
    a single-threaded caller on its way to exec: see kernel.ns.fork_into_cgroup."""
    if cgroup_dir is None:
        return os.fork()
    from lxctools.kernel import ns
    try:
        return ns.fork_into_cgroup(cgroup_dir)
    except PylError:
        attach_v2(plan, os.getpid())
        return os.fork()
    finally:
        os.close(cgroup_dir)


def _write_pid(d: CgroupDir, file: str, pid: int) -> None:
    try:
        write_file(os.path.join(d.path, file), str(pid))
    except OSError as e:
        who = f"pid {pid}" if pid else "the process"
        raise KernelError(f"cannot move {who} into {d.path}: {e.strerror}", e.errno) from e


def _walk_dirs(top: str) -> list[str]:
    out = [top]
    for root, subdirs, _files in os.walk(top):
        out += [os.path.join(root, s) for s in subdirs]
    return out


def _procs_in(path: str) -> list[int]:
    pids: list[int] = []
    for d in _walk_dirs(path):
        try:
            pids += [int(x) for x in read_file(os.path.join(d, "cgroup.procs")).split()]
        except (FileNotFoundError, NotADirectoryError):
            continue
    return pids


def procs(plan: CgroupPlan) -> list[int]:
    """PIDs in the container's cgroup and its sub-cgroups (from the primary hierarchy)."""
    return sorted(set(_procs_in(plan.primary.path)))


def _dir_populated(d: CgroupDir) -> bool:
    if d.version == V2:
        try:
            for line in read_file(os.path.join(d.path, "cgroup.events")).splitlines():
                k, _, v = line.partition(" ")
                if k == "populated":
                    return v.strip() == "1"
        except FileNotFoundError:
            pass
    return bool(_procs_in(d.path))


def populated(plan: CgroupPlan) -> bool:
    return _dir_populated(plan.primary)


def events_path(plan: CgroupPlan) -> str | None:
    """cgroup.events of the unified cgroup (pure v2 and hybrid): inotify IN_MODIFY or poll(POLLPRI)
    fire when "populated" or "frozen" change. None on pure v1 (nothing to watch)."""
    u = plan.unified
    return os.path.join(u.path, "cgroup.events") if u is not None else None


def kill_all(plan: CgroupPlan, sig: int = _signal.SIGKILL, *, timeout: float = 5.0, wait: bool = True) -> None:
    """Signal every process of the container.

    SIGKILL: cgroup.kill (v2, kernel >= 5.14, race-free against forks) when present, else signal
    each pid again and again until the cgroup is empty. Other signals go once to each pid.
    wait=False: signal once and return, for a caller that waits otherwise (the supervisor gets
    init's exit, and kills again with wait=True before removing the cgroups).
    """
    if sig != _signal.SIGKILL:
        for pid in procs(plan):
            _kill(pid, sig)
        return
    u = plan.unified
    kill_file = os.path.join(u.path, "cgroup.kill") if u is not None else None
    used_kill_file = False
    if kill_file and os.path.exists(kill_file):
        try:
            write_file(kill_file, "1")
            used_kill_file = True
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    delay = 0.0002
    thawed = False
    while True:
        pids = procs(plan)
        if not pids:
            return
        if not used_kill_file:
            for pid in pids:
                _kill(pid, sig)
        if not thawed:
            _thaw_v1_for_kill(plan)
            thawed = True
        if not wait:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError_(f"processes {pids[:5]} still in {plan.primary.path} after SIGKILL")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _thaw_v1_for_kill(plan: CgroupPlan) -> None:
    # v1 frozen tasks act on SIGKILL only once thawed (v2's freezer lets fatal signals through);
    # thawing after the signals are queued leaves them no time to fork.
    fz = plan.v1_dir("freezer")
    if fz is None:
        return
    state = os.path.join(fz.path, "freezer.state")
    try:
        if read_file(state).strip() != "THAWED":
            write_file(state, "THAWED")
    except OSError:
        pass


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------- destroy


def _rmdir(path: str, retry: float) -> None:
    deadline = time.monotonic() + retry
    # Tasks that just exited leave their cgroup a moment later (RCU): typically within a
    # millisecond, so start small; a stop waits on this.
    delay = 0.0005
    cleared = False
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno == errno.ENOTEMPTY and not cleared:
                # cgroupfs never says ENOTEMPTY (control files vanish with the dir, busy gives EBUSY):
                # this is a fake tree of plain files (tests). Drop the files and retry.
                for entry in os.scandir(path):
                    if not entry.is_dir(follow_symlinks=False):
                        os.unlink(entry.path)
                cleared = True
                continue
            if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                raise BusyError(f"cannot remove cgroup {path}: {e.strerror}") from e
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def _rmdir_tree(top: str, retry: float) -> None:
    if not os.path.isdir(top):
        return
    for d in reversed(_walk_dirs(top)):  # os.walk is top-down: reversed is children first
        _rmdir(d, retry)


def destroy(plan: CgroupPlan, *, retry: float = 1.0) -> None:
    """Remove the cgroup (children first) from every hierarchy; ENOENT is fine, EBUSY is retried
    for ``retry`` seconds. A shared plan (pyl.monitor) still in use by others is left alone;
    one whose processes all exited is waited for like any other (they leave it a moment later)."""
    errors: list[PylError] = []
    for d in plan.dirs:
        try:
            in_use = not plan.exclusive and os.path.isdir(d.path) and bool(_procs_in(d.path))
            _rmdir_tree(d.path, 0.0 if in_use else retry)
        except BusyError as e:
            if plan.exclusive:
                errors.append(e)
    if errors:
        raise BusyError("; ".join(e.message for e in errors),
                        hint="processes are still inside: kill_all() first")


# ---------------------------------------------------------------- pyl-cgroup


def _file_for(plan: CgroupPlan, key: str) -> str:
    if not key or "/" in key or key.startswith(".") or "\0" in key or "." not in key:
        raise UsageError(f"'{key}' is not a cgroup file name (CONTROLLER.FILE)")
    controller = key.split(".", 1)[0]
    candidates: list[CgroupDir] = []
    if controller == "cgroup":
        candidates = [d for d in (plan.unified,) if d] + [d for d in plan.dirs if d.version == V1][:1]
    else:
        v1 = plan.v1_dir(controller)
        if v1 is not None:
            candidates.append(v1)
        if plan.unified is not None:
            candidates.append(plan.unified)  # memory.max on hybrid: v1 memory lacks it, unified may have it
    for d in candidates:
        path = os.path.join(d.path, key)
        if os.path.exists(path):
            return path
    if not os.path.isdir(plan.primary.path):
        raise NotFoundError(f"cgroup {plan.primary.path} does not exist")
    known = controller == "cgroup" or plan.v1_dir(controller) is not None or any(
        controller in d.controllers for d in plan.dirs if d.version == V2)
    if not known:
        raise NotFoundError(f"unknown cgroup controller '{controller}' (key '{key}')")
    raise NotFoundError(f"no cgroup file '{key}' for this container")


def read_value(plan: CgroupPlan, key: str) -> str:
    path = _file_for(plan, key)
    try:
        return read_file(path)
    except OSError as e:
        raise PylError(f"cannot read '{key}': {e.strerror}") from e


# Writing one moves a process in: a PID written there may be any host process, pid 1 included,
# and the container's stop then SIGKILLs it with everything else in its cgroup.
PROCESS_FILES = frozenset({"cgroup.procs", "cgroup.threads"})


def write_value(plan: CgroupPlan, key: str, value: str) -> None:
    """Write a cgroup file of the container (pyl-cgroup, device rules); never one that moves
    processes: pyl moves only its own children in, at start and attach (enter_v1 and the
    start path)."""
    if key.strip() in PROCESS_FILES:
        raise UsageError(f"cannot write {key}: pyl-cgroup does not move processes into a container",
                         hint="start the process inside with pyl-attach")
    path = _file_for(plan, key)
    try:
        write_file(path, value)
    except OSError as e:
        raise PylError(f"cannot set '{key}' to '{value}': {e.strerror} (errno {e.errno})") from e
