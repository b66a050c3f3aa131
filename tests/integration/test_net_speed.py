"""The network path of a start, and the netns-reading strategy behind interfaces_of, with their
timings printed (run with ``-s``). No assertion is on a time: a loaded CI machine must not fail
them (bench/ is where speed is judged); pyroute2 kept off the import paths is checked
structurally in tests/unit/test_netplan.py and tests/unit/test_startup.py.
"""

from __future__ import annotations

import statistics
import time

import pytest

from lxctools.runtime import net
from lxctools.runtime.netplan import plan_networks
from tests.integration.test_net import ROOT, Bridge, Netns, no_link_leaks, uid  # noqa: F401

pytestmark = pytest.mark.skipif(not ROOT, reason="needs root")


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def test_setup_and_configure_one_veth(no_link_leaks) -> None:
    br = Bridge(11)
    try:
        host_t, inside_t = [], []
        for i in range(10):
            c = Netns()
            try:
                plans = plan_networks({"lxc.net.0.type": "veth", "lxc.net.0.link": br.name, "lxc.net.0.flags": "up",
                                       "lxc.net.0.ipv4.address": f"10.250.11.{10 + i}/24",
                                       "lxc.net.0.ipv4.gateway": "auto", "lxc.net.0.veth.pair": f"pylt{uid()}"},
                                      container_name=f"s{i}")
                t0 = time.perf_counter()
                state = net.setup_host(plans, c.pid)
                host_t.append(time.perf_counter() - t0)

                def timed() -> float:
                    t = time.perf_counter()
                    net.configure_inside(plans, state)
                    return time.perf_counter() - t
                inside_t.append(net.in_netns(c.pid, timed))
                net.teardown(state)
            finally:
                c.close()
        print(f"\nsetup_host median {_median_ms(host_t)} ms, configure_inside median {_median_ms(inside_t)} ms")
    finally:
        br.close()


def test_netns_read_strategies() -> None:
    c = Netns()
    try:
        fork_t, pyroute_t = [], []
        for _ in range(20):
            t = time.perf_counter()
            net.interfaces_of(c.pid)
            fork_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            from pyroute2.iproute.linux import IPRoute
            with IPRoute(netns=f"/proc/{c.pid}/ns/net", flags=0, groups=0) as ipr:
                ipr.get_links()
                ipr.get_addr()
            pyroute_t.append(time.perf_counter() - t)
        print(f"\ninterfaces_of (fork+setns) median {_median_ms(fork_t)} ms; "
              f"IPRoute(netns=path) median {_median_ms(pyroute_t)} ms")
    finally:
        c.close()

