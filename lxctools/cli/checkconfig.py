"""pyl-checkconfig: does this kernel and host have what pyl needs?"""

from __future__ import annotations

HELP = """Check the running kernel and host for what pyl needs (namespaces, cgroup layout and
controllers, veth/bridge/macvlan, seccomp, user namespaces, newuidmap, busybox, dnsmasq, nft) and
say what a missing piece disables. Exit 0 if everything needed to run containers is there, else 1."""
NEEDS_NAME = False
NAME_STATES = None
RCFILE = False


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="results as JSON")


def _ns(name: str) -> bool:
    import os
    return os.path.exists(f"/proc/self/ns/{name}")


# module -> the kernel option that builds it. A built-in driver has no /sys/module entry unless it
# takes parameters (veth, macvlan do not), so the kernel's own config is the first witness.
KERNEL_OPTIONS = {"veth": "CONFIG_VETH", "bridge": "CONFIG_BRIDGE", "macvlan": "CONFIG_MACVLAN",
                  "8021q": "CONFIG_VLAN_8021Q"}


def parse_kernel_config(text: str) -> dict[str, str]:
    """CONFIG_X=y|m|value lines of a kernel .config ("# CONFIG_X is not set" means absent)."""
    options = {}
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq and key.startswith("CONFIG_"):
            options[key] = value.strip()
    return options


def kernel_config() -> dict[str, str] | None:
    """The running kernel's config, from where lxc-checkconfig looks ($CONFIG first), or None."""
    import os
    release = os.uname().release
    wanted = os.environ.get("CONFIG")
    for path in [wanted] if wanted else ["/proc/config.gz", f"/boot/config-{release}",
                                         f"/lib/modules/{release}/build/.config"]:
        try:
            if path.endswith(".gz"):
                import gzip
                with gzip.open(path, "rt", errors="replace") as f:
                    return parse_kernel_config(f.read())
            with open(path, errors="replace") as f:
                return parse_kernel_config(f.read())
        except (OSError, EOFError):
            continue
    return None


def _kernel_feature(module: str, sysfs: str | None = None,
                    kconfig: dict[str, str] | None | bool = True) -> bool:
    """Built in, loaded, or loadable. KCONFIG: the kernel config (True: read it)."""
    import os
    if sysfs and os.path.exists(sysfs):
        return True
    if os.path.isdir(f"/sys/module/{module}"):
        return True
    if kconfig is True:
        kconfig = kernel_config()
    option = KERNEL_OPTIONS.get(module)
    if isinstance(kconfig, dict) and option:
        value = kconfig.get(option)
        if value == "y":
            return True
        if value is None:
            return False
        # "m": only if the module is installed, below
    release = os.uname().release
    for listing in (f"/lib/modules/{release}/modules.builtin", f"/lib/modules/{release}/modules.dep"):
        try:
            with open(listing) as f:
                if f"/{module}.ko" in f.read():
                    return True
        except OSError:
            continue
    return False


def checks() -> list[tuple[str, str, bool, str]]:
    """(section, feature, ok, what is lost without it)"""
    import os
    import shutil
    results = []
    for name, lost in (("mnt", "containers"), ("pid", "containers"), ("uts", "hostnames"), ("ipc", "IPC isolation"),
                       ("net", "network isolation"), ("cgroup", "cgroup namespace"), ("user", "unprivileged containers"),
                       ("time", "lxc.time.offset.*")):
        results.append(("Namespaces", f"{name} namespace", _ns(name), lost))
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            userns = int(f.read()) > 0
    except OSError:
        userns = False
    results.append(("Namespaces", "user namespaces allowed", userns, "unprivileged containers"))
    try:
        from lxctools.container import cgroup_layout_summary
        kind, controllers = cgroup_layout_summary()
        results.append(("Control groups", f"layout: {kind}", True, ""))
        for ctl, lost in (("memory", "memory limits and stats"), ("cpu", "CPU limits"), ("pids", "pids limits"),
                          ("freezer", "pyl-freeze (v1)"), ("devices", "device allow-list (v1)"),
                          ("cpuset", "cpuset limits"), ("blkio", "block I/O stats (v1)"), ("io", "block I/O (v2)")):
            if kind == "v2" and ctl in ("freezer", "devices", "blkio"):
                continue
            if kind != "v2" and ctl == "io":
                continue
            results.append(("Control groups", f"{ctl} controller", ctl in controllers, lost))
    except Exception as err:
        results.append(("Control groups", f"cgroup layout ({err})", False, "containers"))
    kconfig = kernel_config()
    results.append(("Network", "veth", _kernel_feature("veth", kconfig=kconfig), "veth networking"))
    results.append(("Network", "bridge", _kernel_feature("bridge", "/sys/class/net/bridge", kconfig=kconfig),
                    "pylbr0 and lxc.net.N.link bridges"))
    results.append(("Network", "macvlan", _kernel_feature("macvlan", kconfig=kconfig), "lxc.net.N.type = macvlan"))
    results.append(("Network", "vlan (8021q)", _kernel_feature("8021q", kconfig=kconfig), "lxc.net.N.type = vlan"))
    results.append(("Network", "dnsmasq", bool(shutil.which("dnsmasq") or os.path.exists("/usr/sbin/dnsmasq")), "DHCP on pylbr0 (static/auto addresses still work)"))
    results.append(("Network", "nft", bool(shutil.which("nft") or os.path.exists("/usr/sbin/nft")), "NAT for pylbr0"))
    try:
        with open("/proc/self/status") as f:
            seccomp = any(line.startswith("Seccomp:") for line in f)
    except OSError:
        seccomp = False
    results.append(("Security", "seccomp", seccomp, "syscall filtering"))
    import ctypes.util
    results.append(("Security", "libseccomp", bool(ctypes.util.find_library("seccomp")), "syscall filtering"))
    results.append(("Security", "newuidmap/newgidmap", bool(shutil.which("newuidmap") and shutil.which("newgidmap")), "unprivileged id maps"))
    results.append(("Misc", "busybox (static)", os.path.exists("/bin/busybox"), "the busybox template"))
    results.append(("Misc", "running as root", os.geteuid() == 0, "starting containers"))
    return results


ESSENTIAL = {"mnt namespace", "pid namespace", "uts namespace", "ipc namespace", "net namespace", "running as root"}


def run(args, ctx) -> int:
    import sys
    out = sys.stdout
    results = checks()
    if args.json:
        import json
        out.write(json.dumps([{"section": s, "feature": f, "ok": ok, "without_it": lost} for s, f, ok, lost in results], indent=2) + "\n")
    else:
        color = out.isatty()
        section = None
        for s, feature, ok, lost in results:
            if s != section:
                out.write(f"--- {s} ---\n")
                section = s
            word = "enabled" if ok else "missing"
            if color:
                word = f"\033[1;32m{word}\033[0m" if ok else f"\033[1;31m{word}\033[0m"
            out.write(f"{feature}: {word}" + ("" if ok or not lost else f" (disables: {lost})") + "\n")
    missing_essential = [f for _s, f, ok, _l in results if not ok and f in ESSENTIAL]
    return 1 if missing_essential else 0
