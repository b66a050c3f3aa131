"""Looking into running containers from the host, for pyl-ps, pyl-top and pyl-netstat.

Owns three things, all read from procfs/cgroupfs without entering the container:
  processes  every /proc/PID with the container it belongs to (its cgroup pyl.payload.NAME, or
             its pid namespace) and its PID as the container sees it (the NSpid line of status);
             plus prefixing the output of the host's `ps` with a CONTAINER column (as lxc-ps did);
  stats      one row of resource use per container and refresh (cumulative counters, CPU % from
             the previous row), in lxc-top's CSV batch format too;
  sockets    the tables of /proc/<init>/net/{tcp,tcp6,udp,udp6,unix} -- per network namespace, so
             a host process reads the container's -- with the owning process found through the
             socket inodes in /proc/PID/fd (running a host tool such as ss inside the
             container's network namespace is runtime.netns_exec, behind Container).
The procfs root is a parameter everywhere so unit tests point it at a fake tree.
"""

from __future__ import annotations

import os

from lxctools.errors import NotFoundError, UsageError
from lxctools.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
# Records, not dataclasses, and socket/struct only where sockets are decoded: pyl-ps imported
# dataclasses (with inspect, re, enum), socket and collections (~20 ms of a ~60 ms call).

PAYLOAD_PREFIX = "pyl.payload."  # same as cgroups.PAYLOAD_PREFIX; kept here to stay import-light

# ============================================================================ processes


class ContainerRef(Record):
    """What identifies one running container's processes."""

    __slots__ = ("name", "init_pid", "pids", "pidns", "level")

    def __init__(self, name: str, init_pid: int, pids: frozenset[int], pidns: str | None = None,
                 level: int = 0) -> None:
        self.name = name
        self.init_pid = init_pid
        self.pids = pids      # its cgroup's cgroup.procs (sub-cgroups included)
        self.pidns = pidns    # readlink of /proc/<init>/ns/pid ("pid:[4026532...]")
        self.level = level    # index into NSpid giving the PID the container sees (init's depth)


class ProcessRow(Record):
    __slots__ = ("pid", "nspid", "container", "uid", "user", "cpu_ticks", "command")

    def __init__(self, pid: int, nspid: int, container: str | None, uid: int, user: str,
                 cpu_ticks: int, command: str) -> None:
        self.pid = pid                # host PID
        self.nspid = nspid            # PID seen from the container's (or its own) pid namespace
        self.container = container    # None: a host process
        self.uid = uid                # effective uid (host view)
        self.user = user
        self.cpu_ticks = cpu_ticks    # utime + stime, in clock ticks
        self.command = command

    def to_json(self, hz: int | None = None) -> dict:
        out = self.as_dict()
        out["time"] = format_cputime(self.cpu_ticks, hz)
        return out


def parse_status(text: str) -> dict[str, str]:
    """Key -> raw value of a /proc/PID/status text."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
    return out


def parse_nspid(status: Mapping[str, str]) -> tuple[int, ...]:
    """PIDs from the outermost to the innermost pid namespace (kernels before 4.1: just Pid)."""
    raw = status.get("NSpid") or status.get("Pid") or ""
    return tuple(int(x) for x in raw.split())


def effective_uid(status: Mapping[str, str]) -> int:
    fields = (status.get("Uid") or "").split()
    return int(fields[1]) if len(fields) > 1 else -1


def payload_name_of_cgroup(text: str) -> str | None:
    """Container name from a /proc/PID/cgroup text: the path segment pyl.payload.NAME (the first
    one, so a container's own sub-cgroups and nested pyl containers count for the outer one)."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        for segment in path.split("/"):
            if segment.startswith(PAYLOAD_PREFIX) and len(segment) > len(PAYLOAD_PREFIX):
                return segment[len(PAYLOAD_PREFIX):]
    return None


def cpu_ticks_of_stat(text: str) -> int:
    """utime + stime of a /proc/PID/stat text (comm may hold spaces and parentheses)."""
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def format_cputime(ticks: int, hz: int | None = None) -> str:
    """ps's TIME column: [DD-]HH:MM:SS."""
    hz = hz or os.sysconf("SC_CLK_TCK")
    seconds = ticks // hz
    days, seconds = divmod(seconds, 86400)
    text = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return f"{days}-{text}" if days else text


def _read(path: str) -> str | None:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:  # the process exited meanwhile, or a kernel thread without the file
        return None


def _user_name(uid: int, cache: dict[int, str]) -> str:
    if uid not in cache:
        import pwd
        try:
            cache[uid] = pwd.getpwuid(uid).pw_name
        except (KeyError, OverflowError):
            cache[uid] = str(uid)
    return cache[uid]


def command_line(pid: int, proc: str = "/proc") -> str:
    """cmdline joined by spaces, or [comm] for kernel threads and zombies (as ps shows them)."""
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        raw = b""
    if raw:
        return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    comm = (_read(f"{proc}/{pid}/comm") or "?").strip()
    return f"[{comm}]"


def pidns_of(pid: int, proc: str = "/proc") -> str | None:
    try:
        return os.readlink(f"{proc}/{pid}/ns/pid")
    except OSError:
        return None


def make_ref(name: str, init_pid: int, pids: Iterable[int], proc: str = "/proc") -> ContainerRef:
    """Describe a running container from its init PID and the PIDs of its cgroup."""
    status = _read(f"{proc}/{init_pid}/status")
    level = max(0, len(parse_nspid(parse_status(status))) - 1) if status else 0
    return ContainerRef(name, init_pid, frozenset(pids) | {init_pid}, pidns_of(init_pid, proc), level)


def classify(pid: int, cgroup_text: str | None, pidns: str | None,
             refs: Iterable[ContainerRef], *, foreign: bool = True) -> tuple[str | None, ContainerRef | None]:
    """(container name, its ref when known) for one process: cgroup membership first, then the pid
    namespace (a process that left the cgroup is still the container's), then a pyl.payload.NAME
    cgroup of another lxcpath (named, but its namespace depth is unknown). foreign=False leaves
    that last one out when it bears the name of one of REFS: `pyl-ps -n a` means this lxcpath's
    a, and another lxcpath's a (whose cgroup may well be pyl.payload.a while ours is
    pyl.payload.a-1) is not it."""
    refs = list(refs)
    for ref in refs:
        if pid in ref.pids:
            return ref.name, ref
    if pidns is not None:
        for ref in refs:
            if ref.pidns == pidns and ref.level > 0:
                return ref.name, ref
    other = payload_name_of_cgroup(cgroup_text) if cgroup_text else None
    if other is not None and not foreign and any(ref.name == other for ref in refs):
        other = None  # a namesake: ours would have matched by its cgroup or pid namespace
    return other, None


def read_process(pid: int, refs: Iterable[ContainerRef], proc: str = "/proc",
                 users: dict[int, str] | None = None, *, foreign: bool = True) -> ProcessRow | None:
    """One process row, or None if it vanished while being read."""
    status_text = _read(f"{proc}/{pid}/status")
    stat_text = _read(f"{proc}/{pid}/stat")
    if status_text is None or stat_text is None:
        return None
    status = parse_status(status_text)
    name, ref = classify(pid, _read(f"{proc}/{pid}/cgroup"), pidns_of(pid, proc), refs, foreign=foreign)
    nspids = parse_nspid(status) or (pid,)
    if ref is not None and len(nspids) > ref.level:
        nspid = nspids[ref.level]
    else:
        nspid = nspids[-1]
    uid = effective_uid(status)
    return ProcessRow(pid=pid, nspid=nspid, container=name, uid=uid,
                      user=_user_name(uid, users if users is not None else {}),
                      cpu_ticks=cpu_ticks_of_stat(stat_text), command=command_line(pid, proc))


def all_pids(proc: str = "/proc") -> list[int]:
    return sorted(int(e) for e in os.listdir(proc) if e.isdigit())


def list_processes(refs: Iterable[ContainerRef], *, only: str = "all", names: Iterable[str] = (),
                   proc: str = "/proc") -> list[ProcessRow]:
    """Process rows filtered by ``only``: "all", "lxc" (in any container), "host" (in none),
    "names" (in the containers listed in ``names``)."""
    refs = list(refs)
    wanted = set(names)
    users: dict[int, str] = {}
    rows = []
    for pid in all_pids(proc):
        row = read_process(pid, refs, proc, users, foreign=only != "names")
        if row is not None and keep_row(row.container, only, wanted):
            rows.append(row)
    return rows


def keep_row(container: str | None, only: str, names: set[str]) -> bool:
    if only == "lxc":
        return container is not None
    if only == "host":
        return container is None
    if only == "names":
        return container in names
    return True


def process_table(rows: list[ProcessRow], hz: int | None = None) -> list[str]:
    """pyl-ps's own table: CONTAINER PID NSPID USER TIME CMD."""
    cw = max([9] + [len(r.container or "") for r in rows])
    pw = max([5] + [len(str(r.pid)) for r in rows])
    nw = max([5] + [len(str(r.nspid)) for r in rows])
    uw = max([8] + [len(r.user) for r in rows])
    lines = [f"{'CONTAINER':<{cw}} {'PID':>{pw}} {'NSPID':>{nw}} {'USER':<{uw}} {'TIME':>8} CMD"]
    for r in rows:
        lines.append(f"{r.container or '':<{cw}} {r.pid:>{pw}} {r.nspid:>{nw}} {r.user:<{uw}} "
                     f"{format_cputime(r.cpu_ticks, hz):>8} {printable(r.command)}")
    return lines


def printable(text: str) -> str:
    """``text`` with every non-printable character as '?', as ps shows a command: a cmdline may
    hold newlines (or other line breaks) that would otherwise split one row into several."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "?" for c in text)


def pid_column(header: str) -> tuple[int, int]:
    """(field index, end column) of PID in a ps header; UsageError when there is none (lxc-ps:
    "No PID field found")."""
    fields = header.split()
    if "PID" not in fields:
        raise UsageError("the ps output has no PID column", hint="keep a PID column, e.g. -o pid,args")
    index = fields.index("PID")
    # procps right-aligns PID: its digits end where the header word ends.
    return index, _word_start(header, "PID") + 3


def _word_start(header: str, word: str) -> int:
    start = 0
    while True:
        i = header.index(word, start)
        before_ok = i == 0 or header[i - 1].isspace()
        after_ok = i + len(word) == len(header) or header[i + len(word)].isspace()
        if before_ok and after_ok:
            return i
        start = i + 1


def pid_of_line(line: str, index: int, end: int) -> int | None:
    """PID of one ps output line: the number ending at the header's PID column (robust against
    earlier columns holding spaces, e.g. lstart), else the index-th field."""
    head = line[:end].split()
    if head and head[-1].isdigit() and (len(line) == end or line[end].isspace()):
        return int(head[-1])
    fields = line.split()
    if len(fields) > index and fields[index].isdigit():
        return int(fields[index])
    return None


def prefix_ps_output(text: str, owner: Mapping[int, str | None], *, only: str = "all",
                     names: Iterable[str] = ()) -> str:
    """lxc-ps's output: CONTAINER (left-justified to max(9, longest name)) prepended to the
    header and to every kept line of ps's output; ``owner`` maps PID -> container (None: host)."""
    lines = text.splitlines()
    if not lines:
        return ""
    header, body = lines[0], lines[1:]
    index, end = pid_column(header)
    wanted = set(names)
    kept: list[tuple[str, str]] = []
    for line in body:
        pid = pid_of_line(line, index, end)
        container = owner.get(pid) if pid is not None else None
        if keep_row(container, only, wanted):
            kept.append((container or "", line))
    width = max([9] + [len(c) for c, _ in kept])
    out = [f"{'CONTAINER':<{width}} {header}"] + [f"{c:<{width}} {line}" for c, line in kept]
    return "\n".join(out) + "\n"


def owners(pids: Iterable[int], refs: Iterable[ContainerRef], proc: str = "/proc", *,
           foreign: bool = True) -> dict[int, str | None]:
    """PID -> container name (None for host processes), for prefixing ps's output; foreign as
    for classify."""
    refs = list(refs)
    return {pid: classify(pid, _read(f"{proc}/{pid}/cgroup"), pidns_of(pid, proc), refs, foreign=foreign)[0]
            for pid in pids}


# ============================================================================ stats (pyl-top)

CSV_HEADER = ("time_ms,container,cpu_nanos,cpu_sys_userhz,cpu_user_userhz,blkio_bytes,blkio_iops,"
              "mem_used_bytes,memsw_used_bytes,kernel_mem_used_bytes")
CSV_EXTRA = ",pids"  # pyl appends one column to lxc-top's batch format


class StatsRow(Record):
    __slots__ = ("name", "time_ms", "cpu_ns", "cpu_sys_ns", "cpu_user_ns", "blkio_read", "blkio_write",
                 "blkio_iops", "mem_bytes", "memsw_bytes", "kmem_bytes", "pids", "cpu_percent")

    # Every counter is optional: None where this host's cgroups do not have it.
    cpu_ns: int | None
    cpu_sys_ns: int | None
    cpu_user_ns: int | None
    blkio_read: int | None
    blkio_write: int | None
    blkio_iops: int | None
    mem_bytes: int | None
    memsw_bytes: int | None
    kmem_bytes: int | None
    pids: int | None
    cpu_percent: float | None  # of one CPU, since the previous row of this container

    def __init__(self, name: str, time_ms: int, **counters: float | None) -> None:
        self.name = name
        self.time_ms = time_ms
        for field in self.__slots__[2:]:
            setattr(self, field, counters.pop(field, None))
        if counters:
            raise TypeError(f"StatsRow has no field {sorted(counters)[0]!r}")

    @property
    def blkio_bytes(self) -> int | None:
        if self.blkio_read is None and self.blkio_write is None:
            return None
        return (self.blkio_read or 0) + (self.blkio_write or 0)

    def to_json(self) -> dict:
        out = self.as_dict()
        out["blkio_bytes"] = self.blkio_bytes
        return out


def stats_row(name: str, stats: object, *, time_ms: int, iops: int | None = None,
              previous: StatsRow | None = None) -> StatsRow:
    """A row from a cgroups.CgroupStats; CPU % from the previous row (None on the first)."""
    blk = getattr(stats, "blkio_bytes", None)
    cpu = getattr(stats, "cpu_ns", None)
    percent = None
    if previous is not None and previous.cpu_ns is not None and cpu is not None and time_ms > previous.time_ms:
        percent = round(max(0, cpu - previous.cpu_ns) / ((time_ms - previous.time_ms) * 1e6) * 100, 1)
    return StatsRow(name=name, time_ms=time_ms, cpu_ns=cpu,
                    cpu_sys_ns=getattr(stats, "cpu_sys_ns", None), cpu_user_ns=getattr(stats, "cpu_user_ns", None),
                    blkio_read=blk[0] if blk else None, blkio_write=blk[1] if blk else None,
                    blkio_iops=iops, mem_bytes=getattr(stats, "memory_bytes", None),
                    memsw_bytes=getattr(stats, "memsw_bytes", None), kmem_bytes=getattr(stats, "kmem_bytes", None),
                    pids=getattr(stats, "pids_current", None), cpu_percent=percent)


def csv_line(row: StatsRow, hz: int | None = None) -> str:
    """One batch line; unknown values are empty fields (lxc-top prints 0, which lies)."""
    hz = hz or os.sysconf("SC_CLK_TCK")

    def userhz(ns: int | None) -> int | None:
        return None if ns is None else ns * hz // 1_000_000_000

    values = [row.time_ms, row.name, row.cpu_ns, userhz(row.cpu_sys_ns), userhz(row.cpu_user_ns),
              row.blkio_bytes, row.blkio_iops, row.mem_bytes, row.memsw_bytes, row.kmem_bytes, row.pids]
    return ",".join("" if v is None else _csv_field(str(v)) for v in values)


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


SORT_KEYS = {
    "n": lambda r: r.name,
    "c": lambda r: r.cpu_ns or 0,
    "b": lambda r: r.blkio_bytes or 0,
    "m": lambda r: r.mem_bytes or 0,
    "s": lambda r: r.memsw_bytes or 0,
    "k": lambda r: r.kmem_bytes or 0,
    "p": lambda r: r.pids or 0,
}


def sort_rows(rows: Iterable[StatsRow], key: str = "n", reverse: bool = False) -> list[StatsRow]:
    """Name ascending; numbers largest first (as lxc-top); ``reverse`` flips either."""
    if key not in SORT_KEYS:
        raise UsageError(f"unknown sort key '{key}' (n c b m s k p)")
    descending = key != "n"
    return sorted(rows, key=SORT_KEYS[key], reverse=descending != reverse)


def _sum_fields(text: str | None, wanted: tuple[str, ...], kv: bool) -> int | None:
    if text is None:
        return None
    total = 0
    for line in text.splitlines():
        parts = line.split()
        if kv:  # v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ..."
            for field in parts[1:]:
                k, _, v = field.partition("=")
                if k in wanted and v.isdigit():
                    total += int(v)
        elif len(parts) == 3 and parts[1] in wanted and parts[2].isdigit():  # v1 "8:0 Read 12"
            total += int(parts[2])
    return total


def parse_iops_v1(text: str | None) -> int | None:
    """Read + Write operations of blkio.throttle.io_serviced (its Total lines would double count)."""
    return _sum_fields(text, ("Read", "Write"), kv=False)


def parse_iops_v2(text: str | None) -> int | None:
    return _sum_fields(text, ("rios", "wios"), kv=True)


def blkio_iops(plan: object) -> int | None:
    """I/O operations of a cgroups.CgroupPlan (CgroupStats has bytes only)."""
    d = plan.v1_dir("blkio")  # type: ignore[attr-defined]
    if d is not None:
        return parse_iops_v1(_read(os.path.join(d.path, "blkio.throttle.io_serviced")))
    u = plan.unified  # type: ignore[attr-defined]
    if u is not None:
        return parse_iops_v2(_read(os.path.join(u.path, "io.stat")))
    return None


# ============================================================================ sockets (pyl-netstat)

TCP_STATES = {
    0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT1", 0x05: "FIN_WAIT2",
    0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT", 0x09: "LAST_ACK", 0x0A: "LISTEN",
    0x0B: "CLOSING", 0x0C: "NEW_SYN_RECV",
}
UNIX_TYPES = {1: "STREAM", 2: "DGRAM", 5: "SEQPACKET"}
_SO_ACCEPTCON = 0x10000  # __SO_ACCEPTCON in the Flags column of /proc/net/unix: a listener
INET_TABLES = ("tcp", "tcp6", "udp", "udp6")


class SocketRow(Record):
    __slots__ = ("proto", "local", "remote", "state", "listening", "recv_q", "send_q", "inode",
                 "unix_type", "pid", "nspid", "program")

    def __init__(self, proto: str, local: str, remote: str, state: str, listening: bool, recv_q: int,
                 send_q: int, inode: int, unix_type: str | None = None, pid: int | None = None,
                 nspid: int | None = None, program: str | None = None) -> None:
        self.proto = proto          # tcp, tcp6, udp, udp6, unix
        self.local = local
        self.remote = remote
        self.state = state          # TCP state name; UDP: "" unconnected, ESTABLISHED connected; unix: LISTENING...
        self.listening = listening
        self.recv_q = recv_q
        self.send_q = send_q
        self.inode = inode
        self.unix_type = unix_type
        self.pid = pid              # host PID of a process holding it
        self.nspid = nspid
        self.program = program

    def with_owner(self, pid: int, nspid: int | None, program: str) -> "SocketRow":
        return self.replace(pid=pid, nspid=nspid, program=program)

    def to_json(self) -> dict:
        return self.as_dict()


def decode_address(text: str) -> tuple[str, int]:
    """("127.0.0.1", 8080) from /proc/net/tcp's "0100007F:1F90" (or a 32-digit IPv6 address).

    The kernel prints each 32-bit word of the network-order address as a host-order integer, so
    each 8-digit group is re-packed in native byte order."""
    addr_hex, _, port_hex = text.partition(":")
    import socket as _socket
    import struct
    raw = b"".join(struct.pack("=I", int(addr_hex[i:i + 8], 16)) for i in range(0, len(addr_hex), 8))
    family = _socket.AF_INET if len(raw) == 4 else _socket.AF_INET6
    return _socket.inet_ntop(family, raw), int(port_hex, 16)


def format_endpoint(ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{host}:{port if port else '*'}"


def parse_inet_table(text: str, proto: str) -> list[SocketRow]:
    """Rows of /proc/net/{tcp,tcp6,udp,udp6} (header line skipped)."""
    rows = []
    udp = proto.startswith("udp")
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        local, remote = decode_address(f[1]), decode_address(f[2])
        code = int(f[3], 16)
        tx, _, rx = f[4].partition(":")
        if udp:
            # A UDP socket is "listening" (netstat -l, ss -l) while unconnected: state 07.
            listening = code == 0x07
            state = "" if listening else TCP_STATES.get(code, str(code))
        else:
            listening = code == 0x0A
            state = TCP_STATES.get(code, f"UNKNOWN({code})")
        rows.append(SocketRow(proto=proto, local=format_endpoint(*local), remote=format_endpoint(*remote),
                              state=state, listening=listening, recv_q=int(rx, 16), send_q=int(tx, 16),
                              inode=int(f[9])))
    return rows


def parse_unix_table(text: str) -> list[SocketRow]:
    """Rows of /proc/net/unix: Num RefCount Protocol Flags Type St Inode [Path]."""
    rows: list[SocketRow] = []
    for line in text.split("\n")[1:]:
        f = line.split(None, 7)
        if len(f) < 7 or not f[0].endswith(":"):
            # The kernel prints a path as it is: a newline in a socket's name (the container
            # chose it) continues that row's path on the next line.
            if rows and line:
                rows[-1] = rows[-1].replace(local=rows[-1].local + "\n" + line)
            continue
        flags, kind, st, inode = int(f[3], 16), int(f[4], 16), int(f[5], 16), int(f[6])
        path = f[7].strip() if len(f) > 7 else ""
        listening = bool(flags & _SO_ACCEPTCON)
        if listening:
            state = "LISTENING"
        else:
            state = {1: "", 2: "CONNECTING", 3: "CONNECTED", 4: "DISCONNECTING"}.get(st, str(st))
        rows.append(SocketRow(proto="unix", local=path, remote="", state=state, listening=listening,
                              recv_q=0, send_q=0, inode=inode, unix_type=UNIX_TYPES.get(kind, str(kind))))
    return rows


def socket_inodes(pid: int, proc: str = "/proc") -> list[int]:
    """Socket inodes among PID's open files ("socket:[12345]")."""
    found = []
    base = f"{proc}/{pid}/fd"
    try:
        entries = os.listdir(base)
    except OSError:
        return found
    for entry in entries:
        try:
            target = os.readlink(f"{base}/{entry}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.append(int(target[8:-1]))
    return found


def socket_owners(pids: Iterable[int], proc: str = "/proc") -> dict[int, int]:
    """Socket inode -> the lowest PID holding it."""
    owner: dict[int, int] = {}
    for pid in sorted(pids):
        for inode in socket_inodes(pid, proc):
            owner.setdefault(inode, pid)
    return owner


def pids_in_netns(pid: int, proc: str = "/proc") -> list[int]:
    """Every process sharing pid's network namespace (attached processes that kept the host's
    cgroup hold sockets there too)."""
    try:
        target = os.readlink(f"{proc}/{pid}/ns/net")
    except OSError:
        return []
    found = []
    for other in all_pids(proc):
        try:
            if os.readlink(f"{proc}/{other}/ns/net") == target:
                found.append(other)
        except OSError:
            continue
    return found


def read_sockets(init_pid: int, *, kinds: Iterable[str] = ("tcp", "udp", "unix"),
                 owner_pids: Iterable[int] = (), level: int = 0, proc: str = "/proc") -> list[SocketRow]:
    """The sockets of init_pid's network namespace, with owners among ``owner_pids``."""
    kinds = set(kinds)
    net = f"{proc}/{init_pid}/net"
    if not os.path.isdir(net):
        raise NotFoundError("the container's init is gone (it stopped meanwhile)")
    rows: list[SocketRow] = []
    for table in INET_TABLES:
        if table.rstrip("6") in kinds:
            text = _read(f"{net}/{table}")
            if text is not None:  # tcp6/udp6 are missing when IPv6 is off
                rows += parse_inet_table(text, table)
    if "unix" in kinds:
        rows += parse_unix_table(_read(f"{net}/unix") or "")
    owner = socket_owners(owner_pids, proc)
    out = []
    for row in rows:
        pid = owner.get(row.inode)
        if pid is None:
            out.append(row)
            continue
        status = parse_status(_read(f"{proc}/{pid}/status") or "")
        nspids = parse_nspid(status)
        nspid = nspids[level] if len(nspids) > level else None
        out.append(row.with_owner(pid, nspid, status.get("Name", "?")))
    return out


def socket_table(rows: list[SocketRow]) -> list[str]:
    """netstat-like lines: Proto Recv-Q Send-Q Local Address Foreign Address State PID/Program."""
    inet = [r for r in rows if r.proto != "unix"]
    unix = [r for r in rows if r.proto == "unix"]
    lines: list[str] = []
    if inet:
        lw = max([22] + [len(r.local) for r in inet])
        rw = max([23] + [len(r.remote) for r in inet])
        lines.append(f"{'Proto':<5} {'Recv-Q':>6} {'Send-Q':>6} {'Local Address':<{lw}} {'Foreign Address':<{rw}} "
                     f"{'State':<11} PID/Program name")
        for r in inet:
            who = f"{r.pid}/{printable(r.program or '')}" if r.pid else "-"
            lines.append(f"{r.proto:<5} {r.recv_q:>6} {r.send_q:>6} {r.local:<{lw}} {r.remote:<{rw}} "
                         f"{r.state:<11} {who}")
    if unix:
        if lines:
            lines.append("")
        lines.append(f"{'Proto':<5} {'Type':<9} {'State':<13} {'I-Node':>8} {'PID/Program name':<20} Path")
        for r in unix:
            # program and path are the container's choice: control characters (a terminal's
            # escape sequences, a newline starting a fake row) are shown as '?', as pyl-ps does
            who = f"{r.pid}/{printable(r.program or '')}" if r.pid else "-"
            lines.append(f"{r.proto:<5} {r.unix_type or '':<9} {r.state:<13} {r.inode:>8} {who:<20} "
                         f"{printable(r.local)}")
    return lines
