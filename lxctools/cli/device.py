"""pyl-device: pass a host device node or network interface into a running container, or take it back."""

from __future__ import annotations

HELP = """Add a host device to a running container, or remove it (root only).

  pyl-device -n c1 add /dev/video0              node made in the container's /dev, allowed in its
                                                devices cgroup (same major:minor and mode as the host's)
  pyl-device -n c1 add /dev/ttyUSB0 /dev/modem  under another path inside
  pyl-device -n c1 add eth1 net1                host interface eth1 moved in, named net1 inside
  pyl-device -n c1 del /dev/video0              node removed, denied again (unless the config allows it)
  pyl-device -n c1 del eth1 net1                net1 moved back to the host, named eth1 again
For `add`, DEVICE is an interface when the host has one by that name, else a device node (a bare
name means /dev/NAME); for `del`, a bare name is an interface, a path a node. For `del`, DEVICE [NAME-IN-CONTAINER] are given as for `add` (lxc-device's detach takes
the name inside first). An interface still inside when the container stops returns to the host if it
is physical and is destroyed if it is virtual. Device nodes need a cgroup v1 devices hierarchy (or
none at all); pure cgroup v2 is not supported yet."""
NEEDS_NAME = True
NAME_STATES = "device"
NO_POSITIONAL_NAME = True  # the positionals are ACTION DEVICE [NAME]
RCFILE = False


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["add", "del"], help="add or del")
    parser.add_argument("device", help="host interface name or device node (/dev/...)")
    parser.add_argument("target", nargs="?", metavar="NAME-IN-CONTAINER", help="name inside the container")


def run(args, ctx) -> int:
    import os
    from lxctools.errors import PermissionDeniedError, WrongStateError
    from lxctools.runtime import devices
    if os.geteuid() != 0:
        raise PermissionDeniedError("pyl-device needs root")
    container = ctx.container(args.name)
    rs = container.runstate()
    if not rs.state.allows("device") or not rs.pid:
        container.require_defined()
        raise WrongStateError(f"cannot {args.action} a device: container is {rs.state}")
    is_node = args.device.startswith("/")
    if args.action == "add" and not is_node and devices.is_host_interface(args.device):
        return _interface(args, rs.pid)
    if args.action == "del" and not is_node:
        return _interface(args, rs.pid)  # a bare name to take back is an interface inside
    return _node(args, rs)


def _interface(args, pid: int) -> int:
    from lxctools.runtime import devices
    if args.action == "add":
        devices.move_interface_in(pid, args.device, args.target or args.device)
    else:
        devices.move_interface_out(pid, args.target or args.device, args.device)
    return 0


def _node(args, rs) -> int:
    from lxctools.runtime import cgroups, devices
    import os
    from lxctools.errors import NotFoundError
    host_path = args.device if args.device.startswith("/") else "/dev/" + args.device
    if args.action == "add" and not args.device.startswith("/") and not os.path.exists(host_path):
        raise NotFoundError(f"the host has no interface '{args.device}' and no device node {host_path}")
    target = devices.container_path(host_path, args.target)
    plan = cgroups.plan_from_existing(args.name, cgroups.detect_layout(), pid=rs.pid)
    devices.check_cgroup_support(plan)
    if args.action == "add":
        node = devices.host_node(host_path)
        devices.allow_in_cgroup(plan, node)  # before the node exists: no window where it is visible but denied
        devices.add_node(rs.pid, node, target)
        return 0
    node = devices.remove_node(rs.pid, target)
    if not devices.permitted_by_config((rs.record or {}).get("values") or {}, node):
        devices.deny_in_cgroup(plan, node)
    return 0
