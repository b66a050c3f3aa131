"""pyl-ps/top/netstat/cgroup/device logic without containers: /proc parsing on fake trees and on
this process's own sockets, ps line prefixing, stats rows and CSV, device-node and argument rules."""

from __future__ import annotations

import ast
import os
import socket
import types
from pathlib import Path

import pytest

from lxctools.errors import AlreadyExistsError, NotFoundError, PylError, UsageError
from lxctools import inspection as inspect
from lxctools.runtime import devices

# ------------------------------------------------------------------ processes

STATUS = """Name:\tsleep
Umask:\t0022
State:\tS (sleeping)
Tgid:\t4242
Pid:\t4242
PPid:\t4200
Uid:\t1000\t0\t0\t0
Gid:\t0\t0\t0\t0
NStgid:\t4242\t7
NSpid:\t4242\t7
"""


def test_status_nspid_and_euid():
    status = inspect.parse_status(STATUS)
    assert status["Name"] == "sleep"
    assert inspect.parse_nspid(status) == (4242, 7)
    assert inspect.effective_uid(status) == 0  # effective, not real: ps's USER


def test_nspid_falls_back_to_pid_on_old_kernels():
    assert inspect.parse_nspid({"Pid": "12"}) == (12,)


@pytest.mark.parametrize("text,name", [
    ("0::/pyl.payload.web1\n", "web1"),
    ("0::/user.slice/pyl.payload.a.b/init.scope\n", "a.b"),               # container's own sub-cgroup
    ("12:pids:/pyl.payload.c1\n11:memory:/pyl.payload.c1\n0::/\n", "c1"),  # hybrid
    ("0::/pyl.payload.outer/pyl.payload.inner\n", "outer"),                # nested: the outer one
    ("0::/pyl.monitor\n", None),
    ("0::/pyl.payload.\n", None),
    ("0::/init.scope\n", None),
])
def test_container_name_from_cgroup(text, name):
    assert inspect.payload_name_of_cgroup(text) == name


def test_cpu_ticks_survive_odd_comm():
    stat = "77 (a) b (c) S 1 77 77 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 123 0 0"
    assert inspect.cpu_ticks_of_stat(stat) == 300


@pytest.mark.parametrize("ticks,text", [(0, "00:00:00"), (100 * 61, "00:01:01"), (100 * 3723, "01:02:03"),
                                        (100 * (86400 + 5), "1-00:00:05")])
def test_cputime_like_ps(ticks, text):
    assert inspect.format_cputime(ticks, hz=100) == text


def fake_proc(tmp: Path, procs: dict[int, dict]) -> str:
    """A /proc with status, stat, cgroup, cmdline, comm and ns/pid links per process."""
    root = tmp / "proc"
    for pid, p in procs.items():
        d = root / str(pid)
        (d / "ns").mkdir(parents=True)
        nspid = "\t".join(str(x) for x in p.get("nspid", (pid,)))
        (d / "status").write_text(f"Name:\t{p.get('comm', 'x')}\nPid:\t{pid}\nUid:\t0\t{p.get('uid', 0)}\t0\t0\nNSpid:\t{nspid}\n")
        (d / "stat").write_text(f"{pid} ({p.get('comm', 'x')}) S 1 1 1 0 -1 0 0 0 0 0 {p.get('ticks', 0)} 0 0 0 20 0 1 0 1 0 0")
        (d / "cgroup").write_text(p.get("cgroup", "0::/\n"))
        (d / "cmdline").write_bytes(p.get("cmdline", b""))
        (d / "comm").write_text(p.get("comm", "x") + "\n")
        os.symlink(p.get("pidns", "pid:[1]"), d / "ns" / "pid")
    return str(root)


@pytest.fixture
def proc(tmp_path):
    return fake_proc(tmp_path, {
        1: {"cmdline": b"/sbin/init\0", "comm": "init"},
        2: {"comm": "kthreadd"},
        100: {"nspid": (100, 1), "cgroup": "0::/pyl.payload.c1\n", "pidns": "pid:[9]", "cmdline": b"/sbin/init\0"},
        101: {"nspid": (101, 5), "cgroup": "0::/pyl.payload.c1\n", "pidns": "pid:[9]",
              "cmdline": b"sleep\x001000\0", "ticks": 200},
        102: {"nspid": (102, 6), "cgroup": "0::/\n", "pidns": "pid:[9]", "cmdline": b"escaped\0"},
        200: {"nspid": (200, 1), "cgroup": "0::/pyl.payload.other\n", "pidns": "pid:[10]", "cmdline": b"init\0"},
    })


def test_processes_are_classified_and_get_their_container_pid(proc):
    ref = inspect.make_ref("c1", 100, [100, 101], proc=proc)
    assert ref.level == 1 and ref.pidns == "pid:[9]"
    rows = {r.pid: r for r in inspect.list_processes([ref], proc=proc)}
    assert rows[1].container is None and rows[1].nspid == 1
    assert rows[2].command == "[kthreadd]"
    assert (rows[101].container, rows[101].nspid, rows[101].command) == ("c1", 5, "sleep 1000")
    assert rows[102].container == "c1"          # left the cgroup, still in the pid namespace
    assert (rows[200].container, rows[200].nspid) == ("other", 1)  # another lxcpath's container


@pytest.mark.parametrize("only,names,pids", [
    ("lxc", (), [100, 101, 102, 200]), ("host", (), [1, 2]), ("names", ("c1",), [100, 101, 102]),
    ("names", ("other",), [200]), ("all", (), [1, 2, 100, 101, 102, 200]),
])
def test_process_filters(proc, only, names, pids):
    ref = inspect.make_ref("c1", 100, [100, 101], proc=proc)
    assert [r.pid for r in inspect.list_processes([ref], only=only, names=names, proc=proc)] == pids


def test_process_table_and_json(proc):
    ref = inspect.make_ref("c1", 100, [100, 101], proc=proc)
    rows = inspect.list_processes([ref], only="names", names=["c1"], proc=proc)
    lines = inspect.process_table(rows, hz=100)
    assert lines[0].split() == ["CONTAINER", "PID", "NSPID", "USER", "TIME", "CMD"]
    assert lines[2].split() == ["c1", "101", "5", "root", "00:00:02", "sleep", "1000"]
    data = rows[1].to_json(hz=100)
    assert data["nspid"] == 5 and data["container"] == "c1" and data["time"] == "00:00:02"


def test_process_table_keeps_one_line_per_process_whatever_the_command_holds():
    # A cmdline is arbitrary bytes: a newline (or \x1c, \u2028...) in it must not split the row,
    # which once broke a script reading the first field of every line. JSON keeps the real text.
    row = inspect.ProcessRow(container=None, pid=7, nspid=7, uid=0, user="root", cpu_ticks=0,
                             command="sh -c 'echo a\nb'\x1c\u2028\x85 end")
    lines = inspect.process_table([row], hz=100)
    assert len("\n".join(lines).splitlines()) == 2
    assert lines[1].endswith("sh -c 'echo a?b'??? end")
    assert row.to_json(hz=100)["command"] == row.command


def test_real_proc_sees_this_process():
    rows = inspect.list_processes([], only="host")
    me = next(r for r in rows if r.pid == os.getpid())
    assert me.nspid == os.getpid() and ("pytest" in me.command or "python" in me.command)


# ------------------------------------------------------------------ ps output prefixing

PS_LSTART = """    PID USER                      STARTED COMMAND
      1 root     Fri Nov 27 20:36:43 2026 /sbin/init
    101 root     Fri Nov 27 20:40:00 2026 sleep 1000
    777 root     Fri Nov 27 20:41:00 2026 bash
"""


def test_pid_column_is_the_word_not_ppid():
    assert inspect.pid_column("   PPID     PID CMD") == (1, 15)
    with pytest.raises(UsageError, match="no PID column"):
        inspect.pid_column("USER COMMAND")


def test_ps_lines_are_prefixed_and_filtered():
    owner = {1: None, 101: "c1", 777: None}
    out = inspect.prefix_ps_output(PS_LSTART, owner).splitlines()
    assert out[0] == "CONTAINER     PID USER                      STARTED COMMAND"
    assert out[2].startswith("c1            101 root")
    assert out[1] == " " * 10 + PS_LSTART.splitlines()[1]
    lxc = inspect.prefix_ps_output(PS_LSTART, owner, only="lxc").splitlines()
    assert len(lxc) == 2 and lxc[1].startswith("c1 ")
    assert len(inspect.prefix_ps_output(PS_LSTART, owner, only="host").splitlines()) == 3


def test_ps_prefix_width_follows_longest_name():
    text = "  PID CMD\n    5 x\n"
    out = inspect.prefix_ps_output(text, {5: "a-very-long-name"}).splitlines()
    assert out == ["CONTAINER        " + "  PID CMD", "a-very-long-name     5 x"]


def test_pid_found_when_other_columns_hold_spaces():
    header = "USER         PID COMMAND"
    index, end = inspect.pid_column(header)
    assert inspect.pid_of_line("a b c         42 sh", index, end) == 42


def test_ps_options_get_dash_e_like_lxc_ps():
    from lxctools.cli.ps import _ps_options
    assert _ps_options(["-o", "pid,args"], True) == ["-e", "-o", "pid,args"]
    assert _ps_options(["aux"], True) == ["aux"]
    assert _ps_options(["-o", "pid"], False) == ["-o", "pid"]


# ------------------------------------------------------------------ stats rows, CSV, sorting


def fake_stats(**kw):
    base = dict(cpu_ns=None, cpu_user_ns=None, cpu_sys_ns=None, blkio_bytes=None, memory_bytes=None,
                kmem_bytes=None, memsw_bytes=None, pids_current=None)
    base.update(kw)
    return types.SimpleNamespace(**base)


def test_stats_row_and_cpu_percent():
    first = inspect.stats_row("c1", fake_stats(cpu_ns=1_000_000_000), time_ms=10_000)
    assert first.cpu_percent is None
    second = inspect.stats_row("c1", fake_stats(cpu_ns=1_500_000_000, blkio_bytes=(10, 5), pids_current=3),
                               time_ms=11_000, previous=first)
    assert second.cpu_percent == 50.0
    assert second.blkio_bytes == 15 and second.pids == 3


def test_csv_line_matches_lxc_top_columns():
    row = inspect.stats_row("c1", fake_stats(cpu_ns=123, cpu_sys_ns=2_000_000_000, cpu_user_ns=1_000_000_000,
                                            blkio_bytes=(1, 2), memory_bytes=4096, kmem_bytes=None,
                                            memsw_bytes=8192, pids_current=2), time_ms=5, iops=7)
    assert inspect.CSV_HEADER.split(",")[1:4] == ["container", "cpu_nanos", "cpu_sys_userhz"]
    assert inspect.csv_line(row, hz=100) == "5,c1,123,200,100,3,7,4096,8192,,2"
    assert len(inspect.csv_line(row, hz=100).split(",")) == len((inspect.CSV_HEADER + inspect.CSV_EXTRA).split(","))


def test_csv_quotes_odd_names():
    assert inspect.csv_line(inspect.StatsRow(name="a,b", time_ms=1), hz=100).startswith('1,"a,b",')


def test_sort_rows():
    rows = [inspect.StatsRow("b", 0, mem_bytes=1), inspect.StatsRow("a", 0, mem_bytes=5),
            inspect.StatsRow("c", 0, mem_bytes=None)]
    assert [r.name for r in inspect.sort_rows(rows, "n")] == ["a", "b", "c"]
    assert [r.name for r in inspect.sort_rows(rows, "m")] == ["a", "b", "c"]
    assert [r.name for r in inspect.sort_rows(rows, "m", reverse=True)] == ["c", "b", "a"]
    with pytest.raises(UsageError):
        inspect.sort_rows(rows, "z")


def test_iops_parsers():
    v1 = "8:0 Read 3\n8:0 Write 4\n8:0 Sync 7\n8:0 Total 7\nTotal 7\n"
    assert inspect.parse_iops_v1(v1) == 7
    assert inspect.parse_iops_v2("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n") == 7
    assert inspect.parse_iops_v1(None) is None


def test_top_table_keys_and_totals():
    from lxctools.cli import top
    rows = [inspect.StatsRow("c1", 0, cpu_ns=2_000_000_000, mem_bytes=2 << 20, pids=2),
            inspect.StatsRow("c2", 0, cpu_ns=1_000_000_000, mem_bytes=1 << 20, pids=1)]
    lines = top.table(rows, max_rows=1)
    assert lines[0].split()[:2] == ["Container", "CPU"] and len(lines) == 4
    assert lines[2].split()[:2] == ["c1", "2.00"]
    assert lines[3].startswith("TOTAL 1 of 2") and "3.00 MiB" in lines[3] and lines[3].endswith("3")
    assert top.handle_key("q", "n", False)[2]
    assert top.handle_key("m", "n", False) == ("m", False, False)
    assert top.handle_key("m", "m", False) == ("m", True, False)
    assert top.handle_key("r", "c", True) == ("c", False, False)


# ------------------------------------------------------------------ sockets

TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:15B3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 100 0 0 10 0
   1: 0100007F:15B3 0100007F:C350 01 00000002:00000003 00:00000000 00000000     0        0 6666 1 0000000000000000 20 4 30 10 -1
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7777 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0050 00000000000000000000000001000000:A000 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0
"""
UDP = """   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
15831: 0103000A:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 34494 2 00000000747a88bd 0
"""
UNIX = """Num       RefCount Protocol Flags    Type St Inode Path
00000000934efd8c: 00000002 00000000 00010000 0001 01 41659 /run/app.sock
000000000c724e14: 00000002 00000000 00000000 0002 01 34502
0000000012345678: 00000003 00000000 00000000 0001 03 34503 @abstract name
"""


def test_decode_addresses():
    assert inspect.decode_address("0100007F:1F90") == ("127.0.0.1", 8080)
    assert inspect.decode_address("0103000A:0035") == ("10.0.3.1", 53)
    assert inspect.decode_address("00000000000000000000000001000000:0050") == ("::1", 80)
    assert inspect.format_endpoint("::", 0) == "[::]:*"


def test_parse_tcp_udp_tables():
    rows = inspect.parse_inet_table(TCP, "tcp")
    assert (rows[0].local, rows[0].remote, rows[0].state, rows[0].listening, rows[0].inode) == \
        ("0.0.0.0:5555", "0.0.0.0:*", "LISTEN", True, 5555)
    assert (rows[1].state, rows[1].recv_q, rows[1].send_q, rows[1].remote) == ("ESTABLISHED", 3, 2, "127.0.0.1:50000")
    six = inspect.parse_inet_table(TCP6, "tcp6")
    assert six[0].local == "[::]:22" and six[1].state == "TIME_WAIT" and not six[1].listening
    udp = inspect.parse_inet_table(UDP, "udp")
    assert udp[0].listening and udp[0].state == "" and udp[0].local == "10.0.3.1:53"


def test_parse_unix_table():
    rows = inspect.parse_unix_table(UNIX)
    assert (rows[0].local, rows[0].state, rows[0].listening, rows[0].unix_type) == ("/run/app.sock", "LISTENING", True, "STREAM")
    assert rows[1].local == "" and rows[1].unix_type == "DGRAM" and not rows[1].listening
    assert rows[2].local == "@abstract name" and rows[2].state == "CONNECTED"


def test_a_socket_path_the_container_chose_cannot_forge_rows_or_reach_the_terminal():
    text = ("Num       RefCount Protocol Flags    Type St Inode Path\n"
            "0000000000000000: 00000002 00000000 00010000 0001 01 4242 /run/a\x1b]0;owned\x07\n"
            "injected line\n"
            "0000000000000000: 00000002 00000000 00000000 0002 01 4343\n")
    rows = inspect.parse_unix_table(text)
    assert [r.inode for r in rows] == [4242, 4343]
    assert rows[0].local == "/run/a\x1b]0;owned\x07\ninjected line"
    table = inspect.socket_table([r.with_owner(7, 1, "evil\x1b[2J") for r in rows])
    assert len(table) == 3 and all(line.isprintable() for line in table)
    assert table[1].endswith("/run/a?]0;owned??injected line") and "7/evil?[2J" in table[1]


def test_own_listening_socket_is_found_with_its_owner():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        rows = inspect.read_sockets(os.getpid(), kinds=["tcp"], owner_pids=[os.getpid()])
        mine = [r for r in rows if r.local == f"127.0.0.1:{port}"]
        assert len(mine) == 1 and mine[0].listening and mine[0].pid == os.getpid()
        assert mine[0].nspid == os.getpid() and mine[0].program
        table = inspect.socket_table(mine)
        assert table[0].split()[:3] == ["Proto", "Recv-Q", "Send-Q"] and f"{os.getpid()}/" in table[1]


def test_pids_in_netns_includes_self():
    assert os.getpid() in inspect.pids_in_netns(os.getpid())


def test_read_sockets_of_a_gone_process():
    with pytest.raises(NotFoundError):
        inspect.read_sockets(2 ** 22 + 12345)


def test_netstat_arguments():
    from lxctools.cli import netstat
    assert netstat.tool_argv(["-tlnp"])[1:] == ["-tlnp"]
    assert netstat.tool_argv(["netstat", "-lnp"]) == ["netstat", "-lnp"]
    ns = types.SimpleNamespace(tcp=False, udp=True, unix=True)
    assert netstat.kinds_of(ns) == ["udp", "unix"]
    assert netstat.kinds_of(types.SimpleNamespace(tcp=False, udp=False, unix=False)) == ["tcp", "udp", "unix"]


def test_netstat_l_means_listening():
    from lxctools.cli import driver, netstat
    args = driver.build_parser("netstat", netstat).parse_args(["-n", "c1", "-l", "--logpriority", "INFO"])
    assert args.listening and args.logpriority == "INFO"


# ------------------------------------------------------------------ pyl-cgroup arguments


def test_cgroup_items():
    from lxctools.cli.cgroup import split_items
    assert split_items("c1", ["memory.max"]) == ("c1", "memory.max", None)
    assert split_items(None, ["c1", "memory.max", "1G"]) == ("c1", "memory.max", "1G")
    with pytest.raises(UsageError, match="missing state object"):
        split_items("c1", [])
    with pytest.raises(UsageError):
        split_items("c1", ["a.b", "1", "2"])
    with pytest.raises(PylError):
        split_items(None, ["bad/name", "memory.max"])


# ------------------------------------------------------------------ devices


def test_host_node_of_dev_null():
    node = devices.host_node("/dev/null")
    assert (node.kind, node.major, node.minor) == ("c", 1, 3)
    assert node.cgroup_rule() == "c 1:3 rwm"
    with pytest.raises(UsageError):
        devices.host_node("/etc/hostname")
    with pytest.raises(NotFoundError):
        devices.host_node("/dev/no-such-device-here")


@pytest.mark.parametrize("device,name,target", [
    ("/dev/video0", None, "/dev/video0"), ("/dev/ttyUSB0", "modem", "/dev/modem"),
    ("/dev/dri/card0", None, "/dev/dri/card0"), ("/dev/x", "/dev//b", "/dev/b"),
])
def test_container_path(device, name, target):
    assert devices.container_path(device, name) == target


def test_container_path_rejects_escapes():
    for bad in ("../../etc/passwd", "/dev/a/../b", "/"):
        with pytest.raises(UsageError):
            devices.container_path("/dev/x", bad)


def test_permitted_by_config():
    video = devices.DeviceNode("c", 81, 0, 0o660, 0, 0)
    null = devices.DeviceNode("c", 1, 3, 0o666, 0, 0)
    assert devices.permitted_by_config({}, null)          # LXC's default allow-list
    assert not devices.permitted_by_config({}, video)
    assert devices.permitted_by_config({"lxc.cgroup.devices.allow": ["c 81:* rwm"]}, video)
    assert devices.permitted_by_config({"lxc.cgroup.devices.allow": "a"}, video)
    assert not devices.permitted_by_config({"lxc.cgroup.devices.deny": "a",
                                            "lxc.cgroup.devices.allow": "c 81:0 r"}, video)


def _plan(tmp: Path, v1_devices: bool, unified: bool):
    from lxctools.runtime.cgroups import CgroupDir, CgroupPlan
    dirs = []
    if v1_devices:
        d = tmp / "devices" / "pyl.payload.c1"
        d.mkdir(parents=True)
        for f in ("devices.allow", "devices.deny"):
            (d / f).write_text("")
        dirs.append(CgroupDir(1, str(tmp / "devices"), ("devices",), str(tmp / "devices"), str(d)))
    if unified:
        u = tmp / "unified" / "pyl.payload.c1"
        u.mkdir(parents=True)
        dirs.append(CgroupDir(2, str(tmp / "unified"), (), str(tmp / "unified"), str(u)))
    return CgroupPlan("pyl.payload.c1", "hybrid", tuple(dirs))


def test_device_cgroup_rules(tmp_path):
    plan = _plan(tmp_path, v1_devices=True, unified=True)
    node = devices.DeviceNode("c", 81, 0, 0o660, 0, 0)
    devices.allow_in_cgroup(plan, node)
    assert (tmp_path / "devices/pyl.payload.c1/devices.allow").read_text() == "c 81:0 rwm"
    devices.deny_in_cgroup(plan, node)
    assert (tmp_path / "devices/pyl.payload.c1/devices.deny").read_text() == "c 81:0 rwm"


def test_device_cgroup_pure_v2_rebuilds_the_program_with_what_was_granted(tmp_path, monkeypatch):
    from lxctools.kernel import bpf
    programs = []
    monkeypatch.setattr(bpf, "replace_device_program",
                        lambda d, default, rules: programs.append((d, default, rules)))
    plan = _plan(tmp_path, v1_devices=False, unified=True)
    granted = devices.Granted(str(tmp_path / "run/devices/c1.json"), (4242, 99))
    tun = devices.DeviceNode("c", 10, 200, 0o666, 0, 0)
    video = devices.DeviceNode("c", 81, 0, 0o660, 0, 0)
    devices.allow_in_cgroup(plan, tun, values={}, granted=granted)
    devices.allow_in_cgroup(plan, video, values={}, granted=granted)
    (directory, default, rules), = programs[-1:]
    assert directory == str(tmp_path / "unified/pyl.payload.c1") and default is False
    # granted first, then LXC's default allow-list (the config names no device rules)
    assert rules[:2] == [("c", 10, 200, "rwm", True), ("c", 81, 0, "rwm", True)]
    assert ("c", 1, 3, "rwm", True) in rules[2:]
    devices.deny_in_cgroup(plan, tun, values={}, granted=granted)
    assert programs[-1][2][0] == ("c", 81, 0, "rwm", True) and ("c", 10, 200, "rwm", True) not in programs[-1][2]
    assert granted.rules() == ["c 81:0 rwm"]
    # another run of the container (a new init) starts from the config again
    assert devices.Granted(granted.path, (5151, 7)).rules() == []
    # a config that enforces nothing has no program to replace
    programs.clear()
    devices.allow_in_cgroup(plan, tun, values={"lxc.cgroup2.devices.allow": []}, granted=granted)
    assert programs == []


def test_make_node_is_idempotent_and_refuses_other_files(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mknod of a character device needs root")
    node = devices.host_node("/dev/null")
    target = str(tmp_path / "sub" / "null")
    pid = os.fork()
    if pid == 0:  # _make_node sets the umask: keep it out of the pytest process
        code = 0
        try:
            assert devices._make_node(target, node) == "made"
            assert devices._make_node(target, node) == "exists"
            (tmp_path / "plain").write_text("")
            try:
                devices._make_node(str(tmp_path / "plain"), node)
                code = 3
            except AlreadyExistsError:
                pass
            assert devices._remove_node(target) == "c 1 3"
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not os.path.exists(target)
    with pytest.raises(UsageError, match="not a device node"):
        devices._remove_node(str(tmp_path / "plain"))


# ------------------------------------------------------------------ layering


def test_inspection_is_a_pure_proc_reader():
    """lxctools.inspection reads procfs/cgroupfs only: no kernel calls, no runtime, no tools."""
    path = Path(__file__).resolve().parents[2] / "lxctools" / "inspection.py"
    tree = ast.parse(path.read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | \
        {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(m.startswith(("lxctools.cli", "lxctools.container", "lxctools.kernel", "lxctools.runtime",
                                 "ctypes", "pyroute2")) for m in imported), imported
