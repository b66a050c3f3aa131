"""The key table: lookup, suggestions, completion, docs, and every validator's accept/reject."""

from __future__ import annotations

import pytest

from lxctools.config import keys
from lxctools.errors import ConfigError


@pytest.mark.parametrize("key", [
    "lxc.uts.name", "lxc.net.0.type", "lxc.net.17.ipv4.address", "lxc.net.3", "lxc.net",
    "lxc.cgroup.memory.limit_in_bytes", "lxc.cgroup2.memory.max", "lxc.cgroup.dir",
    "lxc.cgroup.dir.container", "lxc.prlimit.nofile", "lxc.sysctl.net.ipv4.ip_forward",
    "lxc.proc.oom_score_adj", "lxc.hook.pre-start", "lxc.hook.version", "lxc.namespace.share.net",
    "lxc.include", "lxc.environment", "lxc.idmap", "lxc.group", "lxc.start.auto", "lxc.log.level",
    "lxc.ephemeral", "lxc.rootfs.path", "lxc.console.buffer.size", "lxc.signal.halt",
    "lxc.seccomp.notify.proxy", "lxc.apparmor.raw", "lxc.selinux.context.keyring",
    "lxc.autodev.tmpfs.size", "lxc.time.offset.boot",
])
def test_known_keys(key: str) -> None:
    assert keys.lookup(key) is keys.find(key)


@pytest.mark.parametrize("key", [
    "lxc.uts.nmae", "lxc.net.x.type", "lxc.net.0.tpye", "lxc.prlimit.nofil", "lxc.hook.prestart",
    "lxc.namespace.share.foo", "lxc.cgroup.", "lxc.sysctl..x", "lxc.proc.a/b", "lxc", "lxc.foo",
    "lxc.net.١.type",
])
def test_unknown_keys(key: str) -> None:
    assert keys.find(key) is None
    with pytest.raises(ConfigError):
        keys.lookup(key)


@pytest.mark.parametrize("typo, hint", [
    ("lxc.uts.nmae", "lxc.uts.name"),
    ("lxc.net.2.tpye", "lxc.net.2.type"),
    ("lxc.cap.dorp", "lxc.cap.drop"),
    ("lxc.prlimit.nofil", "lxc.prlimit.nofile"),
])
def test_suggestion(typo: str, hint: str) -> None:
    with pytest.raises(ConfigError, match=f"unknown key '{typo}' \\(did you mean '{hint}'\\?\\)"):
        keys.lookup(typo)


def test_exact_cgroup_keys_win_over_the_pattern() -> None:
    assert keys.lookup("lxc.cgroup.dir").name == "lxc.cgroup.dir"
    assert keys.lookup("lxc.cgroup.devices.allow").multi
    assert not keys.lookup("lxc.cgroup.memory.max").multi


def test_multi_valued_keys() -> None:
    for key in ("lxc.cap.drop", "lxc.mount.entry", "lxc.idmap", "lxc.environment", "lxc.group",
                "lxc.hook.start", "lxc.cgroup2.devices.deny", "lxc.net.0.ipv4.address", "lxc.include"):
        assert keys.is_multi(key), key
    for key in ("lxc.uts.name", "lxc.net.0.type", "lxc.prlimit.nofile", "lxc.sysctl.kernel.x"):
        assert not keys.is_multi(key), key


def test_canonical_network_index() -> None:
    assert keys.canonical("lxc.net.01.type") == "lxc.net.1.type"
    assert keys.canonical("lxc.net.007") == "lxc.net.7"
    assert keys.canonical("lxc.uts.name") == "lxc.uts.name"


def test_cleared_by() -> None:
    assert keys.cleared_by("lxc.net", "lxc.net.0.type")
    assert keys.cleared_by("lxc.net.1", "lxc.net.1.link")
    assert not keys.cleared_by("lxc.net.1", "lxc.net.10.link")
    assert keys.cleared_by("lxc.cgroup", "lxc.cgroup.memory.max")
    assert keys.cleared_by("lxc.cgroup", "lxc.cgroup.devices.allow")
    assert not keys.cleared_by("lxc.cgroup", "lxc.cgroup.dir")
    assert not keys.cleared_by("lxc.cgroup", "lxc.cgroup2.memory.max")
    assert not keys.cleared_by("lxc.hook", "lxc.hook.version")


def test_complete_keys() -> None:
    assert "lxc.uts.name" in keys.complete_keys("lxc.ut")
    assert keys.complete_keys("lxc.net.4.ty") == ["lxc.net.4.type"]
    assert "lxc.net.0." in keys.complete_keys("lxc.n")
    assert "lxc.prlimit.nofile" in keys.complete_keys("lxc.prlimit.")
    assert "lxc.hook.post-stop" in keys.complete_keys("lxc.hook.p")
    assert all(k.startswith("lxc.cap") for k in keys.complete_keys("lxc.cap"))
    assert keys.complete_keys("zzz") == []


def test_complete_values() -> None:
    assert "veth" in keys.complete_values("lxc.net.0.type")
    assert "SIGRTMIN+3" in keys.complete_values("lxc.signal.halt")
    assert "proc:mixed" in keys.complete_values("lxc.mount.auto")
    assert "sys_admin" in keys.complete_values("lxc.cap.drop")
    assert keys.complete_values("lxc.nope") == ()


def test_render_key_docs_lists_every_spec() -> None:
    doc = keys.render_key_docs()
    assert doc.startswith("| Key |")
    for spec in keys.all_specs():
        assert f"| `{spec.name}` |" in doc
    assert len(doc.splitlines()) == len(keys.all_specs()) + 2


def test_system_keys() -> None:
    assert keys.lookup_system("lxc.lxcpath").name == "lxc.lxcpath"
    assert keys.lookup_system("lxc.default_bridge").default == "pylbr0"
    with pytest.raises(ConfigError, match="did you mean 'lxc.lxcpath'"):
        keys.lookup_system("lxc.lxcpth")


GOOD = {
    "lxc.uts.name": ["c1", "a" * 64],
    "lxc.arch": ["amd64", "x86_64", "arm64", "i686"],
    "lxc.autodev": ["0", "1"],
    "lxc.tty.max": ["0", "4", "1024"],
    "lxc.console.size": ["auto", "1024", "64KB", "1MB", "2G"],
    "lxc.signal.halt": ["SIGPWR", "sigpwr", "SIGRTMIN+3", "SIGRTMAX-2", "30", "SIGTERM"],
    "lxc.monitor.signal.pdeath": ["0", "SIGKILL"],
    "lxc.net.0.hwaddr": ["00:16:3e:xx:xx:xx", "00:16:3E:A1:b5:1a", "xx:xx:xx:xx:xx:xx"],
    "lxc.net.0.ipv4.address": ["10.0.3.5/24", "10.0.3.5", "10.0.3.5/24 10.0.3.255", "auto"],
    "lxc.net.0.ipv4.gateway": ["auto", "dev", "10.0.3.1"],
    "lxc.net.0.ipv6.address": ["fd00::5/64", "2001:db8::1"],
    "lxc.net.0.ipv6.gateway": ["auto", "fe80::1"],
    "lxc.net.0.veth.ipv4.route": ["10.1.0.0/16", "10.1.0.5"],
    "lxc.net.0.veth.vlan.id": ["none", "1", "4094"],
    "lxc.net.0.veth.vlan.tagged.id": ["0", "4094"],
    "lxc.net.0.name": ["eth0", "a" * 15],
    "lxc.net.0.mtu": ["1500"],
    "lxc.cap.drop": ["sys_module mac_admin", "SYS_ADMIN", "21", "checkpoint_restore"],
    "lxc.cap.keep": ["none", "none sys_admin", "chown"],
    "lxc.mount.auto": ["proc:mixed sys:ro cgroup:mixed", "cgroup2:ro:force", "shmounts:/a:/b", "shmounts:/a"],
    "lxc.mount.entry": ["/srv srv none bind,create=dir 0 0", "proc proc"],
    "lxc.idmap": ["u 0 100000 65536", "g 0 100000 65536"],
    "lxc.prlimit.nofile": ["1024", "1024:4096", "unlimited", "0:unlimited"],
    "lxc.environment": ["A=b", "PATH", "X=a=b"],
    "lxc.init.groups": ["1,2,3", "10"],
    "lxc.log.level": ["0", "8", "TRACE", "error"],
    "lxc.log.syslog": ["daemon", "local7"],
    "lxc.time.offset.boot": ["-5s", "10ms", "3h"],
    "lxc.cgroup.devices.allow": ["a", "c 1:3 rwm", "c *:* m", "b 8:* r", "c 136:*"],
    "lxc.namespace.clone": ["mnt pid uts ipc net", "user"],
    "lxc.seccomp.notify.proxy": ["unix:/run/proxy", "unix:@abstract"],
    "lxc.start.order": ["-3", "10"],
    "lxc.hook.version": ["0", "1"],
    "lxc.net.0.type": ["veth", "macvlan", "ipvlan", "vlan", "phys", "empty", "none"],
    "lxc.net.0.vlan.id": ["0", "4094"],
}

BAD = {
    "lxc.uts.name": ["a" * 65],
    "lxc.arch": ["amd65"],
    "lxc.autodev": ["2", "yes", "true"],
    "lxc.tty.max": ["-1", "four", "١", "1_0", "+4"],
    "lxc.console.size": ["big", "1TB"],
    "lxc.signal.halt": ["PWR", "SIGFOO", "SIGRTMIN+99", "SIGRTMAX+1", "999", "0", "SIGRTMIN-1"],
    "lxc.net.0.hwaddr": ["00:16:3e:xx:xx", "00-16-3e-00-00-00", "zz:16:3e:00:00:00"],
    "lxc.net.0.ipv4.address": ["10.0.3.500/24", "fd00::1/64", "10.0.3.5/24 x", "10.0.3.5/33"],
    "lxc.net.0.ipv4.gateway": ["fe80::1", "gw"],
    "lxc.net.0.ipv6.address": ["10.0.0.1/24"],
    "lxc.net.0.veth.vlan.id": ["0", "4095"],
    "lxc.net.0.name": ["a" * 16, "a/b", "a b"],
    "lxc.cap.drop": ["sys_foo", "none", "cap_sys_admin"],
    "lxc.mount.auto": ["proc:foo", "shmounts:", "nope"],
    "lxc.mount.entry": ["lonely"],
    "lxc.idmap": ["b 0 100000 65536", "u 0 100000", "u 0 100000 0", "u a b c"],
    "lxc.prlimit.nofile": ["1:2:3", "lots", "-1"],
    "lxc.environment": ["=x", " A=b"],
    "lxc.init.groups": ["a,b", "1,,2"],
    "lxc.log.level": ["9", "LOUD"],
    "lxc.log.syslog": ["kern"],
    "lxc.time.offset.boot": ["5", "5d"],
    "lxc.cgroup.devices.allow": ["x 1:3 rwm", "c 1:3 rwx", "c a:b"],
    "lxc.namespace.clone": ["mount"],
    "lxc.seccomp.notify.proxy": ["/run/proxy", "unix:"],
    "lxc.hook.version": ["2"],
    "lxc.net.0.type": ["bridge"],
    "lxc.net.0.flags": ["down"],
    "lxc.group": ["on boot"],
    "lxc.net": ["x"],
}


@pytest.mark.parametrize("key, value", [(k, v) for k, vs in GOOD.items() for v in vs])
def test_validator_accepts(key: str, value: str) -> None:
    keys.lookup(key).validate(value)


@pytest.mark.parametrize("key, value", [(k, v) for k, vs in BAD.items() for v in vs])
def test_validator_rejects(key: str, value: str) -> None:
    with pytest.raises(ValueError):
        keys.lookup(key).validate(value)
