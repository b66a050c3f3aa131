"""Resource usage of a container's cgroup for info/ls --fancy/top: a handful of small file reads,
from the v1 controller's hierarchy when the host has one, else from the unified hierarchy.
Missing files give None (controller absent or not enabled), never an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lxctools.runtime.cgroups.plan import CgroupPlan

# v1 reports "no limit" as PAGE_COUNTER_MAX pages (0x7FFFFFFFFFFFF000 on 4 KiB pages); anything this
# large is unlimited for every page size.
_V1_UNLIMITED = 1 << 62


@dataclass(frozen=True)
class CgroupStats:
    cpu_ns: int | None = None
    cpu_user_ns: int | None = None
    cpu_sys_ns: int | None = None
    blkio_bytes: tuple[int, int] | None = None  # (read, write)
    memory_bytes: int | None = None
    kmem_bytes: int | None = None
    memsw_bytes: int | None = None   # memory + swap (lxc-top's MemSw)
    swap_bytes: int | None = None
    memory_limit: int | None = None  # None: unlimited or unknown
    pids_current: int | None = None


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _int(path: str) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _keyed(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            continue
    return out


def parse_blkio_v1(text: str | None) -> tuple[int, int] | None:
    """Sum the per-device Read/Write lines of blkio.throttle.io_service_bytes."""
    if text is None:
        return None
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "Read":
            read += int(parts[2])
        elif len(parts) == 3 and parts[1] == "Write":
            write += int(parts[2])
    return read, write


def parse_io_stat_v2(text: str | None) -> tuple[int, int] | None:
    """Sum rbytes/wbytes over the devices of io.stat ("8:0 rbytes=.. wbytes=.. rios=..")."""
    if text is None:
        return None
    read = write = 0
    for line in text.splitlines():
        for field in line.split()[1:]:
            k, _, v = field.partition("=")
            if k == "rbytes":
                read += int(v)
            elif k == "wbytes":
                write += int(v)
    return read, write


def stats(plan: CgroupPlan) -> CgroupStats:
    v: dict[str, object] = {}
    u = plan.unified
    upath = u.path if u is not None else None

    def v1(controller: str) -> str | None:
        d = plan.v1_dir(controller)
        return d.path if d is not None else None

    # CPU
    if (p := v1("cpuacct")) is not None:
        v["cpu_ns"] = _int(os.path.join(p, "cpuacct.usage"))
        ticks = _keyed(_read(os.path.join(p, "cpuacct.stat")))
        hz = os.sysconf("SC_CLK_TCK")
        if "user" in ticks:
            v["cpu_user_ns"] = ticks["user"] * 1_000_000_000 // hz
        if "system" in ticks:
            v["cpu_sys_ns"] = ticks["system"] * 1_000_000_000 // hz
    elif upath is not None:  # cpu.stat is a core v2 file: present even without the cpu controller
        cs = _keyed(_read(os.path.join(upath, "cpu.stat")))
        for src, dst in (("usage_usec", "cpu_ns"), ("user_usec", "cpu_user_ns"), ("system_usec", "cpu_sys_ns")):
            if src in cs:
                v[dst] = cs[src] * 1000

    # Block I/O
    if (p := v1("blkio")) is not None:
        v["blkio_bytes"] = parse_blkio_v1(_read(os.path.join(p, "blkio.throttle.io_service_bytes")))
    elif upath is not None:
        v["blkio_bytes"] = parse_io_stat_v2(_read(os.path.join(upath, "io.stat")))

    # Memory
    if (p := v1("memory")) is not None:
        mem = v["memory_bytes"] = _int(os.path.join(p, "memory.usage_in_bytes"))
        v["kmem_bytes"] = _int(os.path.join(p, "memory.kmem.usage_in_bytes"))
        memsw = v["memsw_bytes"] = _int(os.path.join(p, "memory.memsw.usage_in_bytes"))
        if memsw is not None and mem is not None:
            v["swap_bytes"] = max(0, memsw - mem)
        limit = _int(os.path.join(p, "memory.limit_in_bytes"))
        v["memory_limit"] = limit if limit is not None and limit < _V1_UNLIMITED else None
    elif upath is not None:
        mem = v["memory_bytes"] = _int(os.path.join(upath, "memory.current"))
        ms = _keyed(_read(os.path.join(upath, "memory.stat")))
        if "kernel" in ms:
            v["kmem_bytes"] = ms["kernel"]
        elif ms:  # kernels before 5.18 have no "kernel" line
            v["kmem_bytes"] = ms.get("kernel_stack", 0) + ms.get("slab", 0) + ms.get("percpu", 0)
        swap = v["swap_bytes"] = _int(os.path.join(upath, "memory.swap.current"))
        if swap is not None and mem is not None:
            v["memsw_bytes"] = mem + swap
        v["memory_limit"] = _int(os.path.join(upath, "memory.max"))  # "max" -> None

    # PIDs
    if (p := v1("pids")) is not None:
        v["pids_current"] = _int(os.path.join(p, "pids.current"))
    elif upath is not None:
        v["pids_current"] = _int(os.path.join(upath, "pids.current"))
    return CgroupStats(**v)
