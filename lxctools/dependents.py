"""Who reads whose rootfs: the lxc_snapshots and lxc_rdepends files of overlay clones.

An overlay clone's lower layer is its source's rootfs, so the source must not go while a clone
lives. As in LXC, the source lists its clones in `lxc_snapshots` and each clone names its source
in `lxc_rdepends`, both as pairs of lines (LXCPATH, NAME). A source's list is rewritten
(read, change, write) only under the source's lock, or a clone registered at the same moment as
another is released could be lost from it. An entry can outlive its clone (a destroy killed
halfway, a folder removed by hand), so a list counts only the clones that still exist.
"""

from __future__ import annotations

import os

from lxctools.errors import PylError

CLONES_FILE = "lxc_snapshots"       # in a source: who depends on my rootfs
DEPENDS_FILE = "lxc_rdepends"       # in an overlay clone: whose rootfs is my lower layer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Iterable

Pair = tuple[str, str]


def read_pairs(path: str | Path) -> list[Pair]:
    """(lxcpath, name) pairs of an lxc_snapshots / lxc_rdepends file; [] if absent. A file
    that is not such pairs (binary, truncated mid-pair, edited by hand) is refused, naming it:
    read as "no clones", a source's destroy would delete the lower layer of live clones."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode()
    except FileNotFoundError:
        return []
    except (IsADirectoryError, UnicodeDecodeError) as err:
        raise _corrupt(path, "a folder" if isinstance(err, OSError) else "not text") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not text.strip() or (len(lines) == 1 and lines[0].strip().isdigit()):
        return []   # empty, or LXC 1.x's bare count: names nobody
    if len(lines) % 2 or any(not line or "\0" in line for line in lines):
        raise _corrupt(path, "not pairs of lines LXCPATH, NAME")
    return list(zip(lines[0::2], lines[1::2]))


def _corrupt(path: str | Path, problem: str) -> PylError:
    return PylError(f"{path}: corrupt clone record ({problem})",
                    hint="mend it: pairs of lines, an lxcpath then a container name, one pair per overlay clone")


def format_pairs(pairs: Iterable[Pair]) -> str:
    return "".join(f"{p}\n{n}\n" for p, n in pairs)


def write_pairs(path: str | Path, pairs: list[Pair]) -> None:
    """Replace the file atomically; no pairs, no file (LXC's "has clones" is the file's presence)."""
    from lxctools.config.model import atomic_write
    if pairs:
        atomic_write(str(path), format_pairs(pairs), mode=0o644)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def is_defined(lxcpath: str, name: str) -> bool:
    folder = os.path.join(lxcpath, name)
    return any(os.path.isfile(os.path.join(folder, c)) for c in ("config.toml", "config"))


def live_clones(source_dir: str | Path) -> list[Pair]:
    """The clones listed in the source's lxc_snapshots that still exist."""
    return [(p, n) for p, n in read_pairs(os.path.join(source_dir, CLONES_FILE)) if is_defined(p, n)]


def pair(lxcpath: str, name: str) -> Pair:
    """A container as the files name it, comparable: /var/lib/pyl/ and /var/lib/pyl are one."""
    return (os.path.normpath(lxcpath), name)


def source_of(clone_dir: str | Path) -> Pair | None:
    """The (lxcpath, name) whose rootfs the clone in CLONE_DIR reads, or None."""
    pairs = read_pairs(os.path.join(clone_dir, DEPENDS_FILE))
    return pair(*pairs[0]) if pairs else None


def register_clone(source_dir: str | Path, clone: Pair) -> None:
    """Add CLONE to the source's list (idempotent), dropping entries whose clone is gone (an
    ephemeral clone removed by the supervisor never unregisters itself). Under the source's lock."""
    path = os.path.join(source_dir, CLONES_FILE)
    kept = [p for p in read_pairs(path) if is_defined(*p) and pair(*p) != pair(*clone)]
    write_pairs(path, kept + [clone])


def unregister_clone(source_dir: str | Path, clone: Pair) -> None:
    """Drop CLONE from the source's list. Under the source's lock."""
    path = os.path.join(source_dir, CLONES_FILE)
    pairs = read_pairs(path)
    if pairs or os.path.exists(path):
        write_pairs(path, [p for p in pairs if pair(*p) != pair(*clone)])
