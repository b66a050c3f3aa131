"""Copies of containers: full copies, overlay snapshot clones, renames, snapshots, ephemeral clones.

This module owns what pyl-copy and pyl-snapshot do to containers (reference §2.12-2.14, §5.1);
the byte-level storage work is runtime.storage:
- a *full copy* duplicates the rootfs file by file (runtime.storage.copy_tree);
- an *overlay snapshot clone* of a dir-backed source gets
  `lxc.rootfs.path = overlay:SRC_ROOTFS:NEWDIR/overlay/delta`, `NEWDIR/lxc_rdepends` =
  `SRC_LXCPATH\\nSRC_NAME\\n`, and the source lists it in `lxc_snapshots` (pairs of lines), as LXC
  writes them, so pyl-destroy refuses to pull the lower layer from under a clone;
- snapshots are copies kept in LXCPATH/NAME/snaps/snapN (with `ts` and optional `comment`).

Every copy is built under a locked `partial` marker (exactly like Container.create), so a crash
never leaves a half-made container visible: the next look at the name reaps it.

Paths are strings with os.path, and nothing here imports `re`: pathlib (with fnmatch, re and
urllib.parse) alone was ~9 ms of a ~55 ms pyl-copy -s on a 2-vCPU VM.
"""

from __future__ import annotations

import os
import time

from lxctools.container import Container, remove_tree
from lxctools.dependents import (
    CLONES_FILE, DEPENDS_FILE, format_pairs, live_clones, pair, read_pairs, register_clone,
    source_of, unregister_clone, write_pairs,
)
from lxctools.runtime.storage import (  # noqa: F401  (re-exported: clone's public storage helpers)
    Storage, clean_path, copy_tree, parse_storage, set_hostname_file, storage_spec,
)
from lxctools.errors import (
    AlreadyExistsError, NotFoundError, PylError, UsageError, WrongStateError,
)
from lxctools.locking import prune_locks
from lxctools.names import random_text, validate_name
from lxctools.paths import PARTIAL_MARKER, Layout
from lxctools.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable

    from lxctools.config.model import ContainerConfig

SNAPS_DIR = "snaps"
OVERLAY_DIR = "overlay"
OVERLAY_UPPER = os.path.join(OVERLAY_DIR, "delta")
HWADDR_TEMPLATE = "00:16:3e:xx:xx:xx"   # what LXC's clone gives a regenerated MAC
TS_FORMAT = "%Y:%m:%d %H:%M:%S"

# Entries of a container folder a copy never takes over verbatim: bookkeeping of the source,
# its snapshots, its storage (copied on purpose below) and the config (rewritten).
_NOT_COPIED = frozenset({SNAPS_DIR, CLONES_FILE, DEPENDS_FILE, PARTIAL_MARKER, "config", "config.toml"})


# ---- config rewriting (pure) --------------------------------------------------------------
_PATH_ENDS = "/:\"',]"     # what may follow a folder name in a config line (or space, or the end)


def rewrite_paths(text: str, old_dir: str, new_dir: str) -> str:
    """Replace the folder OLD_DIR by NEW_DIR wherever it starts a path in a config text.

    Only whole path components match: renaming c1 leaves /lxc/c10 and /srv/lxc/c1x alone. A
    match is not preceded by a word character or one of ./- and is followed by the end, a space
    or one of _PATH_ENDS (tests/unit/test_clone.py holds this to the regular expression it was).
    """
    old, new = str(old_dir).rstrip("/"), str(new_dir).rstrip("/")
    if not old:
        return text
    out: list[str] = []
    copied = search = 0
    while (at := text.find(old, search)) >= 0:
        end = at + len(old)
        before = text[at - 1] if at else ""
        after = text[end] if end < len(text) else ""
        if not (before and (before.isalnum() or before in "_./-")) \
                and (not after or after.isspace() or after in _PATH_ENDS):
            out += (text[copied:at], new)
            copied = search = end
        else:
            search = at + 1
    out.append(text[copied:])
    return "".join(out)


def rewrite_config(cfg: "ContainerConfig", *, new_name: str, rootfs: Storage | None, keep_name: bool,
                   keep_mac: bool, ephemeral: bool = False) -> dict[str, str]:
    """Adapt a config (already path-rewritten) to its new container; returns the MACs changed."""
    from lxctools.config import keys
    from lxctools.config.model import random_hwaddr
    if rootfs is not None and rootfs.kind != "none":
        cfg.set("lxc.rootfs.path", storage_spec(rootfs))
    if not keep_name:
        cfg.set("lxc.uts.name", new_name)
    changed: dict[str, str] = {}
    if not keep_mac:
        for entry, top in cfg.expanded():
            net = keys.net_index(entry.key)
            if top and net is not None and net[1] == "hwaddr" and entry.value:
                changed[entry.key] = random_hwaddr(HWADDR_TEMPLATE)
        for key, mac in changed.items():
            cfg.set(key, mac)
    if ephemeral:
        cfg.set("lxc.ephemeral", "1")
    return changed


# ---- building a copy -----------------------------------------------------------------------
class CopyRequest(Record):
    """What a copy should produce; the CLI fills it from pyl-copy's options.

    snapshot (-s): overlay clone (copy-on-write) instead of a full copy; backing (-B): "dir" or
    "overlay", None keeps the source's kind; keep_name (-K); keep_mac (-M); allow_running (-a);
    ephemeral: lxc.ephemeral = 1 in the copy."""

    __slots__ = ("snapshot", "backing", "keep_name", "keep_mac", "allow_running", "ephemeral")

    def __init__(self, snapshot: bool = False, backing: str | None = None, keep_name: bool = False,
                 keep_mac: bool = False, allow_running: bool = False, ephemeral: bool = False) -> None:
        self.snapshot, self.backing, self.keep_name = snapshot, backing, keep_name
        self.keep_mac, self.allow_running, self.ephemeral = keep_mac, allow_running, ephemeral

    def target_kind(self, source: Storage) -> str:
        backing = {"overlayfs": "overlay"}.get(self.backing or "", self.backing)
        if backing not in (None, "dir", "overlay"):
            raise UsageError(f"backing store '{self.backing}' is not supported (pyl copies to dir or overlay)")
        snapshot = self.snapshot or backing == "overlay"
        if source.kind == "none":
            if snapshot:
                raise UsageError("cannot snapshot a container without lxc.rootfs.path")
            return "none"
        if snapshot:
            if backing == "dir":
                raise UsageError("dir storage cannot make a snapshot clone", hint="drop -s, or use -B overlay")
            return "overlay"
        if source.kind == "overlay" and backing == "dir":
            raise UsageError("copying an overlay clone into dir storage is not supported yet",
                             hint="copy it as an overlay clone (no -B), or copy its source")
        return source.kind


def _dependency_owner(src: Container, storage: Storage) -> tuple[str, str] | None:
    """Whose rootfs an overlay clone of SRC reads: SRC itself (dir), or SRC's own source."""
    if storage.kind == "dir":
        return (src.layout.lxcpath_str, src.name)
    if storage.kind == "overlay":
        return source_of(src.dir_str)
    return None


def _build(src: Container, cfg: "ContainerConfig", staging: str, final: Container, request: CopyRequest,
           extra_files: dict[str, bytes] | None = None) -> Storage:
    """Write a copy of SRC into STAGING, with every path inside naming FINAL's folder."""
    from lxctools.config.model import ContainerConfig
    src_dir, final_dir = src.dir_str, final.dir_str
    values = cfg.values()
    source = parse_storage(values.get("lxc.rootfs.path"))
    kind = request.target_kind(source)
    skip = set(_NOT_COPIED) | {f"{src.name}.log"}
    below = _relative_inside(source.path, src_dir)
    if below is not None:
        if not below:
            raise UsageError("lxc.rootfs.path is the container folder itself; pyl cannot copy that")
        skip.add(below.split("/")[0])
    for entry in sorted(os.listdir(src_dir)):
        if entry in skip or entry.startswith("."):
            continue
        _copy_entry(os.path.join(src_dir, entry), os.path.join(staging, entry))

    target: Storage
    if kind == "dir":
        target = Storage("dir", os.path.join(final_dir, "rootfs"), prefixed=source.prefixed)
        if source.path is not None and os.path.exists(source.path):
            copy_tree(source.path, os.path.join(staging, "rootfs"))
        else:
            raise NotFoundError(f"rootfs {source.path} does not exist")
    elif kind == "overlay":
        lowers = (source.path,) if source.kind == "dir" else source.lowers
        target = Storage("overlay", os.path.join(final_dir, OVERLAY_UPPER), tuple(lowers))
        os.mkdir(os.path.join(staging, OVERLAY_DIR), 0o755)
        upper = os.path.join(staging, OVERLAY_UPPER)
        if source.kind == "overlay":
            copy_tree(source.path, upper)
        else:
            os.mkdir(upper)
            os.chmod(upper, 0o755)
    else:
        target = source

    text = rewrite_paths(cfg.to_text(), src_dir, final_dir)
    src_config = src.layout.config_file_path(src.name)
    config_name = os.path.basename(src_config) if src_config else "config.toml"
    new_cfg = ContainerConfig.from_text(text, fmt=cfg.fmt, source=os.path.join(final_dir, config_name),
                                        base_dir=final_dir)
    rewrite_config(new_cfg, new_name=final.name, rootfs=target if kind != "none" else None,
                   keep_name=request.keep_name, keep_mac=request.keep_mac, ephemeral=request.ephemeral)
    new_cfg.values()   # the copy must load before it is declared made

    if not request.keep_name and kind != "none":
        staged = Storage(target.kind, _restage(target.path, final_dir, staging), target.lowers)
        set_hostname_file(staged, final.name)
    if kind == "overlay":
        owner = _dependency_owner(src, source)
        if owner is not None:
            _write_new(os.path.join(staging, DEPENDS_FILE), format_pairs([owner]).encode())
    for name, data in (extra_files or {}).items():
        _write_new(os.path.join(staging, name), data)
    from lxctools.config.model import atomic_write
    atomic_write(os.path.join(staging, config_name), new_cfg.to_text(), mode=0o640)
    return target


def _write_new(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _restage(path: str | None, final_dir: str, staging: str) -> str | None:
    below = _relative_inside(path, final_dir)
    if below is None:
        return path
    return os.path.join(staging, below) if below else staging


def _copy_entry(src: str, dst: str) -> None:
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
    elif os.path.isdir(src):
        copy_tree(src, dst)
    elif os.path.isfile(src):
        import shutil
        shutil.copy2(src, dst, follow_symlinks=False)
        st = os.lstat(src)
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)


def _relative_inside(path: str | None, folder: str) -> str | None:
    """PATH relative to FOLDER ("" for FOLDER itself), or None if it is not under FOLDER; both
    made absolute first, by name alone (no symlink is resolved)."""
    if path is None:
        return None
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    if path == folder:
        return ""
    prefix = folder.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else None


def _copy_locked(src: Container, dest: Container, request: CopyRequest,
                 extra_files: dict[str, bytes] | None = None, cfg=None) -> Storage:
    """Copy SRC (whose lock the caller holds) to DEST under DEST's create lock and a partial
    marker; CFG is SRC's config if the caller has loaded it already."""
    src.require_defined()
    rs = src.runstate()
    if rs.state.is_running and not request.allow_running:
        raise WrongStateError(f"cannot copy: container is {rs.state}",
                              hint="stop it first, or use -a to copy it while it runs")
    cfg = cfg or src.load_config()
    with dest.building():
        registered: tuple[str, tuple[str, str]] | None = None
        try:
            target = _build(src, cfg, dest.dir_str, dest, request, extra_files)
            if target.kind == "overlay":
                owner = source_of(dest.dir_str)
                if owner:
                    registered = (os.path.join(*owner), (dest.layout.lxcpath_str, dest.name))
                    _with_owner_lock(src, owner, lambda: register_clone(*registered))
        except BaseException:
            if registered is not None:
                try:
                    _with_owner_lock(src, owner, lambda: unregister_clone(*registered))
                except PylError:
                    pass
            raise
    return target


def _same_path(a: str, b: str) -> bool:
    return os.path.normpath(a) == os.path.normpath(b)


def _with_owner_lock(held: Container, owner: tuple[str, str], action) -> None:
    """Run ACTION under the owner's lock, unless the owner is the container whose lock we hold."""
    if _same_path(owner[0], held.layout.lxcpath_str) and owner[1] == held.name:
        action()
        return
    other = Container(owner[1], Layout(owner[0], held.layout.rundir_str))
    with other.lock("copy", wait=5.0):
        action()


# ---- public operations ----------------------------------------------------------------------
def copy_container(src: Container, new_name: str, new_lxcpath: str | None = None,
                   request: CopyRequest = CopyRequest()) -> Container:
    """pyl-copy: a full copy or an overlay snapshot clone of SRC named NEW_NAME; returns it."""
    validate_name(new_name)
    layout = Layout(os.path.abspath(new_lxcpath), src.layout.rundir_str) if new_lxcpath else src.layout
    dest = Container(new_name, layout)
    if _same_path(dest.dir_str, src.dir_str):
        raise AlreadyExistsError("the copy would overwrite its source", hint="pick another name with -N")
    with src.lock("copy"):
        _copy_locked(src, dest, request)
    return dest


def rename_container(src: Container, new_name: str, *, keep_name: bool = False) -> Container:
    """pyl-copy -R: move the folder, then fix the paths and the hostname. Refuses while running."""
    validate_name(new_name)
    dest = Container(new_name, src.layout)
    src_dir, dest_dir = src.dir_str, dest.dir_str
    if src_dir == dest_dir:
        raise AlreadyExistsError("the new name is the current name")
    with src.lock("rename"):
        src.require_defined()
        rs = src.runstate()
        if rs.state.is_running:
            raise WrongStateError(f"cannot rename: container is {rs.state}", hint="stop it first")
        if live_clones(src_dir):
            raise WrongStateError("cannot rename: container has snapshot clones",
                                  hint="their lower layer is this container's rootfs; destroy them first")
        with dest.lock("create"):
            if dest.is_partial():
                dest.reap_partial(holding_lock=True)
            if os.path.lexists(dest_dir):
                raise AlreadyExistsError("container already exists" if dest.layout.config_file_path(dest.name)
                                         else f"{dest_dir} exists but is not a container")
            prepared = _prepare_renamed_configs(src, dest, keep_name)
            # The folder moves in one rename(2); the configs written beside the old ones follow
            # with one rename each.
            os.rename(src_dir, dest_dir)
            for tmp, final in prepared:
                os.rename(_moved(tmp, src_dir, dest_dir), _moved(final, src_dir, dest_dir))
            # The snapshots moved with the folder: their locks are now the new snaps folder's.
            prune_locks(Layout(os.path.join(src_dir, SNAPS_DIR), src.layout.rundir_str))
            cfg = dest.load_config()
            if not keep_name:
                set_hostname_file(parse_storage(cfg.values().get("lxc.rootfs.path")), new_name)
            owner = source_of(dest_dir)
            if owner is not None:
                old, new = (src.layout.lxcpath_str, src.name), (dest.layout.lxcpath_str, dest.name)
                def swap() -> None:
                    path = os.path.join(*owner, CLONES_FILE)
                    write_pairs(path, [new if pair(*pr) == pair(*old) else pr for pr in read_pairs(path)])
                _with_owner_lock(dest, owner, swap)
    return dest


def _moved(path: str, old_dir: str, new_dir: str) -> str:
    below = _relative_inside(path, old_dir)
    assert below, f"{path} is not in {old_dir}"
    return os.path.join(new_dir, below)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _prepare_renamed_configs(src: Container, dest: Container, keep_name: bool) -> list[tuple[str, str]]:
    from lxctools.config.model import ContainerConfig, atomic_write
    prepared: list[tuple[str, str]] = []
    configs = [(src.layout.config_file_path(src.name), True)]
    snaps = os.path.join(src.dir_str, SNAPS_DIR)
    if os.path.isdir(snaps):
        snaps_layout = Layout(snaps, src.layout.rundir_str)
        for snap in sorted(os.listdir(snaps)):
            path = snaps_layout.config_file_path(snap)
            if path is not None:
                configs.append((path, False))
    try:
        for path, is_main in configs:
            assert path is not None
            cfg = ContainerConfig.load(path)
            text = rewrite_paths(cfg.to_text(), src.dir_str, dest.dir_str)
            new_cfg = ContainerConfig.from_text(text, fmt=cfg.fmt, source=path, base_dir=os.path.dirname(path))
            if is_main and not keep_name:
                new_cfg.set("lxc.uts.name", dest.name)
            tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.rename")
            atomic_write(tmp, new_cfg.to_text(), mode=0o640)
            prepared.append((tmp, path))
    except BaseException:
        for tmp, _ in prepared:
            _unlink_quietly(tmp)
        raise
    return prepared


def ephemeral_name(base: str) -> str:
    """NAME_XXXXXX as lxc-copy -e picks when no -N is given."""
    import string
    return f"{base[:64 - 7]}_{random_text(6, string.ascii_letters + string.digits)}"


# ---- snapshots ------------------------------------------------------------------------------
class SnapshotInfo(Record):
    """lxcpath: LXCPATH/NAME/snaps; timestamp: YYYY:MM:DD hh:mm:ss ("" if the ts file is
    missing); comment: the comment file's text, or None."""

    __slots__ = ("name", "lxcpath", "timestamp", "comment")

    def __init__(self, name: str, lxcpath: str, timestamp: str, comment: str | None) -> None:
        self.name, self.lxcpath, self.timestamp, self.comment = name, lxcpath, timestamp, comment

    def line(self) -> str:
        return f"{self.name} ({self.lxcpath}) {self.timestamp}"

    def as_json(self) -> dict:
        return {"name": self.name, "path": str(self.lxcpath), "timestamp": self.timestamp,
                "comment": self.comment}


def snapshot_index(name: str) -> int | None:
    """N of a snapshot named snapN (N in ASCII digits, no leading zero), else None."""
    digits = name[4:]
    if not name.startswith("snap") or not (digits.isascii() and digits.isdigit()):
        return None
    return int(digits) if digits == "0" or digits[0] != "0" else None


def next_snapshot_name(existing: Iterable[str]) -> str:
    """The first free snapN (LXC reuses the lowest gap)."""
    taken = {snapshot_index(n) for n in existing}
    i = 0
    while i in taken:
        i += 1
    return f"snap{i}"


def snapshots_layout(container: Container) -> Layout:
    return Layout(os.path.join(container.dir_str, SNAPS_DIR), container.layout.rundir_str)


def format_listing(infos: list[SnapshotInfo], show_comments: bool) -> str:
    if not infos:
        return "No snapshots\n"
    out = []
    for info in infos:
        out.append(info.line() + "\n")
        if show_comments and info.comment is not None:
            out.append(info.comment)
    return "".join(out)


def list_snapshots(container: Container) -> list[SnapshotInfo]:
    container.require_defined()
    layout = snapshots_layout(container)
    from lxctools.container import list_container_names
    names = list_container_names(layout)
    names.sort(key=lambda n: (snapshot_index(n) is None, snapshot_index(n) or 0, n))
    infos = []
    for name in names:
        folder = layout.container_path(name)
        infos.append(SnapshotInfo(name, layout.lxcpath_str, _read_text(os.path.join(folder, "ts")) or "",
                                  _read_text(os.path.join(folder, "comment"))))
    return infos


def _read_text(path: str) -> str | None:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError):
        return None


def create_snapshot(container: Container, comment_file: str | None = None,
                    now: float | None = None) -> str:
    """pyl-snapshot: copy the stopped container into snaps/snapN; returns snapN."""
    extra: dict[str, bytes] = {}
    if comment_file is not None:
        try:
            with open(comment_file, "rb") as f:
                extra["comment"] = f.read()
        except FileNotFoundError:
            raise NotFoundError(f"comment file '{comment_file}' does not exist") from None
        except OSError as exc:
            raise PylError(f"cannot read '{comment_file}': {exc.strerror}") from None
    extra["ts"] = time.strftime(TS_FORMAT, time.localtime(now)).encode()
    with container.lock("snapshot"):
        container.require_defined()
        container.require_state("snapshot")
        # A config error is said before the snaps folder is made: a refused snapshot changes nothing.
        cfg = container.load_config()
        layout = snapshots_layout(container)
        try:
            os.mkdir(layout.lxcpath_str, 0o755)
        except FileExistsError:
            if not os.path.isdir(layout.lxcpath_str):
                raise PylError(f"{layout.lxcpath_str} is in the way of the snapshots folder") from None
        from lxctools.container import list_container_names
        list_container_names(layout)  # reaps what a snapshot killed halfway left: its index is free again
        name = next_snapshot_name(os.listdir(layout.lxcpath_str))
        # Snapshots keep the name and MACs: restoring one gives back the same container.
        _copy_locked(container, Container(name, layout), CopyRequest(keep_name=True, keep_mac=True),
                     extra_files=extra, cfg=cfg)
    return name


def _snapshot(container: Container, snap: str) -> Container:
    if snapshot_index(snap) is None and not os.path.isdir(os.path.join(container.dir_str, SNAPS_DIR, snap)):
        raise NotFoundError(f"snapshot '{snap}' does not exist")
    snapshot = Container(snap, snapshots_layout(container))
    if not snapshot.is_defined():
        raise NotFoundError(f"snapshot '{snap}' does not exist")
    return snapshot


def restore_snapshot(container: Container, snap: str, new_name: str | None = None) -> Container:
    """pyl-snapshot -r: a container from SNAP, named NEW_NAME or (default) replacing the original."""
    if new_name is not None and new_name != container.name:
        validate_name(new_name)
        with container.lock("restore"):
            container.require_defined()
            dest = Container(new_name, container.layout)
            _copy_locked(_snapshot(container, snap), dest, CopyRequest())
            return dest
    with container.lock("restore"):
        container.require_defined()
        container.require_state("snapshot")
        snapshot = _snapshot(container, snap)
        if live_clones(container.dir_str):
            raise WrongStateError("cannot restore in place: container has snapshot clones",
                                  hint="restore to a new name with -N")
        _restore_in_place(container, snapshot)
    return container


def _restore_in_place(container: Container, snapshot: Container) -> None:
    """Build the restored container beside the current one, then swap folder entries.

    snaps/ stays. A crash leaves both versions on disk (.restore, .restore-old), never neither.
    """
    folder = container.dir_str
    staging = os.path.join(folder, ".restore")
    old = os.path.join(folder, ".restore-old")
    for leftover in (staging, old):
        remove_tree(leftover, folder)
    os.mkdir(staging, 0o770)
    try:
        cfg = snapshot.load_config()
        request = CopyRequest(keep_name=True, keep_mac=True)
        _build(snapshot, cfg, staging, container, request)
        _unlink_quietly(os.path.join(staging, "ts"))
        _unlink_quietly(os.path.join(staging, "comment"))
    except BaseException:
        remove_tree(staging, folder)
        raise
    os.mkdir(old, 0o700)
    for entry in os.listdir(folder):
        if entry not in (SNAPS_DIR, ".restore", ".restore-old"):
            os.rename(os.path.join(folder, entry), os.path.join(old, entry))
    for entry in os.listdir(staging):
        os.rename(os.path.join(staging, entry), os.path.join(folder, entry))
    os.rmdir(staging)
    remove_tree(old, folder)


def destroy_snapshot(container: Container, snap: str) -> list[str]:
    """pyl-snapshot -d SNAP|ALL; returns the snapshots destroyed."""
    with container.lock("snapshot"):
        container.require_defined()
        if snap == "ALL":
            targets = [i.name for i in list_snapshots(container)]
        else:
            targets = [_snapshot(container, snap).name]
        for name in targets:
            Container(name, snapshots_layout(container)).destroy()
    return targets


# ---- ephemeral clones -------------------------------------------------------------------------
def run_ephemeral(copy: Container, *, command: list[str] | None = None, foreground: bool = False,
                  console=None, stop_timeout: float = 10.0) -> int:
    """Start a fresh (ephemeral) clone. With COMMAND: run it inside, then shut the clone down;
    with CONSOLE (foreground): hand the terminal to it until it stops. Returns the command's
    status, else 0. The supervisor removes an lxc.ephemeral container once it has stopped (a
    destroy: its source's list forgets it)."""
    from lxctools.errors import NotRunningError
    try:
        copy.start()
    except BaseException:
        # A clone that never ran is ours to remove, as lxc-copy -e does.
        try:
            copy.destroy(force=True)
        except PylError:
            pass
        raise
    status = 0
    if command:
        try:
            status = copy.attach(command=command, clear_env=True, pty=os.isatty(0))
        finally:
            try:
                copy.stop(timeout=stop_timeout)
            except NotRunningError:
                pass
    elif foreground and console is not None:
        console(copy)
    return status

