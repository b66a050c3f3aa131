"""The container's filesystem: lxc.rootfs.*, lxc.mount.*, lxc.autodev and the tty keys.

`plan_rootfs` turns the config mapping into a `RootfsPlan`: an ordered tuple of frozen mount
operations (plain values, like mkosi's FSOperation). `apply_rootfs` executes it inside the
container's new mount namespace, as PID 1 of the new PID namespace, then pivots into the rootfs.

Every target is a path *inside* the rootfs and is resolved with openat2(RESOLVE_IN_ROOT |
RESOLVE_NO_MAGICLINKS); mounts then land on the resolved fd (/proc/self/fd/N or move_mount),
so a symlink planted in the rootfs can never redirect a mount onto a host path
(CVE-2015-1335, CVE-2019-5736-class races in other runtimes).
"""

from lxctools.runtime.rootfs.apply import (  # noqa: F401
    apply_rootfs, describe, mount_operations, prepare_root, switch_root,
)
from lxctools.runtime.rootfs.plan import (  # noqa: F401
    BindMount, ConsoleBind, MakeNode, MaskPath, MountFs, ReadOnlyPath, RootAttributes, RootfsBind,
    RootfsOverlay, RootfsPlan, Symlink, TtyBind, host_cgroup_layout, parse_mount_entry, plan_rootfs,
)

__all__ = [
    "apply_rootfs", "describe", "mount_operations", "prepare_root", "switch_root",
    "BindMount", "ConsoleBind", "MakeNode", "MaskPath", "MountFs", "ReadOnlyPath", "RootAttributes",
    "RootfsBind", "RootfsOverlay", "RootfsPlan", "Symlink", "TtyBind", "host_cgroup_layout",
    "parse_mount_entry", "plan_rootfs",
]
