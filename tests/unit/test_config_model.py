"""ContainerConfig edits, hwaddr expansion, save, overrides, merge; the system config; conversion."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lxctools.config.convert import convert_file, update_legacy_file
from lxctools.config.model import ContainerConfig, random_hwaddr
from lxctools.config.system import load_system_config
from lxctools.errors import ConfigError

LXC_DOC = """\
# Template used to create this container: busybox
lxc.include = common.conf
# host name
lxc.uts.name = c1
lxc.net.0.type = veth
lxc.net.0.link = lxcbr0
lxc.net.0.hwaddr = 00:16:3e:xx:xx:xx
lxc.cap.drop = sys_module
# trailing
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "common.conf").write_text("lxc.cap.drop = mac_admin\nlxc.tty.max = 4\n")
    (tmp_path / "config").write_text(LXC_DOC)
    return tmp_path


def test_set_keeps_comments_and_position(folder: Path) -> None:
    cfg = ContainerConfig.load(folder)
    cfg.set("lxc.uts.name", "c2")
    assert cfg.to_text() == LXC_DOC.replace("name = c1", "name = c2")


def test_set_new_key_goes_after_its_section(folder: Path) -> None:
    cfg = ContainerConfig.load(folder)
    cfg.set("lxc.net.0.flags", "up")
    cfg.set("lxc.arch", "amd64")
    lines = cfg.to_text().splitlines()
    assert lines[lines.index("lxc.net.0.hwaddr = 00:16:3e:xx:xx:xx") + 1] == "lxc.net.0.flags = up"
    assert lines[-1] == "lxc.arch = amd64" and "# trailing" in lines


def test_set_multi_replaces_all_values_including_included(folder: Path) -> None:
    cfg = ContainerConfig.load(folder)
    assert cfg.get("lxc.cap.drop") == ["mac_admin", "sys_module"]
    cfg.set("lxc.cap.drop", "sys_time")
    assert cfg.get("lxc.cap.drop") == ["sys_time"]
    assert "lxc.cap.drop =\nlxc.cap.drop = sys_time\n" in cfg.to_text()


def test_set_single_overriding_an_include_after_it(tmp_path: Path) -> None:
    (tmp_path / "late.conf").write_text("lxc.tty.max = 4\n")
    cfg = ContainerConfig.from_text("lxc.tty.max = 1\nlxc.include = late.conf\n", base_dir=tmp_path)
    cfg.set("lxc.tty.max", "2")
    assert cfg.get("lxc.tty.max") == "2"


def test_append_and_clear(folder: Path) -> None:
    cfg = ContainerConfig.load(folder)
    cfg.append("lxc.cap.drop", "sys_time")
    assert cfg.get("lxc.cap.drop") == ["mac_admin", "sys_module", "sys_time"]
    assert "lxc.cap.drop = sys_module\nlxc.cap.drop = sys_time\n" in cfg.to_text()
    cfg.clear("lxc.uts.name")
    assert cfg.get("lxc.uts.name") is None
    assert "# host name" in cfg.to_text()
    cfg.clear("lxc.cap.drop")       # the include still drops mac_admin: an empty line clears it
    assert cfg.get("lxc.cap.drop") is None
    assert cfg.to_text().endswith("lxc.cap.drop =\n")
    cfg.clear("lxc.net")
    assert cfg.networks() == {}
    assert "lxc.net" not in cfg.to_text()


def test_set_empty_value_clears(folder: Path) -> None:
    cfg = ContainerConfig.load(folder)
    cfg.set("lxc.net.0", "")
    assert cfg.networks() == {}


def test_edit_errors() -> None:
    cfg = ContainerConfig.from_text("")
    with pytest.raises(ConfigError, match=r"invalid value 'x' for lxc.tty.max"):
        cfg.set("lxc.tty.max", "x")
    with pytest.raises(ConfigError, match="did you mean 'lxc.uts.name'"):
        cfg.set("lxc.uts.nme", "x")
    with pytest.raises(ConfigError, match="only takes an empty value"):
        cfg.set("lxc.net", "x")
    with pytest.raises(ConfigError, match="did you mean"):
        cfg.get("lxc.uts.nme")


def test_values_is_a_copy() -> None:
    cfg = ContainerConfig.from_text("lxc.cap.drop = sys_time\n")
    cfg.values()["lxc.cap.drop"].append("x")
    assert cfg.values() == {"lxc.cap.drop": ["sys_time"]}


def test_expand_hwaddr_is_persisted(folder: Path) -> None:
    cfg = ContainerConfig.load(folder)
    changed = cfg.expand_hwaddr()
    mac = changed["lxc.net.0.hwaddr"]
    assert mac.startswith("00:16:3e:") and "x" not in mac.lower()
    cfg.save()
    again = ContainerConfig.load(folder)
    assert again.get("lxc.net.0.hwaddr") == mac
    assert again.expand_hwaddr() == {}
    assert "# host name" in (folder / "config").read_text()


def test_hwaddr_in_include_stays_a_placeholder(tmp_path: Path) -> None:
    (tmp_path / "net.conf").write_text("lxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:xx:xx:xx\n")
    cfg = ContainerConfig.from_text("lxc.include = net.conf\n", base_dir=tmp_path)
    assert cfg.expand_hwaddr() == {}
    concrete = cfg.values(concrete_hwaddr=True)["lxc.net.0.hwaddr"]
    assert "x" not in concrete and concrete == cfg.values(concrete_hwaddr=True)["lxc.net.0.hwaddr"]
    assert cfg.values()["lxc.net.0.hwaddr"] == "00:16:3e:xx:xx:xx"


def test_random_hwaddr() -> None:
    for _ in range(200):
        mac = random_hwaddr("xx:xx:xx:xx:xx:xx")
        first = int(mac[:2], 16)
        assert first & 0x02 and not first & 0x01, mac     # locally administered unicast
        assert random_hwaddr("00:16:3e:xX:Xx:xx").startswith("00:16:3e:")
    assert random_hwaddr("00:16:3e:01:02:03") == "00:16:3e:01:02:03"


def test_save_is_atomic_with_mode_0640(tmp_path: Path) -> None:
    path = tmp_path / "config"
    cfg = ContainerConfig.from_text("lxc.uts.name = a\n")
    old = os.umask(0o077)
    try:
        cfg.save(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text() == "lxc.uts.name = a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]   # no temp file left
    cfg.set("lxc.uts.name", "b")
    cfg.save()
    assert path.read_text() == "lxc.uts.name = b\n"


def test_save_without_a_path() -> None:
    with pytest.raises(ConfigError, match="no file"):
        ContainerConfig.from_text("").save()


def test_save_as_toml_converts_and_switches_format(folder: Path) -> None:
    cfg = ContainerConfig.load(folder)
    before = cfg.values()
    cfg.save(folder / "config.toml")
    assert cfg.fmt == "toml"
    loaded = ContainerConfig.load(folder / "config.toml")
    assert loaded.values() == before
    text = (folder / "config.toml").read_text()
    assert text.startswith("# Template used to create this container: busybox\n")
    assert "# host name" in text and "# trailing" in text
    cfg.set("lxc.uts.name", "c9")     # further edits go to the TOML document
    cfg.save()
    assert ContainerConfig.load(folder / "config.toml").get("lxc.uts.name") == "c9"


def test_apply_overrides(folder: Path) -> None:
    cfg = ContainerConfig.load(folder)
    cfg.apply_overrides(["lxc.uts.name=over", "lxc.cap.drop = sys_time", "lxc.tty.max="])
    v = cfg.values()
    assert v["lxc.uts.name"] == "over"
    assert v["lxc.cap.drop"] == ["mac_admin", "sys_module", "sys_time"]
    assert "lxc.tty.max" not in v
    assert "over" not in cfg.to_text()          # overrides are not saved
    with pytest.raises(ConfigError, match=r"-s lxc.tty.max=x: invalid value 'x'"):
        cfg.apply_overrides(["lxc.tty.max=x"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        cfg.apply_overrides(["lxc.tty.max"])
    with pytest.raises(ConfigError, match="did you mean 'lxc.tty.max'"):
        cfg.apply_overrides(["lxc.tty.mxa=1"])


@pytest.mark.parametrize("fmt", ["lxc", "toml"])
def test_merge(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "common.conf").write_text("lxc.tty.max = 4\n")
    default = ContainerConfig.from_text(
        '[lxc]\ninclude = ["common.conf"]\n[lxc.net.0]\ntype = "veth"\nlink = "pylbr0"\n'
        '[lxc.cap]\ndrop = ["sys_module"]\n', fmt="toml", base_dir=tmp_path)
    extra = ContainerConfig.from_text("# from -f\nlxc.net.0.link = br1\nlxc.cap.drop = sys_time\n"
                                      "lxc.uts.name = x\n")
    cfg = ContainerConfig.empty(fmt)
    cfg.merge(default)
    cfg.merge(extra)
    assert cfg.values() == {
        "lxc.tty.max": "4", "lxc.net.0.type": "veth", "lxc.net.0.link": "br1",
        "lxc.cap.drop": ["sys_module", "sys_time"], "lxc.uts.name": "x"}
    assert str(tmp_path / "common.conf") in cfg.to_text()   # relative include made absolute


def test_to_text_lxc_from_toml_keeps_comments() -> None:
    cfg = ContainerConfig.from_text('# top\n[lxc.uts]\n# host\nname = "c1" # inline\n', fmt="toml")
    assert cfg.to_text("lxc") == "# top\n# host\n# inline\nlxc.uts.name = c1\n"


def test_unknown_format() -> None:
    with pytest.raises(ConfigError, match="unknown config format"):
        ContainerConfig.from_text("", fmt="yaml")
    with pytest.raises(ConfigError, match="unknown config format"):
        ContainerConfig.from_text("").to_text("yaml")


# --- conversion and legacy update ---------------------------------------------------------

def test_convert_file(folder: Path) -> None:
    text = convert_file(str(folder / "config"), "toml")
    assert ContainerConfig.from_text(text, fmt="toml", base_dir=folder).values() == \
        ContainerConfig.load(folder).values()


def test_convert_file_refuses_a_lossy_conversion(tmp_path: Path) -> None:
    (tmp_path / "late.conf").write_text("lxc.tty.max = 4\n")
    (tmp_path / "config").write_text("lxc.tty.max = 1\nlxc.include = late.conf\n")
    with pytest.raises(ConfigError, match="would change lxc.tty.max"):
        convert_file(str(tmp_path / "config"), "toml")


def test_update_legacy_file(tmp_path: Path) -> None:
    path = tmp_path / "config"
    old = ("# old style\nlxc.utsname = c1\n#lxc.aa_profile = unconfined\nlxc.rootfs = /srv/c1/rootfs\n"
           "lxc.rootfs.backend = dir\nlxc.pivotdir = x\n"
           "lxc.network.type = veth\nlxc.network.ipv4 = 10.0.3.5/24\n"
           "lxc.network.type = empty\nlxc.tty = 4\n")
    path.write_text(old)
    assert update_legacy_file(str(path)) is True
    assert (tmp_path / "config.backup").read_text() == old
    assert path.read_text() == (
        "# old style\nlxc.uts.name = c1\n#lxc.apparmor.profile = unconfined\n"
        "lxc.rootfs.path = dir:/srv/c1/rootfs\n"
        "lxc.net.0.type = veth\nlxc.net.0.ipv4.address = 10.0.3.5/24\n"
        "lxc.net.1.type = empty\nlxc.tty.max = 4\n")
    assert update_legacy_file(str(path)) is False


# --- system config ----------------------------------------------------------------------------

def test_system_defaults_root_and_user() -> None:
    root = load_system_config([], euid=0, env={})
    assert (root.lxcpath, root.default_config, root.default_bridge, root.rundir) == (
        "/var/lib/pyl", "/etc/pyl/default.toml", "pylbr0", "/run/pyl")
    user = load_system_config([], euid=1000, env={"HOME": "/home/u", "XDG_RUNTIME_DIR": "/run/user/1000"})
    assert user.lxcpath == "/home/u/.local/share/pyl"
    assert user.rundir == "/run/user/1000/pyl"
    xdg = load_system_config([], euid=1000, env={"HOME": "/home/u", "XDG_DATA_HOME": "/d"})
    assert xdg.lxcpath == "/d/pyl"


def test_system_files_override_in_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text('[lxc]\nlxcpath = "/srv/a"\ndefault_bridge = "br9"\n')
    b.write_text('[lxc]\nlxcpath = "/srv/b"\n"cgroup.use" = "memory"\n')
    cfg = load_system_config([a, tmp_path / "missing.toml", b], euid=0, env={})
    assert (cfg.lxcpath, cfg.default_bridge, cfg.get("lxc.cgroup.use")) == ("/srv/b", "br9", "memory")
    assert cfg.sources == [str(a), str(b)]
    env = load_system_config([a], euid=0, env={"PYL_LXCPATH": "/env"})
    assert env.lxcpath == "/env"


def test_system_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "pyl.toml"
    bad.write_text('[lxc]\nlxcpth = "/x"\n')
    with pytest.raises(ConfigError, match=rf"{bad}: unknown system configuration key 'lxc.lxcpth' "
                                          r"\(did you mean 'lxc.lxcpath'\?\)"):
        load_system_config([bad], euid=0, env={})
    bad.write_text('[lxc\n')
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_system_config([bad], euid=0, env={})
    bad.write_bytes(b'[lxc]\nlxcpath = "/srv/\xff"\n')  # not UTF-8: was a UnicodeDecodeError
    with pytest.raises(ConfigError, match=rf"cannot read '{bad}'"):
        load_system_config([bad], euid=0, env={})
    bad.write_bytes(b'\xef\xbb\xbf[lxc]\nlxcpath = "/srv/a"\n')
    with pytest.raises(ConfigError, match=rf"{bad}:1: the file starts with a UTF-8 byte-order mark"):
        load_system_config([bad], euid=0, env={})


def test_default_paths() -> None:
    from lxctools.config.system import default_paths

    assert default_paths(0, {}) == ["/etc/pyl/pyl.toml"]
    assert default_paths(1000, {"XDG_CONFIG_HOME": "/c"}) == ["/etc/pyl/pyl.toml", "/c/pyl/pyl.toml"]


def test_get_include_returns_the_documents_include_lines(folder: Path) -> None:
    cfg = ContainerConfig.load(folder)
    assert cfg.get("lxc.include") == ["common.conf"]
    assert "lxc.include" not in cfg.values()
    cfg.set("lxc.include", str(folder / "common.conf"))
    assert cfg.get("lxc.include") == [str(folder / "common.conf")]
    assert cfg.get("lxc.tty.max") == "4"


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = ("import sys, lxctools.config.model, lxctools.config.system; "
            "print(' '.join(m for m in ('tomlkit', 'tomllib', 'difflib', 'ipaddress', 're', "
            "'dataclasses', 'pathlib', 'typing') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out == []


def test_anchor_paths_makes_relative_paths_absolute(tmp_path):
    """pyl-create copies the initial config into the container's folder: its relative include
    and path values must keep pointing next to the file they came from."""
    from lxctools.config.model import ContainerConfig
    (tmp_path / "inc.conf").write_text("lxc.tty.max = 2\n")
    (tmp_path / "p.seccomp").write_text("2\ndenylist\n")
    src = tmp_path / "c.conf"
    src.write_text("lxc.include = inc.conf\nlxc.seccomp.profile = p.seccomp\n")
    cfg = ContainerConfig.load(src)
    cfg.anchor_paths()
    text = cfg.to_text("lxc")
    assert f"lxc.include = {tmp_path}/inc.conf" in text
    assert f"lxc.seccomp.profile = {tmp_path}/p.seccomp" in text
    moved = ContainerConfig.from_text(text, fmt="lxc", source="/elsewhere/config", base_dir="/elsewhere")
    assert moved.values()["lxc.tty.max"] == "2"
