"""Whole files: the one write-temp-then-rename of pyl (configs, state files, caches), and the
plain read of a small kernel file (cgroupfs, sysfs)."""

from __future__ import annotations

import os


def read_file(path: str) -> str:
    """The whole of a small file (a cgroup or sysfs attribute); OSError as open raises it."""
    with open(path) as f:
        return f.read()


def replace_file(path: str, data: bytes, mode: int, *, durable: bool) -> None:
    """Write DATA to PATH through a temp file in the same folder, renamed over it: a reader
    finds the old file or the new one, never a part. The file gets exactly MODE (fchmod: the
    umask neither widens nor narrows it). durable: fsync the file and then its folder, so that
    a crash or a power cut keeps one of the two (configs); run-time state on /run's tmpfs needs
    no fsync. The temp file has a random name and O_EXCL (not tempfile, ~9 ms of imports: shutil,
    random, bz2, lzma), so a clash is an error, never a file two writers share. An OSError is
    raised as it came, the temp file removed."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(6).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _raise(err: OSError) -> None:
    raise err


def delete_tree(path: str) -> None:
    """Delete the folder PATH and everything in it, as shutil.rmtree does on Linux: walked
    through directory fds (os.fwalk), each entry unlinked relative to its folder's fd, a
    symlink deleted and never followed, a folder swapped for a symlink mid-walk not entered.
    Not shutil: it imports fnmatch and re, ~7 ms of a pyl-destroy on a 2-vCPU VM. The first
    OSError is raised with the full path of what could not be read or deleted."""
    for folder, dirs, files, dir_fd in os.fwalk(path, topdown=False, onerror=_raise, follow_symlinks=False):
        name = ""
        try:
            for name in files:
                os.unlink(name, dir_fd=dir_fd)
            for name in dirs:
                try:
                    os.rmdir(name, dir_fd=dir_fd)
                except NotADirectoryError:  # a symlink to a folder is listed with the folders
                    os.unlink(name, dir_fd=dir_fd)
        except OSError as err:
            err.filename = os.path.join(folder, name)
            raise
    os.rmdir(path)
