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
"""

from __future__ import annotations

import os
import re
import time
from collections import namedtuple
from pathlib import Path

from lxctools.container import Container, remove_tree
from lxctools.dependents import (
    CLONES_FILE, DEPENDS_FILE, format_pairs, live_clones, pair, read_pairs, register_clone,
    source_of, unregister_clone, write_pairs,
)
from lxctools.runtime.storage import (  # noqa: F401  (re-exported: clone's public storage helpers)
    Storage, copy_tree, parse_storage, set_hostname_file, storage_spec,
)
from lxctools.errors import (
    AlreadyExistsError, NotFoundError, PylError, UsageError, WrongStateError,
)
from lxctools.names import random_text, validate_name
from lxctools.paths import PARTIAL_MARKER, Layout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable

    from lxctools.config.model import ContainerConfig

SNAPS_DIR = "snaps"
OVERLAY_UPPER = Path("overlay", "delta")
HWADDR_TEMPLATE = "00:16:3e:xx:xx:xx"   # what LXC's clone gives a regenerated MAC
TS_FORMAT = "%Y:%m:%d %H:%M:%S"

# Entries of a container folder a copy never takes over verbatim: bookkeeping of the source,
# its snapshots, its storage (copied on purpose below) and the config (rewritten).
_NOT_COPIED = frozenset({SNAPS_DIR, CLONES_FILE, DEPENDS_FILE, PARTIAL_MARKER, "config", "config.toml"})


# ---- config rewriting (pure) --------------------------------------------------------------
def rewrite_paths(text: str, old_dir: Path | str, new_dir: Path | str) -> str:
    """Replace the folder OLD_DIR by NEW_DIR wherever it starts a path in a config text.

    Only whole path components match: renaming c1 leaves /lxc/c10 and /srv/lxc/c1x alone.
    """
    old, new = str(old_dir).rstrip("/"), str(new_dir).rstrip("/")
    pattern = re.compile(r"(?<![\w./-])" + re.escape(old) + r"(?=[/:\s\"',\]]|$)", re.M)
    return pattern.sub(lambda _m: new, text)


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
class CopyRequest(namedtuple("CopyRequest", "snapshot backing keep_name keep_mac allow_running ephemeral",
                             defaults=(False, None, False, False, False, False))):
    """What a copy should produce; the CLI fills it from pyl-copy's options.

    snapshot (-s): overlay clone (copy-on-write) instead of a full copy; backing (-B): "dir" or
    "overlay", None keeps the source's kind; keep_name (-K); keep_mac (-M); allow_running (-a);
    ephemeral: lxc.ephemeral = 1 in the copy. (A namedtuple: dataclasses cost ~5 ms to import.)"""

    __slots__ = ()

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
        return (str(src.layout.lxcpath), src.name)
    if storage.kind == "overlay":
        return source_of(src.dir)
    return None


def _build(src: Container, cfg: "ContainerConfig", staging: Path, final: Container, request: CopyRequest,
           extra_files: dict[str, bytes] | None = None) -> Storage:
    """Write a copy of SRC into STAGING, with every path inside naming FINAL's folder."""
    from lxctools.config.model import ContainerConfig
    values = cfg.values()
    source = parse_storage(values.get("lxc.rootfs.path"))
    kind = request.target_kind(source)
    skip = set(_NOT_COPIED) | {f"{src.name}.log"}
    if source.path is not None and _inside(source.path, src.dir):
        parts = Path(os.path.abspath(source.path)).relative_to(os.path.abspath(src.dir)).parts
        if not parts:
            raise UsageError("lxc.rootfs.path is the container folder itself; pyl cannot copy that")
        skip.add(parts[0])
    for entry in sorted(os.listdir(src.dir)):
        if entry in skip or entry.startswith("."):
            continue
        _copy_entry(src.dir / entry, staging / entry)

    target: Storage
    if kind == "dir":
        target = Storage("dir", final.dir / "rootfs", prefixed=source.prefixed)
        if source.path is not None and source.path.exists():
            copy_tree(source.path, staging / "rootfs")
        else:
            raise NotFoundError(f"rootfs {source.path} does not exist")
    elif kind == "overlay":
        lowers = (source.path,) if source.kind == "dir" else source.lowers
        target = Storage("overlay", final.dir / OVERLAY_UPPER, tuple(Path(p) for p in lowers))
        (staging / OVERLAY_UPPER.parent).mkdir(mode=0o755)
        if source.kind == "overlay":
            copy_tree(source.path, staging / OVERLAY_UPPER)
        else:
            (staging / OVERLAY_UPPER).mkdir()
            os.chmod(staging / OVERLAY_UPPER, 0o755)
    else:
        target = source

    text = rewrite_paths(cfg.to_text(), src.dir, final.dir)
    config_name = src.config_path.name if src.config_path else "config.toml"
    new_cfg = ContainerConfig.from_text(text, fmt=cfg.fmt, source=str(final.dir / config_name),
                                        base_dir=final.dir)
    rewrite_config(new_cfg, new_name=final.name, rootfs=target if kind != "none" else None,
                   keep_name=request.keep_name, keep_mac=request.keep_mac, ephemeral=request.ephemeral)
    new_cfg.values()   # the copy must load before it is declared made

    if not request.keep_name and kind != "none":
        staged = Storage(target.kind, _restage(target.path, final.dir, staging), target.lowers)
        set_hostname_file(staged, final.name)
    if kind == "overlay":
        owner = _dependency_owner(src, source)
        if owner is not None:
            (staging / DEPENDS_FILE).write_text(format_pairs([owner]))
    for name, data in (extra_files or {}).items():
        (staging / name).write_bytes(data)
    from lxctools.config.model import atomic_write
    atomic_write(str(staging / config_name), new_cfg.to_text(), mode=0o640)
    return target


def _restage(path: Path | None, final_dir: Path, staging: Path) -> Path | None:
    if path is None or not _inside(path, final_dir):
        return path
    return staging / path.relative_to(final_dir)


def _copy_entry(src: Path, dst: Path) -> None:
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
    elif src.is_dir():
        copy_tree(src, dst)
    elif src.is_file():
        import shutil
        shutil.copy2(src, dst, follow_symlinks=False)
        st = os.lstat(src)
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)


def _inside(path: Path | None, folder: Path) -> bool:
    if path is None:
        return False
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(folder))
    except ValueError:
        return False
    return True


def _copy_locked(src: Container, dest: Container, request: CopyRequest,
                 extra_files: dict[str, bytes] | None = None) -> Storage:
    """Copy SRC (whose lock the caller holds) to DEST under DEST's create lock and a partial marker."""
    src.require_defined()
    rs = src.runstate()
    if rs.state.is_running and not request.allow_running:
        raise WrongStateError(f"cannot copy: container is {rs.state}",
                              hint="stop it first, or use -a to copy it while it runs")
    cfg = src.load_config()
    with dest.building():
        registered: tuple[Path, tuple[str, str]] | None = None
        try:
            target = _build(src, cfg, dest.dir, dest, request, extra_files)
            if target.kind == "overlay":
                owner = source_of(dest.dir)
                if owner:
                    owner_dir = Path(*owner)
                    registered = (owner_dir, (str(dest.layout.lxcpath), dest.name))
                    _with_owner_lock(src, owner, lambda: register_clone(*registered))
        except BaseException:
            if registered is not None:
                try:
                    _with_owner_lock(src, (str(registered[0].parent), registered[0].name),
                                     lambda: unregister_clone(*registered))
                except PylError:
                    pass
            raise
    return target


def _with_owner_lock(held: Container, owner: tuple[str, str], action) -> None:
    """Run ACTION under the owner's lock, unless the owner is the container whose lock we hold."""
    if Path(owner[0]) == held.layout.lxcpath and owner[1] == held.name:
        action()
        return
    other = Container(owner[1], Layout(Path(owner[0]), held.layout.rundir))
    with other.lock("copy", wait=5.0):
        action()


# ---- public operations ----------------------------------------------------------------------
def copy_container(src: Container, new_name: str, new_lxcpath: Path | None = None,
                   request: CopyRequest = CopyRequest()) -> Container:
    """pyl-copy: a full copy or an overlay snapshot clone of SRC named NEW_NAME; returns it."""
    validate_name(new_name)
    layout = Layout(Path(os.path.abspath(new_lxcpath)), src.layout.rundir) if new_lxcpath else src.layout
    dest = Container(new_name, layout)
    if dest.dir == src.dir:
        raise AlreadyExistsError("the copy would overwrite its source", hint="pick another name with -N")
    with src.lock("copy"):
        _copy_locked(src, dest, request)
    return dest


def rename_container(src: Container, new_name: str, *, keep_name: bool = False) -> Container:
    """pyl-copy -R: move the folder, then fix the paths and the hostname. Refuses while running."""
    validate_name(new_name)
    dest = Container(new_name, src.layout)
    if dest.dir == src.dir:
        raise AlreadyExistsError("the new name is the current name")
    with src.lock("rename"):
        src.require_defined()
        rs = src.runstate()
        if rs.state.is_running:
            raise WrongStateError(f"cannot rename: container is {rs.state}", hint="stop it first")
        if live_clones(src.dir):
            raise WrongStateError("cannot rename: container has snapshot clones",
                                  hint="their lower layer is this container's rootfs; destroy them first")
        with dest.lock("create"):
            if dest.is_partial():
                dest.reap_partial(holding_lock=True)
            if dest.dir.exists() or dest.dir.is_symlink():
                raise AlreadyExistsError("container already exists" if dest.config_path else
                                         f"{dest.dir} exists but is not a container")
            prepared = _prepare_renamed_configs(src, dest, keep_name)
            # The folder moves in one rename(2); the configs written beside the old ones follow
            # with one rename each.
            os.rename(src.dir, dest.dir)
            for tmp, final in prepared:
                os.rename(_moved(tmp, src.dir, dest.dir), _moved(final, src.dir, dest.dir))
            cfg = dest.load_config()
            if not keep_name:
                set_hostname_file(parse_storage(cfg.values().get("lxc.rootfs.path")), new_name)
            owner = source_of(dest.dir)
            if owner is not None:
                old, new = (str(src.layout.lxcpath), src.name), (str(dest.layout.lxcpath), dest.name)
                def swap() -> None:
                    path = Path(*owner) / CLONES_FILE
                    write_pairs(path, [new if pair(*pr) == pair(*old) else pr for pr in read_pairs(path)])
                _with_owner_lock(dest, owner, swap)
    return dest


def _moved(path: Path, old_dir: Path, new_dir: Path) -> Path:
    return new_dir / path.relative_to(old_dir)


def _prepare_renamed_configs(src: Container, dest: Container, keep_name: bool) -> list[tuple[Path, Path]]:
    from lxctools.config.model import ContainerConfig, atomic_write
    prepared: list[tuple[Path, Path]] = []
    configs = [(src.config_path, True)]
    snaps = src.dir / SNAPS_DIR
    if snaps.is_dir():
        for snap in sorted(snaps.iterdir()):
            path = Layout(snaps, src.layout.rundir).config_file(snap.name)
            if path is not None:
                configs.append((path, False))
    try:
        for path, is_main in configs:
            assert path is not None
            cfg = ContainerConfig.load(path)
            text = rewrite_paths(cfg.to_text(), src.dir, dest.dir)
            new_cfg = ContainerConfig.from_text(text, fmt=cfg.fmt, source=str(path), base_dir=path.parent)
            if is_main and not keep_name:
                new_cfg.set("lxc.uts.name", dest.name)
            tmp = path.with_name(f".{path.name}.rename")
            atomic_write(str(tmp), new_cfg.to_text(), mode=0o640)
            prepared.append((tmp, path))
    except BaseException:
        for tmp, _ in prepared:
            tmp.unlink(missing_ok=True)
        raise
    return prepared


def ephemeral_name(base: str) -> str:
    """NAME_XXXXXX as lxc-copy -e picks when no -N is given."""
    import string
    return f"{base[:64 - 7]}_{random_text(6, string.ascii_letters + string.digits)}"


# ---- snapshots ------------------------------------------------------------------------------
class SnapshotInfo(namedtuple("SnapshotInfo", "name lxcpath timestamp comment")):
    """lxcpath: LXCPATH/NAME/snaps; timestamp: YYYY:MM:DD hh:mm:ss ("" if the ts file is
    missing); comment: the comment file's text, or None."""

    __slots__ = ()

    def line(self) -> str:
        return f"{self.name} ({self.lxcpath}) {self.timestamp}"

    def as_json(self) -> dict:
        return {"name": self.name, "path": str(self.lxcpath), "timestamp": self.timestamp,
                "comment": self.comment}


_SNAP_RE = re.compile(r"snap(0|[1-9][0-9]*)")


def snapshot_index(name: str) -> int | None:
    match = _SNAP_RE.fullmatch(name)
    return int(match.group(1)) if match else None


def next_snapshot_name(existing: Iterable[str]) -> str:
    """The first free snapN (LXC reuses the lowest gap)."""
    taken = {snapshot_index(n) for n in existing}
    i = 0
    while i in taken:
        i += 1
    return f"snap{i}"


def snapshots_layout(container: Container) -> Layout:
    return Layout(container.dir / SNAPS_DIR, container.layout.rundir)


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
        folder = layout.container_dir(name)
        infos.append(SnapshotInfo(name, layout.lxcpath, _read_text(folder / "ts") or "",
                                  _read_text(folder / "comment")))
    return infos


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return None


def create_snapshot(container: Container, comment_file: str | None = None,
                    now: float | None = None) -> str:
    """pyl-snapshot: copy the stopped container into snaps/snapN; returns snapN."""
    extra: dict[str, bytes] = {}
    if comment_file is not None:
        try:
            extra["comment"] = Path(comment_file).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"comment file '{comment_file}' does not exist") from None
        except OSError as exc:
            raise PylError(f"cannot read '{comment_file}': {exc.strerror}") from None
    extra["ts"] = time.strftime(TS_FORMAT, time.localtime(now)).encode()
    with container.lock("snapshot"):
        container.require_defined()
        container.require_state("snapshot")
        layout = snapshots_layout(container)
        layout.lxcpath.mkdir(mode=0o755, exist_ok=True)
        from lxctools.container import list_container_names
        list_container_names(layout)  # reaps what a snapshot killed halfway left: its index is free again
        name = next_snapshot_name(os.listdir(layout.lxcpath))
        # Snapshots keep the name and MACs: restoring one gives back the same container.
        _copy_locked(container, Container(name, layout), CopyRequest(keep_name=True, keep_mac=True),
                     extra_files=extra)
    return name


def _snapshot(container: Container, snap: str) -> Container:
    if snapshot_index(snap) is None and not (container.dir / SNAPS_DIR / snap).is_dir():
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
        if live_clones(container.dir):
            raise WrongStateError("cannot restore in place: container has snapshot clones",
                                  hint="restore to a new name with -N")
        _restore_in_place(container, snapshot)
    return container


def _restore_in_place(container: Container, snapshot: Container) -> None:
    """Build the restored container beside the current one, then swap folder entries.

    snaps/ stays. A crash leaves both versions on disk (.restore, .restore-old), never neither.
    """
    staging = container.dir / ".restore"
    old = container.dir / ".restore-old"
    for leftover in (staging, old):
        if leftover.exists():
            remove_tree(leftover, container.dir)
    staging.mkdir(mode=0o770)
    try:
        cfg = snapshot.load_config()
        request = CopyRequest(keep_name=True, keep_mac=True)
        _build(snapshot, cfg, staging, container, request)
        (staging / "ts").unlink(missing_ok=True)
        (staging / "comment").unlink(missing_ok=True)
    except BaseException:
        remove_tree(staging, container.dir)
        raise
    old.mkdir(mode=0o700)
    for entry in os.listdir(container.dir):
        if entry not in (SNAPS_DIR, ".restore", ".restore-old"):
            os.rename(container.dir / entry, old / entry)
    for entry in os.listdir(staging):
        os.rename(staging / entry, container.dir / entry)
    staging.rmdir()
    remove_tree(old, container.dir)


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

