"""Pre-2.1 LXC key names and their current spelling (reference §4.10).

Used twice: the LXC-format parser accepts legacy names by mapping them on the fly, and
`update_legacy_text` rewrites a file the way lxc-update-config does (including
commented-out keys, the rootfs backend prefix and renumbered unindexed network blocks).
"""

from __future__ import annotations

RENAMED: dict[str, str] = {
    "lxc.utsname": "lxc.uts.name",
    "lxc.id_map": "lxc.idmap",
    "lxc.pts": "lxc.pty.max",
    "lxc.tty": "lxc.tty.max",
    "lxc.devttydir": "lxc.tty.dir",
    "lxc.aa_profile": "lxc.apparmor.profile",
    "lxc.aa_allow_incomplete": "lxc.apparmor.allow_incomplete",
    "lxc.se_context": "lxc.selinux.context",
    "lxc.mount": "lxc.mount.fstab",
    "lxc.seccomp": "lxc.seccomp.profile",
    "lxc.console": "lxc.console.path",
    "lxc.haltsignal": "lxc.signal.halt",
    "lxc.rebootsignal": "lxc.signal.reboot",
    "lxc.stopsignal": "lxc.signal.stop",
    "lxc.syslog": "lxc.log.syslog",
    "lxc.loglevel": "lxc.log.level",
    "lxc.logfile": "lxc.log.file",
    "lxc.init_cmd": "lxc.init.cmd",
    "lxc.init_uid": "lxc.init.uid",
    "lxc.init_gid": "lxc.init.gid",
    "lxc.rootfs": "lxc.rootfs.path",
    "lxc.network": "lxc.net",
}

REMOVED = frozenset({"lxc.rootfs.backend", "lxc.pivotdir", "lxc.kmsg"})


class NetworkNumbering:
    """Index of unindexed `lxc.network.*` lines: a new block starts at every `lxc.network.type`."""

    __slots__ = ("index",)

    def __init__(self) -> None:
        self.index = -1

    def for_key(self, sub: str) -> int:
        if sub == "type":
            self.index += 1
        return max(self.index, 0)


def is_legacy(key: str) -> bool:
    return (key in RENAMED or key in REMOVED or key.startswith("lxc.network.")
            or key.startswith("lxc.limit."))


def modernize(key: str, numbering: NetworkNumbering) -> str | None:
    """The current name of KEY (unchanged if not legacy); None if the key was removed."""
    if key in REMOVED:
        return None
    renamed = RENAMED.get(key)
    if renamed is not None:
        return renamed
    if key.startswith("lxc.limit."):
        return "lxc.prlimit." + key[len("lxc.limit."):]
    if not key.startswith("lxc.network."):
        return key
    rest = key[len("lxc.network."):]
    head, _, sub = rest.partition(".")
    if head.isascii() and head.isdigit():
        index = int(head)
    else:
        index, sub = numbering.for_key(rest), rest
    if sub in ("ipv4", "ipv6"):
        sub += ".address"
    return f"lxc.net.{index}" + (f".{sub}" if sub else "")


def update_legacy_text(text: str) -> str:
    """Rewrite legacy keys in an LXC config text the way lxc-update-config does.

    Commented-out keys are renamed too; `lxc.rootfs = X` becomes `lxc.rootfs.path = BACKEND:X`
    (BACKEND from `lxc.rootfs.backend`, default dir); removed keys are deleted.
    """
    lines = text.splitlines(keepends=True)
    backend = "dir"
    for line in lines:
        key, _, value = line.strip().partition("=")
        if key.strip() == "lxc.rootfs.backend" and value.strip():
            backend = value.strip()
    numbering = NetworkNumbering()
    commented_numbering = NetworkNumbering()
    out: list[str] = []
    for line in lines:
        stripped = line.lstrip()
        comment = ""
        body = stripped
        if stripped.startswith("#"):
            comment = "#"
            body = stripped[1:]
        key, eq, value = body.partition("=")
        key = key.strip()
        if not eq or not key.startswith("lxc.") or not is_legacy(key):
            out.append(line)
            continue
        new = modernize(key, commented_numbering if comment else numbering)
        if new is None:
            if comment:
                out.append(line)  # a commented-out removed key harms nobody
            continue
        value = value.strip()
        if key == "lxc.rootfs" and value and ":" not in value.split("/", 1)[0]:
            value = f"{backend}:{value}"
        newline = "\n" if line.endswith("\n") else ""
        indent = line[: len(line) - len(stripped)]
        out.append(f"{indent}{comment}{new} = {value}".rstrip() + newline)
    return "".join(out)
