"""Conversion between the LXC and TOML formats, and legacy-key updating (pyl-update-config).

LXC -> TOML keeps each key's *effective* own lines (TOML has no line order): an earlier
value overridden or cleared inside the same file disappears; a clear that follows an
include (and so clears included values) is kept as "" (first array element for multi-valued
keys), because in TOML includes are processed first. Comments travel with the key line
that follows them. `convert_file` checks that the result has the same values.
"""

from __future__ import annotations

import os

from lxctools.config import keys
from lxctools.config.lxcformat import format_line
from lxctools.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from lxctools.config.lxcformat import Entry


def pairs_to_toml(pairs: Iterable[tuple[str | None, Entry | None]]) -> str:
    """TOML text for a document's (comment, entry) sequence in LXC processing order."""
    from lxctools.config.tomlformat import render

    own: dict[str, list[str]] = {}
    comments: dict[str, list[str]] = {}
    header: list[str] = []
    pending: list[str] = []
    orphans: list[str] = []
    seen_include = False
    seen_key = False

    def attach(key: str) -> None:
        nonlocal pending, seen_key
        if not seen_key:
            header.extend(pending)
        else:
            comments.setdefault(key, []).extend(pending)
        pending = []
        seen_key = True

    def drop(key: str) -> None:
        own.pop(key, None)
        orphans.extend(comments.pop(key, []))

    for comment, entry in pairs:
        if entry is None:
            if comment is not None and comment.strip():
                pending.append(comment)
            continue
        key, value = entry.key, entry.value
        spec = keys.lookup(key)
        attach(key)
        if key == "lxc.include":
            if value:
                own.setdefault(key, []).append(value)
                seen_include = True
            continue
        if spec.group_clear:
            for k in [k for k in own if k == key or keys.cleared_by(key, k)]:
                drop(k)
            if seen_include:
                own[key] = [""]
            continue
        if value == "":
            if seen_include:
                own.pop(key, None)   # re-insert: keep first-appearance order meaningful
                own[key] = [""]
            else:
                drop(key)
            continue
        if not spec.multi:
            own[key] = [value]
        elif key == "lxc.cap.keep" and "none" in value.split():
            own[key] = [value]
        else:
            own.setdefault(key, []).append(value)
    items = [(key, values, comments.get(key, [])) for key, values in own.items()]
    return render(items, header, orphans + pending)


def pairs_to_lxc(pairs: Iterable[tuple[str | None, Entry | None]]) -> str:
    """LXC-format text for a document's (comment, entry) sequence in processing order."""
    lines: list[str] = []
    for comment, entry in pairs:
        if entry is None:
            if comment:
                lines.append(comment if comment.startswith("#") else "# " + comment)
            continue
        lines.append(format_line(entry.key, entry.value))
    return "".join(line + "\n" for line in lines)


def convert_file(path: str, to_fmt: str) -> str:
    """The text of the config at PATH in TO_FMT; ConfigError if that would change its values."""
    from lxctools.config.model import ContainerConfig

    config = ContainerConfig.load(path)
    text = config.to_text(to_fmt)
    converted = ContainerConfig.from_text(text, fmt=to_fmt, source=config.source,
                                          base_dir=os.path.dirname(os.path.abspath(config.source)))
    before, after = config.values(), converted.values()
    if before != after:
        differ = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        raise ConfigError(f"{config.source}: converting to {to_fmt} would change "
                          f"{', '.join(differ)} (include order); reorder the file and retry")
    return text


def update_legacy_file(path: str) -> bool:
    """Rewrite legacy keys of the LXC config at PATH in place (PATH.backup keeps the old text).

    Returns False (and writes nothing) when there was nothing to update.
    """
    from lxctools.config.legacy import update_legacy_text
    from lxctools.config.model import atomic_write, read_config_text

    text = read_config_text(path)
    new = update_legacy_text(text)
    if new == text:
        return False
    atomic_write(path + ".backup", text)
    atomic_write(path, new)
    return True
