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
is physical and is destroyed if it is virtual. On pure cgroup v2 the container's BPF device program
is replaced by one that also allows what pyl-device added in this run (never less restrictive in
between); a restart goes back to the config's rules, as on v1."""
NEEDS_NAME = True
NAME_STATES = "device"
NO_POSITIONAL_NAME = True  # the positionals are ACTION DEVICE [NAME]
RCFILE = False


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=["add", "del"], help="add or del")
    parser.add_argument("device", help="host interface name or device node (/dev/...)")
    parser.add_argument("target", nargs="?", metavar="NAME-IN-CONTAINER", help="name inside the container")


def run(args, ctx) -> int:
    ctx.container(args.name).device(args.action, args.device, args.target)
    return 0
