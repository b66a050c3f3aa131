"""The configs pyl ships (configs/): valid TOML, only lxc.* keys, known to the key table.

The TOML convention: flattened dotted table paths are LXC key names, multi-valued keys may
be arrays (one element per LXC line), scalars are strings, integers or booleans.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from lxctools.config import keys

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CONTAINER_CONFIGS = sorted(CONFIGS.glob("*.toml"))
SYSTEM_EXAMPLE = CONFIGS / "pyl.toml.example"

Value = str | list[str]


def flatten(table: dict, prefix: str = "") -> dict[str, Value]:
    """{'lxc': {'net': {'0': {'type': 'veth'}}}} -> {'lxc.net.0.type': 'veth'}."""
    flat: dict[str, Value] = {}
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            flat.update(flatten(value, key))
        elif isinstance(value, list):
            assert all(isinstance(item, (str, int)) and not isinstance(item, bool) for item in value), key
            flat[key] = [str(item) for item in value]
        elif isinstance(value, bool):
            flat[key] = "1" if value else "0"
        else:
            assert isinstance(value, (str, int)), f"{key}: unsupported TOML value {value!r}"
            flat[key] = str(value)
    return flat


def load(path: Path) -> dict[str, Value]:
    with path.open("rb") as f:
        return flatten(tomllib.load(f))


def test_the_expected_files_are_shipped() -> None:
    names = {p.name for p in CONFIGS.iterdir()}
    assert {"common.toml", "common.seccomp", "default.toml", "default-dhcp.toml",
            "empty-net.toml", "pyl.toml.example"} <= names


@pytest.mark.parametrize("path", CONTAINER_CONFIGS, ids=lambda p: p.name)
def test_container_config_keys_are_lxc_keys(path: Path) -> None:
    flat = load(path)
    assert flat, f"{path.name} is empty"
    for key, value in flat.items():
        assert key.startswith("lxc."), f"{path.name}: '{key}' is not an lxc.* key"
        spec = keys.lookup(key)  # ConfigError (with a suggestion) for an unknown key
        if isinstance(value, list):
            assert spec.multi, f"{path.name}: '{key}' takes one value, not an array"


@pytest.mark.parametrize("path", CONTAINER_CONFIGS, ids=lambda p: p.name)
def test_container_config_values_pass_the_validators(path: Path) -> None:
    for key, value in load(path).items():
        for item in value if isinstance(value, list) else [value]:
            keys.lookup(key).validate(item)


def test_auto_ipv4_address_is_accepted_by_the_key_table() -> None:
    # pyl's extension: an address from the bridge's subnet (default.toml relies on it)
    keys.lookup("lxc.net.0.ipv4.address").validate("auto")


def test_common_matches_lxc_common_conf() -> None:
    common = load(CONFIGS / "common.toml")
    # LXC's list, plus sys_admin, sys_ptrace, bpf, perfmon and host-wide facilities (no AppArmor
    # fences them in)
    assert common["lxc.cap.drop"] == ["mac_admin mac_override sys_time sys_module sys_rawio sys_admin "
                                      "sys_ptrace bpf perfmon audit_control audit_read syslog wake_alarm "
                                      "block_suspend"]
    assert common["lxc.mount.auto"] == "proc:mixed sys:ro cgroup:mixed"
    assert common["lxc.pty.max"] == "1024"
    assert common["lxc.tty.max"] == "4"
    assert common["lxc.seccomp.profile"] == "common.seccomp"
    assert (CONFIGS / common["lxc.seccomp.profile"]).is_file()
    expected_allow = ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
                      "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm",
                      "c 10:229 rwm"]
    for version in ("cgroup", "cgroup2"):
        assert common[f"lxc.{version}.devices.deny"] == ["a"]
        assert common[f"lxc.{version}.devices.allow"] == expected_allow


@pytest.mark.parametrize("name", ["default.toml", "default-dhcp.toml", "empty-net.toml"])
def test_container_configs_include_common(name: str) -> None:
    flat = load(CONFIGS / name)
    assert flat["lxc.include"] == ["common.toml"]
    assert (CONFIGS / "common.toml").is_file()


def test_default_network() -> None:
    flat = load(CONFIGS / "default.toml")
    assert flat["lxc.net.0.type"] == "veth"
    assert flat["lxc.net.0.link"] == "pylbr0"
    assert flat["lxc.net.0.flags"] == "up"
    assert flat["lxc.net.0.hwaddr"] == "00:16:3e:xx:xx:xx"
    assert flat["lxc.net.0.ipv4.address"] == "auto"
    assert flat["lxc.net.0.ipv4.gateway"] == "auto"
    dhcp = load(CONFIGS / "default-dhcp.toml")
    assert not any(k.startswith("lxc.net.0.ipv4") for k in dhcp)
    assert dhcp["lxc.net.0.link"] == "pylbr0"
    assert load(CONFIGS / "empty-net.toml")["lxc.net.0.type"] == "empty"


def test_system_config_example() -> None:
    flat = load(SYSTEM_EXAMPLE)
    assert flat["lxc.default_bridge"] == "pylbr0"
    for key, value in flat.items():
        assert key.startswith("lxc."), key
        keys.lookup_system(key).validate(value)
    # The commented keys must be valid too once a user uncomments them.
    text = "\n".join(line[2:] if re.match(r"# [a-z_.]+ = ", line) else line
                     for line in SYSTEM_EXAMPLE.read_text().splitlines())
    for key in flatten(tomllib.loads(text)):
        keys.lookup_system(key)


def test_common_seccomp_is_lxc_policy_v2() -> None:
    lines = [line.strip() for line in (CONFIGS / "common.seccomp").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines[0] == "2"
    assert lines[1] == "denylist"
    assert "reject_force_umount" in lines
    section = lines.index("[all]")
    rules = {line.split()[0]: line.split()[1:] for line in lines[section + 1:]}
    for syscall in ("kexec_load", "open_by_handle_at", "init_module", "finit_module", "delete_module"):
        assert rules[syscall] == ["errno", "1"], syscall


@pytest.mark.parametrize("path", CONTAINER_CONFIGS, ids=lambda p: p.name)
def test_container_configs_load_with_pyl(path: Path) -> None:
    from lxctools.config.model import ContainerConfig

    values = ContainerConfig.load(path).values()
    if path.name != "common.toml":
        # the include was followed, relative to the including file
        assert values["lxc.pty.max"] == "1024"
    # relative seccomp path resolved against common.toml's folder
    assert values["lxc.seccomp.profile"] == str(CONFIGS / "common.seccomp")
