"""Passing host devices into a running container (pyl-device), and taking them back.

Two kinds, as lxc-device:
  device nodes   /dev/xxx: the node is made inside the container's /dev by a forked child that
                 setns()'s into the container's mount namespace (its root then is the container's,
                 so no path the container controls can lead the child to a host file), with the
                 host node's type, major:minor and mode; the container's device cgroup is told to
                 allow it: v1 devices.allow, or on pure cgroup v2 a new BPF device program (the
                 config's rules plus the devices granted so far, kept in the run dir for the
                 container's current run) put in place of the one attached at start.
  interfaces     a host network interface is moved into the container's network namespace with one
                 RTM_NEWLINK (IFLA_NET_NS_PID + IFLA_IFNAME: the new name is given inside only, so
                 it never has to be free on the host); back out from a forked child in the netns.
                 The netlink part loads pyroute2 lazily, through lxctools.runtime.net; it belongs
                 there once that module has move-in/move-out functions.
Errors become lxctools.errors with one-line messages; nothing here prints.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lxctools.errors import (
    AlreadyExistsError, KernelError, NotFoundError, PermissionDeniedError, PylError, UsageError,
)


@dataclass(frozen=True)
class DeviceNode:
    kind: str    # "c" or "b"
    major: int
    minor: int
    mode: int    # permission bits only
    uid: int
    gid: int

    def cgroup_rule(self, access: str = "rwm") -> str:
        """The v1 devices.allow/deny line for exactly this node."""
        return f"{self.kind} {self.major}:{self.minor} {access}"

    @property
    def st_mode(self) -> int:
        return self.mode | (stat.S_IFCHR if self.kind == "c" else stat.S_IFBLK)


def node_of_stat(st: os.stat_result) -> DeviceNode | None:
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return DeviceNode(kind, os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode),
                      st.st_uid, st.st_gid)


def host_node(path: str) -> DeviceNode:
    """The host's device node at path; NotFoundError / UsageError when it is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotFoundError(f"'{path}' does not exist on the host") from None
    node = node_of_stat(st)
    if node is None:
        raise UsageError(f"'{path}' is not a character or block device")
    return node


def container_path(device: str, name_in_container: str | None) -> str:
    """Absolute path of the node inside the container: NAME-IN-CONTAINER or the host path;
    a bare name means /dev/NAME. No '..': the child resolves paths in the container's root anyway,
    but a name that climbs is a typo or a probe."""
    target = name_in_container or device
    if not target.startswith("/"):
        target = "/dev/" + target
    if ".." in target.split("/"):
        raise UsageError(f"'{target}': '..' is not allowed in a device path")
    target = os.path.normpath(target)
    if target in ("/", "/dev"):
        raise UsageError(f"'{target}' is not a usable device path")
    return target


def is_host_interface(name: str, sys_class_net: str = "/sys/class/net") -> bool:
    return "/" not in name and name not in (".", "..", "") and os.path.exists(os.path.join(sys_class_net, name))


def permitted_by_config(values: Mapping[str, object], node: DeviceNode) -> bool:
    """Whether the container's own v1 device policy (lxc.cgroup.devices.*, or LXC's default
    allow-list) already grants rwm on node -- then `del` must not deny it (e.g. /dev/null)."""
    from lxctools.runtime.cgroups.devices import config_policy
    policy = config_policy(values, "lxc.cgroup.devices")
    if policy is None:
        return True  # the config enforces nothing
    verdict = policy.default_allow
    for rule in policy.rules:  # later rules refine earlier ones
        if rule.type in ("a", node.kind) and rule.major in (None, node.major) \
                and rule.minor in (None, node.minor) and (not rule.allow or rule.access == "rwm"):
            verdict = rule.allow
    return verdict


# ------------------------------------------------------------------ forked children


def _in_namespace(pid: int, ns_name: str, work: Callable[[], str]) -> str:
    """Run work() in a forked child that joined pid's ``ns_name`` namespace; return what it returned,
    or raise the PylError it raised (exit code and message travel back through a pipe)."""
    from lxctools.kernel import ns
    try:
        ns_fd = os.open(f"/proc/{pid}/ns/{ns_name}", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFoundError("the container's init is gone (it stopped meanwhile)") from None
    r, w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        code, text = 0, ""
        try:
            os.close(r)
            ns.setns(ns_fd, ns.NAMESPACES[ns_name])
            text = work()
        except PylError as err:
            code, text = int(err.exit_code) or 1, err.message
        except OSError as err:
            code, text = 1, f"{err.filename or ''}{': ' if err.filename else ''}{err.strerror}"
        except BaseException as err:  # a bug: say what, the parent turns it into one line
            code, text = 70, f"{type(err).__name__}: {err}"
        os.write(w, f"{code}\n{text}".encode())
        os._exit(0 if code == 0 else 1)
    os.close(w)
    os.close(ns_fd)
    chunks = []
    while chunk := os.read(r, 65536):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(child, 0)
    code_text, _, text = b"".join(chunks).decode(errors="replace").partition("\n")
    if not code_text:
        raise PylError("the helper process died before reporting")
    if int(code_text) != 0:
        raise PylError(text, exit_code=int(code_text))
    return text


def _make_node(target: str, node: DeviceNode) -> str:
    """In the container's mount namespace: mkdir -p the parent, mknod (idempotent for the same node)."""
    os.umask(0)
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    try:
        os.mknod(target, node.st_mode, os.makedev(node.major, node.minor))
    except FileExistsError:
        existing = node_of_stat(os.lstat(target))
        if existing is None or (existing.kind, existing.major, existing.minor) != (node.kind, node.major, node.minor):
            raise AlreadyExistsError(f"{target} already exists in the container and is another file") from None
        return "exists"
    os.chown(target, node.uid, node.gid)
    return "made"


def _remove_node(target: str) -> str:
    """In the container's mount namespace: unlink target if it is a device node; report it."""
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        raise NotFoundError(f"{target} does not exist in the container") from None
    node = node_of_stat(st)
    if node is None:
        raise UsageError(f"{target} in the container is not a device node; not removing it")
    os.unlink(target)
    return f"{node.kind} {node.major} {node.minor}"


def add_node(pid: int, node: DeviceNode, target: str) -> bool:
    """Create the node at target inside pid's mount namespace; False if it was already there."""
    return _in_namespace(pid, "mnt", lambda: _make_node(target, node)) == "made"


def remove_node(pid: int, target: str) -> DeviceNode:
    """Remove the node at target inside pid's mount namespace; returns what it was."""
    kind, major, minor = _in_namespace(pid, "mnt", lambda: _remove_node(target)).split()
    return DeviceNode(kind, int(major), int(minor), 0, 0, 0)


# ------------------------------------------------------------------ devices cgroup


def _devices_dir(plan) -> str:
    d = plan.v1_dir("devices")
    return d.path if d is not None else ""  # hybrid without a v1 devices hierarchy: unrestricted


def _pure_v2(plan) -> bool:
    return plan.unified is not None and not any(x.version == 1 for x in plan.dirs)


class Granted:
    """The devices pyl-device allowed in a pure-v2 container's current run: a JSON file in the
    run dir, tied to its init (PID and start time), so a restart begins from the config again."""

    def __init__(self, path: str, init: tuple[int, int]) -> None:
        self.path, self.init = path, list(init)

    def rules(self) -> list[str]:
        """The rules granted in this run ([] if none, or the record is of an earlier run). A
        record that cannot be read is refused, naming it: taken as "none", the next pyl-device
        would rebuild the program without the devices granted so far."""
        from lxctools import cjson
        from lxctools.runtime.cgroups.devices import parse_rule
        try:
            with open(self.path, "rb") as f:
                record = cjson.loads(f.read())
        except FileNotFoundError:
            return []
        except (IsADirectoryError, ValueError) as err:
            raise self._corrupt("a folder" if isinstance(err, OSError) else f"not JSON: {err}") from None
        init, allow = (record.get("init"), record.get("allow")) if isinstance(record, dict) else (None, None)
        if not (isinstance(init, list) and len(init) == 2 and all(type(n) is int for n in init)
                and isinstance(allow, list) and all(isinstance(r, str) for r in allow)):
            raise self._corrupt('not {"init": [PID, STARTTIME], "allow": [RULE, ...]}')
        if init != self.init:
            return []
        for rule in allow:
            try:
                parse_rule(rule, True, key="rule")  # the kernel's range of device numbers included
            except PylError as err:
                raise self._corrupt(err.message) from None
        return list(allow)

    def _corrupt(self, problem: str) -> PylError:
        return PylError(f"{self.path}: corrupt record of granted devices ({problem})",
                        hint="remove it: the devices pyl-device granted in this run are then taken back by the next pyl-device")

    def save(self, rules: list[str]) -> None:
        from pathlib import Path
        from lxctools.state import write_json_atomic
        write_json_atomic(Path(self.path), {"init": self.init, "allow": rules})


def _replace_v2_program(plan, values: Mapping[str, object], granted_rules: list[str]) -> None:
    """The start's device program again, with the granted devices allowed ahead of the config's
    rules (a device the admin hands in wins over a broad deny of the config)."""
    from lxctools.kernel import bpf
    from lxctools.runtime.cgroups.devices import config_policy, parse_rule
    policy = config_policy(values, "lxc.cgroup2.devices")
    if policy is None:
        return  # the config enforces nothing: no program was attached
    granted = [parse_rule(text, True, key="pyl-device") for text in granted_rules]
    try:
        bpf.replace_device_program(plan.unified.path, policy.default_allow, policy.bpf_rules(granted))
    except OSError as err:
        raise KernelError(f"cannot replace the device program of {plan.unified.path}: {err.strerror}",
                          err.errno) from err


def allow_in_cgroup(plan, node: DeviceNode, *, values: Mapping[str, object] | None = None,
                    granted: Granted | None = None) -> None:
    from lxctools.runtime import cgroups
    if _devices_dir(plan):
        cgroups.write_value(plan, "devices.allow", node.cgroup_rule())
    elif _pure_v2(plan) and granted is not None:
        rules = granted.rules()
        if node.cgroup_rule() not in rules:
            rules.append(node.cgroup_rule())
        _replace_v2_program(plan, values or {}, rules)
        granted.save(rules)


def deny_in_cgroup(plan, node: DeviceNode, *, values: Mapping[str, object] | None = None,
                   granted: Granted | None = None) -> None:
    """Take back what allow_in_cgroup gave NODE, unless the config grants it anyway (then
    `del` must not deny it: /dev/null)."""
    from lxctools.runtime import cgroups
    values = values or {}
    if _devices_dir(plan):
        if not permitted_by_config(values, node):
            cgroups.write_value(plan, "devices.deny", node.cgroup_rule())
    elif _pure_v2(plan) and granted is not None:  # the rebuilt program has the config's rules
        rules = [r for r in granted.rules() if r != node.cgroup_rule()]
        _replace_v2_program(plan, values, rules)
        granted.save(rules)


# ------------------------------------------------------------------ network interfaces


def _netlink_error(err: Exception, what: str) -> PylError:
    import errno as _errno
    code = getattr(err, "errno", None) or 0
    text = os.strerror(code) if code else str(err)
    if code == _errno.EEXIST:
        return AlreadyExistsError(f"{what}: an interface with that name already exists there")
    if code == _errno.EPERM:
        return PermissionDeniedError(f"{what}: {text}", hint="pyl-device needs root")
    if code == _errno.EINVAL:
        return KernelError(f"{what}: {text} (some interfaces, e.g. lo and bridges, cannot change namespace)", code)
    return KernelError(f"{what}: {text}", code)


def interfaces_in_netns(pid: int, proc: str = "/proc") -> list[str]:
    """Interface names of pid's network namespace, from PROC/PID/net/dev (per namespace)."""
    try:
        with open(f"{proc}/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except FileNotFoundError:
        raise NotFoundError("the container's init is gone (it stopped meanwhile)") from None
    return [line.split(":", 1)[0].strip() for line in lines if ":" in line]


def move_interface_in(pid: int, host_name: str, inside_name: str) -> None:
    """Move host interface host_name into pid's network namespace, named inside_name there."""
    # The kernel moves first and renames afterwards (IFLA_IFNAME is only used during the move when
    # the old name collides), so a taken name would leave the interface inside under its host name.
    if inside_name in interfaces_in_netns(pid):
        raise AlreadyExistsError(f"the container already has an interface named {inside_name}")
    from lxctools.kernel.netlink import NetlinkError
    from lxctools.runtime.net import move_link
    try:
        if not move_link(host_name, inside_name, pid):
            raise NotFoundError(f"no host interface '{host_name}'")
    except NetlinkError as err:
        failure = _netlink_error(err, f"cannot move {host_name} into the container as {inside_name}")
        if not is_host_interface(host_name) and host_name in interfaces_in_netns(pid):
            move_interface_out(pid, host_name, host_name)  # moved but not renamed: undo the move
        raise failure from None


def _move_out(inside_name: str, host_name: str, host_ns_fd: int) -> str:
    from lxctools.kernel.netlink import NetlinkError
    from lxctools.runtime.net import NetnsFd, move_link
    try:
        if not move_link(inside_name, host_name, NetnsFd(host_ns_fd)):
            raise NotFoundError(f"no interface '{inside_name}' in the container")
    except NetlinkError as err:
        raise _netlink_error(err, f"cannot move {inside_name} back to the host as {host_name}") from None
    return "moved"


def move_interface_out(pid: int, inside_name: str, host_name: str) -> None:
    """Move inside_name out of pid's network namespace into ours (the host's), named host_name."""
    host_ns_fd = os.open("/proc/self/ns/net", os.O_RDONLY)  # inherited by the child (no CLOEXEC needed: no exec)
    try:
        _in_namespace(pid, "net", lambda: _move_out(inside_name, host_name, host_ns_fd))
    finally:
        os.close(host_ns_fd)
