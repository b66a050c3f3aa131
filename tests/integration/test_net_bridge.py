"""pyl-net's bridge service for real: bridge, NAT table, dnsmasq leasing to a udhcpc client in a netns.

Uses its own bridge name (pyltb*), nft table (pyltest*), run dir (tmp) and subnet 10.250.9.0/24,
so it never touches a real pylbr0. DHCP traffic stays between our namespace and our bridge.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from lxctools.errors import WrongStateError
from lxctools.runtime import bridge, net
from lxctools.runtime.netplan import plan_networks
from tests.integration.test_net import BUSYBOX, ROOT, Netns, no_link_leaks, start, uid  # noqa: F401

DNSMASQ_OK = os.path.exists(bridge.DNSMASQ)
NFT_OK = os.path.exists(bridge.NFT)


def _nft_tables() -> str:
    return subprocess.run([bridge.NFT, "list", "tables"], capture_output=True, text=True).stdout


def needs_service(test):
    """The bridge service for real: root, dnsmasq and nft."""
    for mark in (pytest.mark.skipif(not NFT_OK, reason="nft missing (apt-get install nftables)"),
                 pytest.mark.skipif(not DNSMASQ_OK, reason="dnsmasq missing (apt-get install dnsmasq-base)"),
                 pytest.mark.skipif(not ROOT, reason="needs root")):
        test = mark(test)
    return test


def service_config(subnet: int) -> bridge.BridgeConfig:
    """Settings of a test's own service: bridge pyltb*, nft table pyltest*, 10.250.SUBNET.0/24."""
    tag = uid()
    return bridge.BridgeConfig(name=f"pyltb{tag}", address=f"10.250.{subnet}.1/24", nft_table=f"pyltest{tag}")


@needs_service
def test_bridge_start_lease_stop(no_link_leaks, tmp_path) -> None:
    cfg = service_config(9)
    rundir = tmp_path / "run"
    container = None
    state = None
    try:
        info = bridge.start(rundir, cfg)
        assert info["running"] and info["bridge_present"] and info["dnsmasq_pid"]
        assert info["dhcp_range"] == "10.250.9.2-10.250.9.127"
        assert f"table ip {cfg.nft_table}" in _nft_tables()
        assert bridge.start(rundir, cfg)["dnsmasq_pid"] == info["dnsmasq_pid"]  # idempotent
        assert open("/proc/sys/net/ipv4/ip_forward").read().strip() == "1"

        container = Netns()
        plans = plan_networks({"lxc.net.0.type": "veth", "lxc.net.0.link": cfg.name, "lxc.net.0.flags": "up",
                               "lxc.net.0.hwaddr": "02:00:0a:fa:09:09",
                               "lxc.net.0.veth.pair": "pylt" + cfg.name[5:]}, container_name="dhcp1")
        state = start(plans, container)
        r = container.run(BUSYBOX, "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "5", "-T", "1",
                          "-s", "/bin/true", timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "10.250.9." in r.stdout + r.stderr
        leases = bridge.status(rundir)["dhcp_leases"]
        assert [lease["mac"] for lease in leases] == ["02:00:0a:fa:09:09"]

        with pytest.raises(WrongStateError, match="still has ports attached"):
            bridge.stop(rundir)
        net.teardown(state)
        state = None
        pid = info["dnsmasq_pid"]
        bridge.stop(rundir)
        assert not bridge._is_dnsmasq(pid)  # gone, or a zombie its reaper has yet to collect
        assert net.host_link_stats(cfg.name) is None
        assert cfg.nft_table not in _nft_tables()
        assert bridge.status(rundir) == {"running": False}
        with pytest.raises(WrongStateError):
            bridge.stop(rundir)
    finally:
        if state is not None:
            net.teardown(state)
        if container is not None:
            container.close()
        if (rundir / "network_up").exists():
            bridge.stop(rundir, force=True)


def test_load_config(tmp_path) -> None:
    from lxctools.errors import ConfigError
    path = tmp_path / "pyl-net"
    assert bridge.load_config(path) == bridge.BridgeConfig()
    path.write_text('# comment\nPYL_BRIDGE="br7"\nPYL_ADDR=10.9.9.1/24\nPYL_DHCP=0\n')
    cfg = bridge.load_config(path)
    assert (cfg.name, cfg.address, cfg.dhcp, cfg.nat) == ("br7", "10.9.9.1/24", False, True)
    path.write_text("LXC_BRIDGE=x\n")
    with pytest.raises(ConfigError, match="unknown setting 'LXC_BRIDGE'"):
        bridge.load_config(path)
    path.write_text("PYL_ADDR=10.9.9.0/24\n")
    with pytest.raises(ConfigError, match="network or broadcast"):
        bridge.load_config(path)


def test_pyl_net_refuses_a_settings_file_that_is_not_there(pyl) -> None:
    # The default file may be missing (the defaults apply); a file named on the command line
    # may not: a typo must not bring pylbr0 up with settings nobody asked for.
    r = pyl("net", "start", "--config", "/nonexistent/pyl-net")
    assert r.returncode == 66 and "settings file '/nonexistent/pyl-net' does not exist" in r.stderr
    assert json.loads(pyl("net", "status", "--json").stdout)["running"] is False  # (exit 1: down)


@needs_service
def test_a_wiped_run_dir_neither_blocks_a_new_start_nor_a_stop(no_link_leaks, tmp_path) -> None:
    # The run dir's record went (rm -rf by hand, a tmpfiles clean-up) while the bridge, its NAT
    # table and its dnsmasq stayed: a new start must not fail on the old dnsmasq holding the
    # bridge's DHCP and DNS ports, and stop finds the pieces by what they are.
    import shutil
    cfg = service_config(10)
    rundir = tmp_path / "run"
    try:
        old = bridge.start(rundir, cfg)["dnsmasq_pid"]
        shutil.rmtree(rundir)
        assert bridge._dnsmasq_serving(cfg.name, rundir)[0] == [old]
        new = bridge.start(rundir, cfg)
        assert new["dnsmasq_pid"] and new["dnsmasq_pid"] != old and not bridge._is_dnsmasq(old)
        assert bridge._dnsmasq_serving(cfg.name, rundir)[0] == [new["dnsmasq_pid"]]

        shutil.rmtree(rundir)
        with pytest.raises(WrongStateError, match=f"no record of a start in {rundir}, but bridge {cfg.name}, "
                                                  f"nftables table ip {cfg.nft_table}, dnsmasq {new['dnsmasq_pid']} "
                                                  "of an earlier run") as err:
            bridge.stop(rundir, cfg=cfg)
        assert "--force" in err.value.hint
        bridge.stop(rundir, cfg=cfg, force=True)
        assert net.host_link_stats(cfg.name) is None
        assert cfg.nft_table not in _nft_tables()
        assert bridge._dnsmasq_serving(cfg.name, rundir)[0] == []
        with pytest.raises(WrongStateError, match="^pyl-net is not running$"):
            bridge.stop(rundir, cfg=cfg, force=True)
    finally:
        for pid in bridge._dnsmasq_serving(cfg.name, rundir)[0]:
            os.kill(pid, 9)
        subprocess.run([bridge.NFT, "delete", "table", "ip", cfg.nft_table], capture_output=True)
        if net.host_link_stats(cfg.name) is not None:
            net.delete_link(cfg.name)


@needs_service
def test_a_service_recorded_up_whose_bridge_or_dnsmasq_went_is_brought_up_again(no_link_leaks, tmp_path) -> None:
    # A container's start calls start when its bridge is missing: with the service recorded
    # as up that was a no-op, and every start failed on "bridge does not exist".
    cfg = service_config(11)
    rundir = tmp_path / "run"
    try:
        first = bridge.start(rundir, cfg)
        net.delete_link(cfg.name)  # dnsmasq is left bound to a bridge that is gone
        again = bridge.start(rundir, cfg)
        assert again["bridge_present"] and again["dnsmasq_pid"] and again["dnsmasq_pid"] != first["dnsmasq_pid"]
        assert bridge._dnsmasq_serving(cfg.name, rundir)[0] == [again["dnsmasq_pid"]]
        assert json.loads((rundir / "network_up").read_text())["created_bridge"] is True
        os.kill(again["dnsmasq_pid"], 9)
        for _ in range(200):  # SIGKILL is sent, not yet carried out
            if not bridge._is_dnsmasq(again["dnsmasq_pid"]):
                break
            time.sleep(0.01)
        third = bridge.start(rundir, cfg)
        assert third["dnsmasq_pid"] and third["dnsmasq_pid"] != again["dnsmasq_pid"]
        assert bridge.start(rundir, cfg)["dnsmasq_pid"] == third["dnsmasq_pid"]  # whole: a no-op
        bridge.stop(rundir)
        assert net.host_link_stats(cfg.name) is None and bridge._dnsmasq_serving(cfg.name, rundir)[0] == []
        assert cfg.nft_table not in _nft_tables()
    finally:
        if (rundir / "network_up").exists():
            bridge.stop(rundir, force=True)


@needs_service
def test_a_second_run_dir_leaves_the_service_of_the_first_alone(no_link_leaks, tmp_path) -> None:
    # Two PYL_RUNDIRs, one bridge: what the second finds is the first's live service, not
    # leftovers of a wiped run; neither its start nor its stop --force may take it apart.
    cfg = service_config(12)
    first, second = tmp_path / "one", tmp_path / "two"
    try:
        pid = bridge.start(first, cfg)["dnsmasq_pid"]
        net.delete_link(cfg.name)  # so the second's start has something to do
        with pytest.raises(WrongStateError, match=f"served by the pyl-net of run dir {first}"):
            bridge.start(second, cfg)
        with pytest.raises(WrongStateError, match=f"not running here .*served by the pyl-net of run dir {first}"):
            bridge.stop(second, cfg=cfg, force=True)
        assert bridge._is_dnsmasq(pid) and cfg.nft_table in _nft_tables()
        assert not (second / "network_up").exists()
        assert bridge.start(first, cfg)["bridge_present"]  # the first brings its bridge back
        bridge.stop(first)
        assert net.host_link_stats(cfg.name) is None and cfg.nft_table not in _nft_tables()
    finally:
        for where in (first, second):
            if (where / "network_up").exists():
                bridge.stop(where, force=True)
