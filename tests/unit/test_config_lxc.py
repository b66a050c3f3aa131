"""LXC-format parsing (reference §4.1): syntax, accumulation, clears, includes, legacy names, errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lxctools.config.model import ContainerConfig
from lxctools.errors import ConfigError


def values(text: str, **kw) -> dict:
    return ContainerConfig.from_text(text, **kw).values()


def test_basic_syntax() -> None:
    v = values(
        "# a comment\n"
        "   # indented comment\n"
        "\n"
        "  lxc.uts.name   =   web1  \n"
        "lxc.arch = amd64\n"
        "not.lxc = ignored\n"
        "random garbage without equals\n"
        "lxc.init.cmd = /bin/sh -c 'x # y'\n")
    assert v == {"lxc.uts.name": "web1", "lxc.arch": "amd64", "lxc.init.cmd": "/bin/sh -c 'x # y'"}


def test_no_inline_comments() -> None:
    assert values("lxc.uts.name = x # c\n")["lxc.uts.name"] == "x # c"


@pytest.mark.parametrize("raw, expected", [
    ('"b1"', "b1"), ("'b1'", "b1"), ('"b1', '"b1'), ("'b1\"", "'b1\""), ('" spaced "', " spaced "),
])
def test_quotes_stripped(raw: str, expected: str) -> None:
    assert values(f"lxc.apparmor.profile = {raw}\n")["lxc.apparmor.profile"] == expected


def test_later_single_values_override() -> None:
    assert values("lxc.uts.name = a\nlxc.uts.name = b\n")["lxc.uts.name"] == "b"


def test_single_empty_value_unsets() -> None:
    assert "lxc.uts.name" not in values("lxc.uts.name = a\nlxc.uts.name =\n")


def test_multi_values_accumulate_and_empty_clears() -> None:
    v = values("lxc.cap.drop = a_b\n".replace("a_b", "sys_module mac_admin")
               + "lxc.cap.drop = sys_time\n")
    assert v["lxc.cap.drop"] == ["sys_module mac_admin", "sys_time"]
    v = values("lxc.cap.drop = sys_module\nlxc.cap.drop =\nlxc.cap.drop = sys_time\n")
    assert v["lxc.cap.drop"] == ["sys_time"]
    assert "lxc.cap.drop" not in values("lxc.cap.drop = sys_module\nlxc.cap.drop =\n")


def test_cap_keep_none_clears_earlier_values() -> None:
    v = values("lxc.cap.keep = chown\nlxc.cap.keep = none\n")
    assert v["lxc.cap.keep"] == ["none"]
    v = values("lxc.cap.keep = chown\nlxc.cap.keep = none\nlxc.cap.keep = kill\n")
    assert v["lxc.cap.keep"] == ["none", "kill"]


def test_net_clear_removes_all_networks() -> None:
    text = ("lxc.net.0.type = veth\nlxc.net.0.link = br0\nlxc.net.1.type = empty\n"
            "lxc.uts.name = x\nlxc.net =\nlxc.net.2.type = phys\n")
    assert values(text) == {"lxc.uts.name": "x", "lxc.net.2.type": "phys"}


def test_net_n_clear_removes_one_network() -> None:
    text = "lxc.net.0.type = veth\nlxc.net.1.type = empty\nlxc.net.10.type = phys\nlxc.net.1 =\n"
    assert values(text) == {"lxc.net.0.type": "veth", "lxc.net.10.type": "phys"}


def test_cgroup_clear_keeps_dir_and_relative() -> None:
    text = ("lxc.cgroup.dir = d\nlxc.cgroup.relative = 1\nlxc.cgroup.memory.limit_in_bytes = 1\n"
            "lxc.cgroup.devices.deny = a\nlxc.cgroup2.memory.max = 5\nlxc.cgroup =\n")
    assert values(text) == {"lxc.cgroup.dir": "d", "lxc.cgroup.relative": "1",
                            "lxc.cgroup2.memory.max": "5"}


def test_hook_clear_keeps_version() -> None:
    v = values("lxc.hook.version = 1\nlxc.hook.start = /a\nlxc.hook.stop = /b\nlxc.hook =\n")
    assert v == {"lxc.hook.version": "1"}


def test_group_clear_rejects_a_value() -> None:
    with pytest.raises(ConfigError, match=r"<string>:1: lxc.net only takes an empty value"):
        values("lxc.net = x\n")


def test_network_indexes_and_networks() -> None:
    cfg = ContainerConfig.from_text(
        "lxc.net.0.type = veth\nlxc.net.0.ipv4.address = 10.0.0.2/24\n"
        "lxc.net.0.ipv4.address = 10.0.0.3/24\nlxc.net.07.type = empty\n")
    assert cfg.networks() == {0: {"type": "veth", "ipv4.address": ["10.0.0.2/24", "10.0.0.3/24"]},
                              7: {"type": "empty"}}


def test_unknown_key_names_file_line_and_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("lxc.uts.name = a\n# x\nlxc.uts.nmae = b\n")
    with pytest.raises(ConfigError) as exc:
        ContainerConfig.load(path)
    assert str(exc.value) == f"{path}:3: unknown key 'lxc.uts.nmae' (did you mean 'lxc.uts.name'?)"


def test_missing_equals_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"<string>:2: missing '='"):
        ContainerConfig.from_text("lxc.uts.name = a\nlxc.uts.name\n")


def test_bad_value_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("lxc.uts.name = a\n\nlxc.tty.max = four\n")
    cfg = ContainerConfig.load(path)   # loading checks keys; values() checks values
    with pytest.raises(ConfigError) as exc:
        cfg.values()
    assert str(exc.value) == f"{path}:3: invalid value 'four' for lxc.tty.max: expected an integer"


def test_include_file_and_dir(tmp_path: Path) -> None:
    (tmp_path / "common.conf").write_text("lxc.cap.drop = sys_module\nlxc.tty.max = 4\n")
    d = tmp_path / "common.conf.d"
    d.mkdir()
    (d / "20-b.conf").write_text("lxc.hook.mount = /b\n")
    (d / "10-a.conf").write_text("lxc.hook.mount = /a\n")
    (d / "ignored.txt").write_text("lxc.bogus = 1\n")
    (d / "sub.conf").mkdir()
    (tmp_path / "config").write_text(
        "lxc.include = common.conf\n"
        f"lxc.include = {d}/\n"
        f"lxc.include = {tmp_path}/missing.d/\n"
        "lxc.cap.drop = sys_time\n"
        "lxc.tty.max = 2\n")
    v = ContainerConfig.load(tmp_path / "config").values()
    assert v == {"lxc.cap.drop": ["sys_module", "sys_time"], "lxc.tty.max": "2",
                 "lxc.hook.mount": ["/a", "/b"]}


@pytest.mark.parametrize("name, text", [
    ("config", "lxc.uts.name = web1\n"),                       # LXC format: LXC drops the line
    ("config.toml", '[lxc]\nuts.name = "web1"\n'),            # TOML: an error at line 1, col 1
])
def test_a_byte_order_mark_is_named_not_a_silently_lost_first_line(tmp_path: Path, name, text) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    with pytest.raises(ConfigError) as exc:
        ContainerConfig.load(path).values()
    assert str(exc.value) == f"{path}:1: the file starts with a UTF-8 byte-order mark (BOM)"
    assert "without a BOM" in exc.value.hint
    path.write_text(text)  # the same text without it loads
    assert ContainerConfig.load(path).values()["lxc.uts.name"] == "web1"


def test_a_byte_order_mark_in_an_included_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "common.conf").write_bytes(b"\xef\xbb\xbflxc.tty.max = 4\n")
    (tmp_path / "config").write_text("lxc.include = common.conf\n")
    with pytest.raises(ConfigError, match=r"common\.conf:1: the file starts with a UTF-8 byte-order mark"):
        ContainerConfig.load(tmp_path / "config").values()


def test_include_order_matters(tmp_path: Path) -> None:
    (tmp_path / "inc.conf").write_text("lxc.tty.max = 4\nlxc.cap.drop =\n")
    v = values("lxc.tty.max = 2\nlxc.cap.drop = sys_time\nlxc.include = inc.conf\n", base_dir=tmp_path)
    assert v == {"lxc.tty.max": "4"}


def test_missing_include_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"<string>:2: included file 'nope.conf' does not exist"):
        values("# x\nlxc.include = nope.conf\n", base_dir=tmp_path)


def test_include_errors_name_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "inc.conf").write_text("\nlxc.tty.mxa = 4\n")
    with pytest.raises(ConfigError, match=f"{tmp_path}/inc.conf:2: unknown key 'lxc.tty.mxa' "
                                          r"\(did you mean 'lxc.tty.max'\?\)"):
        values("lxc.include = inc.conf\n", base_dir=tmp_path)


def test_include_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("lxc.include = b.conf\n")
    (tmp_path / "b.conf").write_text("lxc.include = a.conf\n")
    with pytest.raises(ConfigError, match="include loop"):
        ContainerConfig.load(tmp_path / "a.conf").values()


def test_include_of_toml_file(tmp_path: Path) -> None:
    (tmp_path / "inc.toml").write_text('[lxc.uts]\nname = "from-toml"\n')
    assert values("lxc.include = inc.toml\n", base_dir=tmp_path) == {"lxc.uts.name": "from-toml"}


LEGACY = """\
lxc.utsname = old
lxc.id_map = u 0 100000 65536
lxc.pts = 1024
lxc.tty = 4
lxc.devttydir = lxc
lxc.aa_profile = unconfined
lxc.aa_allow_incomplete = 1
lxc.se_context = system_u:system_r:lxc_t:s0
lxc.mount = /var/lib/lxc/c1/fstab
lxc.seccomp = /usr/share/lxc/config/common.seccomp
lxc.console = none
lxc.haltsignal = SIGRTMIN+3
lxc.rebootsignal = SIGTERM
lxc.stopsignal = SIGKILL
lxc.syslog = daemon
lxc.loglevel = 1
lxc.logfile = /var/log/c1.log
lxc.init_cmd = /sbin/myinit
lxc.init_uid = 1000
lxc.init_gid = 1000
lxc.limit.nofile = 1024
lxc.rootfs = /var/lib/lxc/c1/rootfs
lxc.rootfs.backend = dir
lxc.pivotdir = lxc_putold
lxc.kmsg = 0
lxc.network.type = veth
lxc.network.link = lxcbr0
lxc.network.ipv4 = 10.0.3.5/24
lxc.network.ipv6 = fd00::5/64
lxc.network.ipv4.gateway = auto
lxc.network.type = macvlan
lxc.network.link = eth0
lxc.network.5.type = empty
lxc.network.5.ipv4 = 10.9.9.9/8
"""


def test_legacy_names_are_mapped() -> None:
    assert values(LEGACY) == {
        "lxc.uts.name": "old", "lxc.idmap": ["u 0 100000 65536"], "lxc.pty.max": "1024",
        "lxc.tty.max": "4", "lxc.tty.dir": "lxc", "lxc.apparmor.profile": "unconfined",
        "lxc.apparmor.allow_incomplete": "1", "lxc.selinux.context": "system_u:system_r:lxc_t:s0",
        "lxc.mount.fstab": "/var/lib/lxc/c1/fstab",
        "lxc.seccomp.profile": "/usr/share/lxc/config/common.seccomp", "lxc.console.path": "none",
        "lxc.signal.halt": "SIGRTMIN+3", "lxc.signal.reboot": "SIGTERM", "lxc.signal.stop": "SIGKILL",
        "lxc.log.syslog": "daemon", "lxc.log.level": "1", "lxc.log.file": "/var/log/c1.log",
        "lxc.init.cmd": "/sbin/myinit", "lxc.init.uid": "1000", "lxc.init.gid": "1000",
        "lxc.prlimit.nofile": "1024", "lxc.rootfs.path": "/var/lib/lxc/c1/rootfs",
        "lxc.net.0.type": "veth", "lxc.net.0.link": "lxcbr0",
        "lxc.net.0.ipv4.address": ["10.0.3.5/24"], "lxc.net.0.ipv6.address": ["fd00::5/64"],
        "lxc.net.0.ipv4.gateway": "auto", "lxc.net.1.type": "macvlan", "lxc.net.1.link": "eth0",
        "lxc.net.5.type": "empty", "lxc.net.5.ipv4.address": ["10.9.9.9/8"],
    }


def test_legacy_keys_are_rewritten_on_edit() -> None:
    cfg = ContainerConfig.from_text("# keep me\nlxc.utsname = old\n")
    cfg.set("lxc.uts.name", "new")
    assert cfg.to_text() == "# keep me\nlxc.uts.name = new\n"
    cfg.set("lxc.utsname", "newer")   # the old spelling works in the API too
    assert cfg.get("lxc.uts.name") == "newer"


def test_unchanged_text_round_trips_byte_for_byte() -> None:
    text = "# c\n\n  lxc.uts.name   =  \"x\"  \nfoo bar\nlxc.cap.drop =\n"
    assert ContainerConfig.from_text(text).to_text() == text


def test_crlf_file() -> None:
    assert values("lxc.uts.name = a\r\nlxc.tty.max = 4\r\n") == {"lxc.uts.name": "a", "lxc.tty.max": "4"}


def test_vertical_tab_is_not_a_line_break() -> None:
    # LXC splits on \n only; str.splitlines() would split on \v as well.
    assert values("lxc.init.cmd = a\vb\n")["lxc.init.cmd"] == "a\vb"


def test_load_prefers_config_toml_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "config").write_text("lxc.uts.name = lxc\n")
    assert ContainerConfig.load(tmp_path).get("lxc.uts.name") == "lxc"
    (tmp_path / "config.toml").write_text('[lxc.uts]\nname = "toml"\n')
    cfg = ContainerConfig.load(tmp_path)
    assert (cfg.fmt, cfg.get("lxc.uts.name")) == ("toml", "toml")


def test_load_sniffs_toml_content(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text('# pyl\n[lxc]\narch = "amd64"\n')
    assert ContainerConfig.load(path).fmt == "toml"
    path.write_text("[not toml\nlxc.arch = amd64\n")
    assert ContainerConfig.load(path).fmt == "lxc"


def test_load_missing_file(tmp_path: Path) -> None:
    from lxctools.errors import NotFoundError

    with pytest.raises(NotFoundError):
        ContainerConfig.load(tmp_path / "nope")
    with pytest.raises(NotFoundError):
        ContainerConfig.load(tmp_path)


def test_relative_include_without_base_dir_uses_cwd(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "x.conf").write_text("lxc.tty.max = 3\n")
    monkeypatch.chdir(tmp_path)
    assert values("lxc.include = x.conf\n") == {"lxc.tty.max": "3"}
    assert os.getcwd() == str(tmp_path)
