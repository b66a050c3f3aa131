"""Executing a rootfs plan inside the container's mount namespace, targets resolved inside
the rootfs (see __init__)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

from lxctools.errors import KernelError, PermissionDeniedError, StartError
from lxctools.kernel import mount as k
from lxctools.kernel.mount import MS_BIND, MS_RDONLY, MS_REC, MS_SLAVE
from lxctools.runtime.rootfs.plan import (
    _FS_FLAGS, BindMount, ConsoleBind, Create, MakeNode, MaskPath, MountFs, Operation, ReadOnlyPath,
    RootAttributes, RootfsBind, RootfsOverlay, RootfsPlan, RootOperation, Symlink, TtyBind,
)


# ---------------------------------------------------------------------------------------------
# Apply
# ---------------------------------------------------------------------------------------------

_RESOLVE = k.RESOLVE_IN_ROOT | k.RESOLVE_NO_MAGICLINKS


class _Failure(Exception):
    """A step failed for a reason worth its own words (source missing...)."""


class _Skip(Exception):
    """Nothing to do (masked path absent, no console)."""


@dataclass
class _Context:
    root_fd: int
    console_path: str | None
    tty_paths: list[str]


def _fd_path(fd: int) -> str:
    # The host /proc is still mounted at /proc until pivot_root; the magic link names the exact
    # dentry openat2 resolved, so the mount cannot be redirected by a later symlink swap.
    return f"/proc/self/fd/{fd}"


def _open_in_root(ctx: _Context, path: str, flags: int = os.O_PATH, mode: int = 0) -> int:
    return k.openat2(ctx.root_fd, path, flags | os.O_CLOEXEC, mode, _RESOLVE)


def _mkdir_in_root(ctx: _Context, path: str) -> None:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for i, name in enumerate(parts):
        parent = _open_in_root(ctx, "/".join(parts[:i]) or ".", os.O_PATH | os.O_DIRECTORY)
        try:
            os.mkdir(name, 0o755, dir_fd=parent)
        except FileExistsError:
            pass
        finally:
            os.close(parent)


def _target(ctx: _Context, path: str, create: Create) -> int:
    """Resolve (and create if asked) a target inside the rootfs; returns an O_PATH fd."""
    if create == "dir":
        _mkdir_in_root(ctx, path)
    elif create == "file":
        parent = os.path.dirname(path)
        if parent:
            _mkdir_in_root(ctx, parent)
        try:
            return _open_in_root(ctx, path)
        except KernelError as exc:
            if exc.errno != errno.ENOENT:
                raise
        # O_EXCL: never open (and so never trigger) an existing device node.
        os.close(_open_in_root(ctx, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    try:
        return _open_in_root(ctx, path)
    except KernelError as exc:
        if exc.errno == errno.ENOENT:
            raise _Failure(f"target {path} does not exist in the rootfs (add create=dir or create=file)") from exc
        raise


def _attach(tree: int, target_fd: int) -> None:
    k.move_mount(tree, "", target_fd, "", k.MOVE_MOUNT_F_EMPTY_PATH | k.MOVE_MOUNT_T_EMPTY_PATH)


def _set_propagation(ctx: _Context, path: str, propagation: int) -> None:
    if propagation:
        fd = _open_in_root(ctx, path)  # reopened: now the root of the new mount
        try:
            k.mount(None, _fd_path(fd), None, propagation)
        finally:
            os.close(fd)


def _do_mount_fs(op: MountFs, ctx: _Context) -> None:
    fd = _target(ctx, op.target, op.create)
    try:
        attempts = (op.data, *op.fallback_data)
        for number, data in enumerate(attempts):
            try:
                k.mount(op.source, _fd_path(fd), op.fstype, op.flags, data)
                break
            except KernelError as exc:
                if exc.errno != errno.EINVAL or number == len(attempts) - 1:
                    raise
    finally:
        os.close(fd)
    _set_propagation(ctx, op.target, op.propagation)


def _clone_source(ctx: _Context, op: BindMount) -> int:
    flags = k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC | (k.AT_RECURSIVE if op.recursive else 0)
    try:
        if op.source_in_rootfs:
            src = _open_in_root(ctx, op.source)
            try:
                return k.open_tree(src, "", flags | k.AT_EMPTY_PATH)
            finally:
                os.close(src)
        return k.open_tree(k.AT_FDCWD, op.source, flags)
    except KernelError as exc:
        if exc.errno == errno.ENOENT:
            raise _Failure("source does not exist") from exc
        raise


def _do_bind(op: BindMount, ctx: _Context) -> None:
    tree = _clone_source(ctx, op)
    try:
        if op.attr_set or op.attr_clr:
            k.mount_setattr(tree, "", k.AT_EMPTY_PATH | (k.AT_RECURSIVE if op.recursive else 0),
                            op.attr_set, op.attr_clr)
        fd = _target(ctx, op.target, op.create)
        try:
            _attach(tree, fd)
        finally:
            os.close(fd)
    finally:
        os.close(tree)
    _set_propagation(ctx, op.target, op.propagation)


def _bind_host_path(ctx: _Context, source: str, target: str) -> None:
    _do_bind(BindMount(source, target, create="file"), ctx)


def _do_make_node(op: MakeNode, ctx: _Context) -> None:
    parent = _open_in_root(ctx, os.path.dirname(op.target), os.O_PATH | os.O_DIRECTORY)
    name = os.path.basename(op.target)
    try:
        os.mknod(name, stat.S_IFCHR | op.mode, os.makedev(op.major, op.minor), dir_fd=parent)
        os.chmod(name, op.mode, dir_fd=parent)  # umask trimmed the mknod mode
    except FileExistsError:
        return  # an entry already put something there
    except PermissionError:
        # No CAP_MKNOD (user namespace): bind-mount the host's node over an empty file instead.
        _bind_host_path(ctx, op.host_path, op.target)
    finally:
        os.close(parent)


def _do_symlink(op: Symlink, ctx: _Context) -> None:
    parent = _open_in_root(ctx, os.path.dirname(op.target), os.O_PATH | os.O_DIRECTORY)
    try:
        os.symlink(op.points_to, os.path.basename(op.target), dir_fd=parent)
    except FileExistsError:
        pass
    finally:
        os.close(parent)


def _do_console(op: ConsoleBind, ctx: _Context) -> None:
    if ctx.console_path is None:
        raise _Skip
    _bind_host_path(ctx, ctx.console_path, op.target)


def _do_tty(op: TtyBind, ctx: _Context) -> None:
    if op.index > len(ctx.tty_paths):
        raise _Failure(f"no host pty was allocated for tty{op.index}")
    _bind_host_path(ctx, ctx.tty_paths[op.index - 1], op.target)


def _open_or_skip(ctx: _Context, path: str) -> int:
    """A path to protect that this kernel or rootfs does not have needs no protecting."""
    try:
        return _open_in_root(ctx, path)
    except KernelError as exc:
        if exc.errno == errno.ENOENT:
            raise _Skip from exc
        raise


def _do_read_only(op: ReadOnlyPath, ctx: _Context) -> None:
    fd = _open_or_skip(ctx, op.target)
    recursive = k.AT_RECURSIVE if op.recursive else 0
    try:
        try:
            k.mount_setattr(fd, "", k.AT_EMPTY_PATH | recursive, k.MOUNT_ATTR_RDONLY)
            return
        except KernelError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a mount root yet, so bind it onto itself
                raise
        tree = k.open_tree(fd, "", k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC | k.AT_EMPTY_PATH | recursive)
        try:
            k.mount_setattr(tree, "", k.AT_EMPTY_PATH | recursive, k.MOUNT_ATTR_RDONLY)
            _attach(tree, fd)
        finally:
            os.close(tree)
    finally:
        os.close(fd)


def _do_mask(op: MaskPath, ctx: _Context) -> None:
    fd = _open_or_skip(ctx, op.target)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            k.mount("tmpfs", _fd_path(fd), "tmpfs", MS_RDONLY | _FS_FLAGS, "size=4k,mode=555")
        else:
            tree = k.open_tree(k.AT_FDCWD, "/dev/null", k.OPEN_TREE_CLONE | k.OPEN_TREE_CLOEXEC)
            try:
                _attach(tree, fd)
            finally:
                os.close(tree)
    finally:
        os.close(fd)


_EXECUTORS: dict[type, Callable[..., None]] = {
    MountFs: _do_mount_fs, BindMount: _do_bind, MakeNode: _do_make_node, Symlink: _do_symlink,
    ConsoleBind: _do_console, TtyBind: _do_tty, ReadOnlyPath: _do_read_only, MaskPath: _do_mask,
}


def describe(op: Operation) -> str:
    """What an operation does, in words for a failure message."""
    if isinstance(op, MountFs):
        return f"mount {op.fstype} on {op.target}"
    if isinstance(op, BindMount):
        return f"bind {op.source} on {op.target}"
    if isinstance(op, MakeNode):
        return f"create /{op.target}"
    if isinstance(op, Symlink):
        return f"symlink /{op.target}"
    if isinstance(op, (ConsoleBind, TtyBind)):
        return f"bind pty on /{op.target}"
    if isinstance(op, ReadOnlyPath):
        return f"make /{op.target} read-only"
    if isinstance(op, MaskPath):
        return f"mask /{op.target}"
    if isinstance(op, RootfsOverlay):
        return f"mount overlay on {op.target}"
    if isinstance(op, RootfsBind):
        return f"bind rootfs {op.path}"
    return "set rootfs flags"


def _errno_text(exc: BaseException) -> str:
    if isinstance(exc, PermissionDeniedError):
        return os.strerror(errno.EPERM)
    number = getattr(exc, "errno", None)
    return os.strerror(number) if isinstance(number, int) else str(exc)


def _run(op: Operation, step: Callable[[], None]) -> None:
    try:
        step()
    except _Skip:
        pass
    except _Failure as exc:
        if not getattr(op, "optional", False):
            raise StartError(f"{op.origin}: {exc}") from exc
    except (KernelError, PermissionDeniedError, OSError) as exc:
        if not getattr(op, "optional", False):
            raise StartError(f"{op.origin}: {describe(op)}: {_errno_text(exc)}") from exc


def _setup_root(op: RootOperation) -> None:
    if isinstance(op, RootfsBind):
        if not os.path.isdir(op.path):
            raise _Failure(f"rootfs {op.path} is not a directory")
        k.mount(op.path, op.path, None, MS_BIND | MS_REC)
        return
    for lower in op.lowers:
        if not os.path.isdir(lower):
            raise _Failure(f"overlay lower directory {lower} does not exist")
    os.makedirs(op.upper, 0o755, exist_ok=True)
    os.makedirs(op.workdir, 0o755, exist_ok=True)
    os.makedirs(op.target, 0o755, exist_ok=True)
    data = f"lowerdir={':'.join(op.lowers)},upperdir={op.upper},workdir={op.workdir}"
    k.mount("overlay", op.target, "overlay", 0, data + (f",{op.data}" if op.data else ""))


def prepare_root(plan: RootfsPlan) -> int:
    """Cut propagation back to the host, mount the root; returns an O_PATH fd on the new root mount."""
    # Slave first: nothing mounted from here on may propagate back into the host's namespace.
    _run(plan.root, lambda: k.mount(None, "/", None, MS_REC | MS_SLAVE))
    _run(plan.root, lambda: _setup_root(plan.root))
    return os.open(plan.root.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def mount_operations(plan: RootfsPlan, root_fd: int, *, console_path: str | None, tty_paths: list[str]) -> None:
    """Run every in-rootfs operation of `plan` against the root mount `root_fd` (before pivot_root)."""
    ctx = _Context(root_fd, console_path, list(tty_paths))
    for op in plan.operations[1:]:
        executor = _EXECUTORS.get(type(op))
        if executor is not None:
            _run(op, lambda op=op, executor=executor: executor(op, ctx))


def switch_root(plan: RootfsPlan, root_fd: int) -> None:
    """pivot_root into the prepared root, detach the old one, then set lxc.rootfs.options flags."""
    def pivot() -> None:
        os.fchdir(root_fd)
        # pivot_root(".", ".") stacks the old root on top of the new one; detaching "." drops it
        # without needing a put_old directory inside the container.
        k.pivot_root(".", ".")
        k.umount2(".", k.MNT_DETACH)
        os.chdir("/")
    _run(plan.root, pivot)
    for op in plan.of_type(RootAttributes):
        assert isinstance(op, RootAttributes)
        _run(op, lambda op=op: k.mount_setattr(k.AT_FDCWD, "/", 0, op.attr_set, op.attr_clr))


def apply_rootfs(plan: RootfsPlan, *, console_path: str | None, tty_paths: list[str]) -> None:
    """Execute `plan` in the container's fresh mount namespace as PID 1 of its PID namespace, as root.
    Raises StartError (one line naming the mount) on the first non-optional failure."""
    root_fd = prepare_root(plan)
    try:
        mount_operations(plan, root_fd, console_path=console_path, tty_paths=tty_paths)
        switch_root(plan, root_fd)
    finally:
        os.close(root_fd)
