"""pyl-checkconfig's kernel checks: a driver built into the kernel counts, as lxc-checkconfig sees it."""

from __future__ import annotations

import gzip
import os

from lxctools.cli import checkconfig

CONFIG = """#
# CONFIG_VLAN_8021Q is not set
CONFIG_VETH=y
CONFIG_MACVLAN=m
CONFIG_BRIDGE=y
CONFIG_LOCALVERSION="-fc"
"""


def test_the_config_parses_to_options():
    options = checkconfig.parse_kernel_config(CONFIG)
    assert options["CONFIG_VETH"] == "y" and options["CONFIG_MACVLAN"] == "m"
    assert "CONFIG_VLAN_8021Q" not in options
    assert options["CONFIG_LOCALVERSION"] == '"-fc"'


def test_built_in_is_enabled_and_not_set_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(os.path, "isdir", lambda path: False)  # nothing under /sys/module
    options = checkconfig.parse_kernel_config(CONFIG)
    assert checkconfig._kernel_feature("veth", kconfig=options)
    assert not checkconfig._kernel_feature("8021q", kconfig=options)
    # a module (=m) counts only once installed: no /lib/modules listing here
    monkeypatch.setattr(os, "uname", lambda: type("u", (), {"release": "no-such-release"})())
    assert not checkconfig._kernel_feature("macvlan", kconfig=options)


def test_config_env_names_the_file_as_for_lxc_checkconfig(monkeypatch, tmp_path):
    path = tmp_path / "config.gz"
    with gzip.open(path, "wt") as f:
        f.write(CONFIG)
    monkeypatch.setenv("CONFIG", str(path))
    assert checkconfig.kernel_config()["CONFIG_BRIDGE"] == "y"
    monkeypatch.setenv("CONFIG", str(tmp_path / "missing"))
    assert checkconfig.kernel_config() is None
