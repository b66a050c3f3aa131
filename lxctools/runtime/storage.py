"""Container storage on disk: the rootfs spec (`dir:`, `overlay:`), a faithful file-by-file copy
of a rootfs, and writing a file inside a rootfs without following its symlinks.

The copy walks with file descriptors (openat with O_NOFOLLOW), so a symlink planted in a
container's rootfs is copied as a link and never followed out of the tree; owners, modes
(setuid included), xattrs, timestamps, hardlinks, device nodes and fifos are preserved.
"""

from __future__ import annotations

import errno
import os
import stat
from lxctools.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable

from lxctools.errors import PylError, UsageError


# ---- storage of a container --------------------------------------------------------------
# Paths are strings with os.path: pathlib (with re, fnmatch, urllib.parse) is ~9 ms of pyl-copy.
class Storage(Record):
    """Where a container's root filesystem lives, from lxc.rootfs.path.

    kind: "dir", "overlay" or "none" (no lxc.rootfs.path); path: dir: the rootfs, overlay: the
    upper dir; lowers: overlay only; prefixed: dir: the value was written as "dir:PATH". Paths
    are absolute strings, cleaned as pathlib would (no repeated or trailing "/", no "." parts)."""

    __slots__ = ("kind", "path", "lowers", "prefixed")

    def __init__(self, kind: str, path: str | None = None, lowers: tuple[str, ...] = (),
                 prefixed: bool = False) -> None:
        self.kind, self.path, self.lowers, self.prefixed = kind, path, lowers, prefixed


def clean_path(path: str) -> str:
    """PATH as str(Path(PATH)) spells it: "//" and "/./" folded, no trailing "/" ("." for
    nothing left of a relative one); ".." kept (os.path.normpath folds it, which changes
    the meaning when a symlink is crossed). A leading "//" is folded too (pathlib keeps it)."""
    parts = "/".join(part for part in path.split("/") if part and part != ".")
    return "/" + parts if path.startswith("/") else parts or "."


def parse_storage(value: object) -> Storage:
    if not isinstance(value, str) or not value:
        return Storage("none")
    if value.startswith("/"):
        return Storage("dir", clean_path(value))
    kind, _, rest = value.partition(":")
    if kind == "dir" and rest.startswith("/"):
        return Storage("dir", clean_path(rest), prefixed=True)
    if kind in ("overlay", "overlayfs"):
        parts = [p for p in rest.split(":") if p]
        if len(parts) >= 2 and all(p.startswith("/") for p in parts):
            return Storage("overlay", clean_path(parts[-1]), tuple(clean_path(p) for p in parts[:-1]))
    raise UsageError(f"lxc.rootfs.path '{value}': pyl can copy only dir and overlay storage")


def storage_spec(storage: Storage) -> str:
    if storage.kind == "overlay":
        return "overlay:" + ":".join(str(p) for p in (*storage.lowers, storage.path))
    return f"dir:{storage.path}" if storage.prefixed else str(storage.path)


# ---- the file-by-file copy ------------------------------------------------------------------
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_tree(src: str, dst: str) -> None:
    """Copy directory SRC to new directory DST keeping everything a rootfs needs.

    Owners, modes (incl. setuid), xattrs (ACLs, file capabilities, overlay whiteouts' markers),
    timestamps, hardlinks, device nodes, fifos, sockets and symlinks (copied as links). The walk
    is fd-relative with O_NOFOLLOW: a symlink swapped in for a directory is never followed out.
    """
    try:
        sfd = os.open(src, _O_DIR)
    except OSError as exc:
        raise _copy_error(src, exc) from None
    try:
        st = os.fstat(sfd)
        os.mkdir(dst, 0o700)
        dfd = os.open(dst, _O_DIR)
        try:
            _copy_dir(sfd, dfd, src, dst, {}, st.st_dev)
            _finish(dfd, None, st, src, src_fd=sfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        raise _copy_error(src, exc) from None
    finally:
        os.close(sfd)


def _copy_error(path: str, exc: OSError) -> PylError:
    where = exc.filename or path
    return PylError(f"cannot copy {where}: {exc.strerror or exc}")


def _copy_dir(sfd: int, dfd: int, spath: str, dpath: str, links: dict[tuple[int, int], str],
              dev: int) -> None:
    with os.scandir(sfd) as entries:
        names = [e.name for e in entries]
    for name in names:
        st = os.stat(name, dir_fd=sfd, follow_symlinks=False)
        mode = st.st_mode
        where = os.path.join(spath, name)
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dfd)
            csfd = os.open(name, _O_DIR, dir_fd=sfd)
            try:
                cdfd = os.open(name, _O_DIR, dir_fd=dfd)
                try:
                    _copy_dir(csfd, cdfd, where, os.path.join(dpath, name), links, dev)
                    _finish(cdfd, None, st, where, src_fd=csfd)
                finally:
                    os.close(cdfd)
            finally:
                os.close(csfd)
            continue
        if st.st_nlink > 1:
            first = links.get((st.st_dev, st.st_ino))
            if first is not None:
                os.link(first, name, dst_dir_fd=dfd, follow_symlinks=False)
                continue
            links[(st.st_dev, st.st_ino)] = os.path.join(dpath, name)
        if stat.S_ISREG(mode):
            _copy_file(sfd, dfd, name, st, where)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=sfd), name, dir_fd=dfd)
            _finish(dfd, name, st, where, sfd=sfd)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dfd)
            _finish(dfd, name, st, where, sfd=sfd)


def _copy_file(sfd: int, dfd: int, name: str, st: os.stat_result, where: str) -> None:
    ifd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=sfd)
    try:
        ofd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=dfd)
        try:
            if st.st_blocks * 512 < st.st_size:
                _copy_sparse(ifd, ofd, st.st_size)
            else:
                _copy_range(ifd, ofd, 0, st.st_size)
            _finish(ofd, None, st, where, src_fd=ifd)
        finally:
            os.close(ofd)
    finally:
        os.close(ifd)


def _copy_sparse(ifd: int, ofd: int, size: int) -> None:
    """A file with holes (a disk image, a database) keeps them: only its data segments are copied
    (SEEK_DATA/SEEK_HOLE), then the size is set. copy_file_range alone writes the holes out as
    zeros: a 10 GB image with 1 GB in it would take 10 GB in the copy (rsync -a, LXC's, does too)."""
    try:
        offset = os.lseek(ifd, 0, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no data at all
            os.ftruncate(ofd, size)
            return
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise
        _copy_range(ifd, ofd, 0, size)  # no SEEK_DATA on this file system
        return
    while offset < size:
        end = os.lseek(ifd, offset, os.SEEK_HOLE)
        _copy_range(ifd, ofd, offset, end - offset)
        try:
            offset = os.lseek(ifd, end, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            break
    os.ftruncate(ofd, size)


def _copy_range(ifd: int, ofd: int, offset: int, count: int) -> None:
    """COUNT bytes at OFFSET, to the same offset: copy_file_range stays in the kernel (and may
    share extents); pread/pwrite where it cannot (another file system, an old kernel)."""
    end = offset + count
    try:
        while offset < end:
            n = os.copy_file_range(ifd, ofd, end - offset, offset, offset)
            if n == 0:
                return
            offset += n
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    while offset < end:
        chunk = os.pread(ifd, min(1 << 20, end - offset), offset)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            written = os.pwrite(ofd, view, offset)
            view, offset = view[written:], offset + written


def _finish(dfd: int, name: str | None, st: os.stat_result, where: str, *, sfd: int | None = None,
            src_fd: int | None = None) -> None:
    """Owner, then mode, then xattrs, then times: chown clears setuid bits and file capabilities."""
    target: int | str = dfd if name is None else name
    kw = {} if name is None else {"dir_fd": dfd, "follow_symlinks": False}
    try:
        os.chown(target, st.st_uid, st.st_gid, **kw)
    except PermissionError:
        if os.geteuid() == 0:
            raise
    if not stat.S_ISLNK(st.st_mode):
        if name is None:
            os.chmod(dfd, stat.S_IMODE(st.st_mode))
        else:
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dfd)
    _copy_xattrs(dfd, name, sfd, src_fd, where)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), **kw)


def _copy_xattrs(dfd: int, name: str | None, sfd: int | None, src_fd: int | None, where: str) -> None:
    # Directories and regular files are copied through fds; other nodes by a path through
    # /proc/self/fd, which resolves the directory by its fd and never follows the last link.
    if name is None:
        if src_fd is None:
            return
        source: int | str = src_fd
        dest: int | str = dfd
    else:
        if sfd is None:
            return
        source = f"/proc/self/fd/{sfd}/{name}"
        dest = f"/proc/self/fd/{dfd}/{name}"
    follow = name is None
    try:
        attrs = os.listxattr(source, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return
        raise
    for attr in attrs:
        try:
            os.setxattr(dest, attr, os.getxattr(source, attr, follow_symlinks=follow), follow_symlinks=follow)
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP,) or (exc.errno == errno.EPERM and os.geteuid() != 0):
                continue
            raise PylError(f"cannot copy extended attribute {attr} of {where}: {exc.strerror}") from None


# ---- writing inside a rootfs without following its symlinks -------------------------------------
def _open_dir_in(root: str, parts: Iterable[str]) -> int:
    fd = os.open(root, _O_DIR)
    try:
        for part in parts:
            nfd = os.open(part, _O_DIR, dir_fd=fd)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _lstat_in(root: str, relpath: str) -> os.stat_result | None:
    *dirs, leaf = relpath.strip("/").split("/")
    try:
        fd = _open_dir_in(root, dirs)
    except OSError:
        return None
    try:
        return os.stat(leaf, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return None
    finally:
        os.close(fd)


def set_hostname_file(storage: Storage, name: str) -> bool:
    """Write NAME into the rootfs' /etc/hostname if it is a regular file there (as LXC's clone).

    For an overlay clone the file goes into the upper dir (created like the lower's /etc), so
    the source is untouched. A symlinked /etc or /etc/hostname is left alone: it could point
    anywhere on the host.
    """
    if storage.kind == "dir" and storage.path is not None:
        lower = upper = storage.path
    elif storage.kind == "overlay" and storage.path is not None:
        upper = storage.path
        # The upper dir wins (even a whiteout there hides the file); then lowers, leftmost on top.
        candidates = (upper, *storage.lowers)
        lower = next((c for c in candidates if _lstat_in(c, "etc/hostname") is not None), None)
    else:
        return False
    if lower is None:
        return False
    st = _lstat_in(lower, "etc/hostname")
    etc = _lstat_in(lower, "etc")
    if st is None or etc is None or not stat.S_ISREG(st.st_mode) or not stat.S_ISDIR(etc.st_mode):
        return False
    try:
        top = os.open(upper, _O_DIR)
        try:
            try:
                os.mkdir("etc", 0o700, dir_fd=top)
                os.chown("etc", etc.st_uid, etc.st_gid, dir_fd=top, follow_symlinks=False)
                os.chmod("etc", stat.S_IMODE(etc.st_mode), dir_fd=top)
            except FileExistsError:
                pass
            efd = os.open("etc", _O_DIR, dir_fd=top)
        finally:
            os.close(top)
        try:
            fd = os.open("hostname", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                         stat.S_IMODE(st.st_mode), dir_fd=efd)
            try:
                os.write(fd, f"{name}\n".encode())
                os.fchown(fd, st.st_uid, st.st_gid)
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
            finally:
                os.close(fd)
        finally:
            os.close(efd)
    except OSError as exc:
        raise PylError(f"cannot write /etc/hostname in {upper}: {exc.strerror}") from None
    return True
