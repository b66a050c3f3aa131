"""Files pyl reads that a human, a crash or a full disk may have mangled (truncated, binary, the
wrong JSON shape, a folder where the file belongs): a cache is taken as absent and made again,
a record whose loss would lose something is refused in one line naming the file, and nothing
raises anything but a PylError (the CLI's exit 70, "a bug in pyl")."""

from __future__ import annotations

import io
import json
import os
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lxctools import cjson, dependents, locking
from lxctools.cli.driver import run_tool
from lxctools.errors import ConfigError, ExitCode, PylError
from lxctools.paths import Layout
from lxctools.state import read_json, read_state_record

FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None,
                      max_examples=150)

# What a mangled file may hold: anything JSON, and anything at all.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
MANGLED_BYTES = [b"", b"{", b'{"a": [1, 2', b"[]", b'"x"', b"42", b"null", b"\xff\xfe\x00\x01garbage",
                 b"\0" * 64, b"[" * 50000, b'{"a":' * 50000]


def call(tool: str, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_tool(tool, argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def world(tmp_path, monkeypatch):
    """TMP/lxc with stopped containers c1 and c2 (-t none, configs aged past the ls cache's racy
    window) and a private run dir."""
    monkeypatch.setenv("PYL_RUNDIR", str(tmp_path / "run"))
    monkeypatch.setenv("PYL_MONITOR_LINGER", "0")
    lxcpath = tmp_path / "lxc"
    for name in ("c1", "c2"):
        code, _, err = call("create", ["-P", str(lxcpath), "-n", name, "-t", "none", "-q"])
        assert code == 0, err
        old = time.time() - 60
        os.utime(lxcpath / name / "config.toml", (old, old))
    return Layout(lxcpath, tmp_path / "run")


# ---- cjson: every reader of a run-dir JSON file goes through it ------------------------------

@pytest.mark.parametrize("text", ["[" * 50000, '{"a":' * 50000, "[" * 50000 + "]" * 50000, "[1," * 20000])
def test_json_nested_past_the_recursion_limit_is_malformed_not_a_recursion_error(text):
    with pytest.raises(ValueError):
        cjson.loads(text)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode)
       | st.builds(lambda n, opener: (opener * n).encode(), st.integers(1, 30000), st.sampled_from(["[", '{"a":', "[1,"])))
def test_cjson_takes_any_bytes_to_a_value_or_a_value_error(data):
    try:
        cjson.loads(data)
    except ValueError:
        pass


# ---- the supervisor's state file (its reader is shared) --------------------------------------

def test_a_folder_where_the_state_file_belongs_is_no_record(tmp_path):
    (tmp_path / "c1.json").mkdir()
    assert read_json(tmp_path / "c1.json") is None and read_state_record(tmp_path / "c1.json") is None
    (tmp_path / "state").write_text("a file where the state folder belongs")
    assert read_state_record(tmp_path / "state" / "c1.json") is None


def test_pyl_info_and_ls_on_a_folder_as_state_file_say_stopped(world):
    state = Path(world.state_path("c1"))
    state.parent.mkdir(parents=True, exist_ok=True)
    state.mkdir()
    code, out, err = call("info", ["-P", world.lxcpath_str, "-n", "c1"])
    assert code == 0 and "STOPPED" in out, err
    code, out, err = call("ls", ["-P", world.lxcpath_str, "-f"])
    assert code == 0 and "c1" in out, err


# ---- lock files ------------------------------------------------------------------------------

def test_a_folder_where_a_lock_file_belongs_is_refused_in_one_line(world):
    lock = Path(world.lock_path("c2"))
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.unlink(missing_ok=True)
    lock.mkdir()
    code, _, err = call("destroy", ["-P", world.lxcpath_str, "-n", "c2"])
    assert code == ExitCode.FAILURE and str(lock) in err and "bug" not in err, err
    assert (Path(world.lxcpath_str) / "c2" / "config.toml").exists()
    # a probe finds it free (nobody can hold a folder's lock); prune_locks passes it over
    assert not locking.is_locked(lock) and locking.try_flock(lock, create=False) is None
    locking.prune_locks(world)


def test_a_running_lock_that_is_a_folder_is_not_held(world):
    running = Path(world.running_lock_path("c1"))
    running.parent.mkdir(parents=True, exist_ok=True)
    running.mkdir()
    Path(world.state_path("c1")).write_text('{"pid": 1, "starttime": 5, "state": "RUNNING"}')
    code, out, err = call("info", ["-P", world.lxcpath_str, "-n", "c1"])
    assert code == 0 and "STOPPED" in out, err


def test_a_file_where_the_lock_folder_belongs_is_refused_in_one_line(tmp_path):
    (tmp_path / "lock").write_text("x")
    with pytest.raises(PylError):
        locking.try_flock(tmp_path / "lock" / "c1")
    assert locking.try_flock(tmp_path / "lock" / "c1", create=False) is None


# ---- pyl-ls's summary cache: a cache, so re-made ---------------------------------------------

def _cache(world) -> Path:
    return Path(world.run_path("ls-summary.json"))


def _ls_rows(world) -> tuple[int, str, str]:
    return call("ls", ["-P", world.lxcpath_str, "--fancy", "-F", "name,autostart,groups,rootfs"])


ENTRY_FIELDS = ["files", "values", "error", "template"]


@pytest.fixture
def cached(world):
    """world with a valid cache: every entry's stamps are right, so only its shape decides."""
    code, expected, err = _ls_rows(world)
    assert code == 0, err
    document = json.loads(_cache(world).read_text())
    assert set(document["entries"]) == {"c1", "c2"}
    return world, document, expected


def _is_config_value(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


# Where in an entry the mangled value goes: a field, a value, a file, its stamp, a stamp number.
PLACES = [(f,) for f in ENTRY_FIELDS] + [("values", "lxc.group"), ("values", "lxc.start.auto"),
                                         ("files", 0), ("files", 0, 0), ("files", 0, 1), ("files", 0, 1, 2)]


@FIXTURE_OK
@given(place=st.sampled_from(PLACES), value=json_values | st.just("a\0b") | st.just([["a\0b", None]]),
       drop=st.booleans())
def test_an_ls_cache_entry_of_any_shape_is_made_again(cached, place, value, drop):
    world, document, expected = cached
    # What a config could have said is no mangled value: strings (or lists of them) as a value,
    # such a mapping as the values.
    if place == ("values",):
        assume(not (isinstance(value, dict) and all(_is_config_value(v) for v in value.values())))
    elif place[0] == "values":
        assume(not _is_config_value(value))
    doc = json.loads(json.dumps(document))
    target = doc["entries"]["c1"]
    for key in place[:-1]:
        target = target[key]
    if drop and len(place) == 1:
        del target[place[-1]]
    else:
        target[place[-1]] = value
    _cache(world).write_text(json.dumps(doc))
    code, out, err = _ls_rows(world)
    assert code == 0 and out == expected, (err, doc)


def test_an_ls_cache_file_of_any_content_is_made_again(cached):
    world, _, expected = cached
    for data in MANGLED_BYTES:
        _cache(world).write_bytes(data)
        code, out, err = _ls_rows(world)
        assert (code, out, err) == (0, expected, ""), data[:20]
        assert set(json.loads(_cache(world).read_text())["entries"]) == {"c1", "c2"}
    _cache(world).unlink()
    _cache(world).mkdir()  # a folder where the cache belongs: ignored, not written
    assert _ls_rows(world) == (0, expected, "")


# ---- lxc_snapshots / lxc_rdepends: records, so refused ---------------------------------------

@FIXTURE_OK
@given(data=st.binary(max_size=120) | st.lists(st.sampled_from(["/srv/lxc", "c2", "", "\0", "3", " "]),
                                                max_size=6).map(lambda ls: "\n".join(ls).encode()))
def test_a_clone_record_is_read_whole_or_refused_never_half(tmp_path, data):
    path = tmp_path / "lxc_snapshots"
    path.write_bytes(data)
    try:
        pairs = dependents.read_pairs(path)
    except PylError as err:
        assert str(path) in err.message and "\n" not in err.message
        return
    text = data.decode()
    if pairs:  # every line of the file is in a pair: nothing read past
        assert dependents.format_pairs(pairs) in (text, text + "\n")
    else:
        assert not text.strip() or text.strip().isdigit()


@pytest.mark.parametrize("data", [b"\xff\xfe\x00garbage", b"\0" * 64, b"/srv/lxc\nc2\n/srv/lxc\n", b"/srv/lxc\n\nc2\n"])
def test_a_source_with_a_mangled_clone_list_is_not_destroyed(world, data):
    src, clone = Path(world.lxcpath_str) / "c1", Path(world.lxcpath_str) / "c2"
    (src / dependents.CLONES_FILE).write_bytes(data)
    code, _, err = call("destroy", ["-P", world.lxcpath_str, "-n", "c1"])
    assert code == ExitCode.FAILURE and "corrupt clone record" in err and "bug" not in err, err
    assert (src / "config.toml").exists() and (clone / "config.toml").exists()


def test_a_folder_as_clone_list_is_refused(world):
    (Path(world.lxcpath_str) / "c1" / dependents.CLONES_FILE).mkdir()
    code, _, err = call("destroy", ["-P", world.lxcpath_str, "-n", "c1"])
    assert code == ExitCode.FAILURE and "corrupt clone record" in err, err
    assert (Path(world.lxcpath_str) / "c1" / "config.toml").exists()


def test_an_overlay_clone_with_a_mangled_source_record_is_refused_before_its_destroy_hooks_run(world, tmp_path):
    code, _, err = call("copy", ["-P", world.lxcpath_str, "-n", "c1", "-N", "o1", "-B", "overlay", "-q"])
    assert code == 0, err
    clone = Path(world.lxcpath_str) / "o1"
    (clone / dependents.DEPENDS_FILE).write_bytes(b"\xff\xfe")
    ran = tmp_path / "hook-ran"
    with open(clone / "config.toml", "a") as f:
        f.write(f'\n[lxc.hook]\ndestroy = "/bin/sh -c \'touch {ran}\'"\n')
    for tool, argv in (("destroy", ["-n", "o1"]), ("copy", ["-n", "o1", "-N", "o2", "-B", "overlay"])):
        code, _, err = call(tool, ["-P", world.lxcpath_str, *argv])
        assert code == ExitCode.FAILURE and str(clone / dependents.DEPENDS_FILE) in err, err
    assert not ran.exists() and (clone / "config.toml").exists()
    assert not (Path(world.lxcpath_str) / "o2").exists()


# ---- the devices pyl-device granted (pure v2): a record, so refused ----------------------------

@FIXTURE_OK
@given(document=json_values | st.fixed_dictionaries({"init": st.just([10, 20]), "allow": json_values})
       | st.fixed_dictionaries({"init": json_values, "allow": st.just(["c 1:3 rwm"])}))
def test_a_granted_devices_record_of_any_shape_is_read_or_refused(tmp_path, document):
    from lxctools.runtime.devices import Granted
    path = tmp_path / "c1.json"
    path.write_text(json.dumps(document))
    try:
        rules = Granted(str(path), (10, 20)).rules()
    except PylError as err:
        assert str(path) in err.message and "\n" not in err.message
        return
    # what is read compiles into the device program (the next pyl-device rebuilds it)
    from lxctools.kernel.bpf import compile_device_program
    from lxctools.runtime.cgroups.devices import DevicePolicy, parse_rule
    compile_device_program(False, DevicePolicy(False, True, ()).bpf_rules(parse_rule(r, True, key="x") for r in rules))


def test_a_mangled_granted_devices_record_is_refused_naming_it(tmp_path):
    from lxctools.runtime.devices import Granted
    path = tmp_path / "c1.json"
    for data in MANGLED_BYTES + [b'{"init": [10, 20], "allow": ["c 99999999999:0 rwm"]}',
                                 b'{"init": [10, 20], "allow": "c 1:3 rwm"}', b'{"init": [10, 20]}']:
        path.write_bytes(data)
        with pytest.raises(PylError) as err:
            Granted(str(path), (10, 20)).rules()
        assert str(path) in err.value.message and "\n" not in err.value.message


def test_a_granted_devices_record_of_this_run_is_read_and_of_another_run_ignored(tmp_path):
    from lxctools.runtime.devices import Granted
    path = tmp_path / "c1.json"
    Granted(str(path), (10, 20)).save(["c 1:3 rwm"])
    assert Granted(str(path), (10, 20)).rules() == ["c 1:3 rwm"]
    assert Granted(str(path), (10, 21)).rules() == []
    path.unlink()
    path.mkdir()
    with pytest.raises(PylError, match="corrupt record of granted devices"):
        Granted(str(path), (10, 20)).rules()


# ---- pyl-net: its record, dnsmasq's files, /etc/default/pyl-net --------------------------------

@pytest.fixture
def quiet_net(monkeypatch):
    """status() without netlink or /sys: this test is about the files only."""
    from lxctools.runtime import bridge, net
    monkeypatch.setattr(net, "host_link_stats", lambda name: None)
    monkeypatch.setattr(bridge, "_ports", lambda name: [])
    return bridge


@FIXTURE_OK
@given(document=json_values | st.fixed_dictionaries({"config": json_values})
       | st.fixed_dictionaries({"config": st.fixed_dictionaries({"name": json_values, "address": json_values})})
       | st.fixed_dictionaries({"config": st.just({"name": "pylbr0"}), "created_bridge": json_values,
                                "ip_forward_was": json_values}))
def test_pyl_net_status_on_a_record_of_any_shape_reports_or_refuses(tmp_path, quiet_net, document):
    (tmp_path / "network_up").write_text(json.dumps(document))
    try:
        result = quiet_net.status(tmp_path)
    except PylError as err:
        assert "network_up" in err.message and "\n" not in err.message
        return
    assert result["running"] is True and isinstance(result["bridge"], str)


@pytest.mark.parametrize("data", MANGLED_BYTES)
def test_pyl_net_on_a_mangled_record_refuses_naming_it(tmp_path, quiet_net, data):
    marker = tmp_path / "network_up"
    marker.write_bytes(data)
    for op in (quiet_net.status, quiet_net.stop, lambda d: quiet_net.start(d, quiet_net.BridgeConfig())):
        with pytest.raises(PylError) as err:
            op(tmp_path)
        assert str(marker) in err.value.message
    assert marker.read_bytes() == data  # not overwritten: stop still needs what it said


def test_pyl_net_on_a_folder_as_record_refuses_naming_it(tmp_path, quiet_net):
    (tmp_path / "network_up").mkdir()
    with pytest.raises(PylError, match="corrupt pyl-net record"):
        quiet_net.status(tmp_path)


@pytest.mark.parametrize("data", [b"", b"abc", b"-1", b"\xff\xfe", b"99999999999999999999", b"1 2", b"\0\0"])
def test_a_mangled_dnsmasq_pid_file_is_no_dnsmasq(tmp_path, data):
    from lxctools.runtime import bridge
    (tmp_path / "dnsmasq.pid").write_bytes(data)
    assert bridge._dnsmasq_pid(tmp_path) is None
    (tmp_path / "dnsmasq.pid").unlink()
    (tmp_path / "dnsmasq.pid").mkdir()
    assert bridge._dnsmasq_pid(tmp_path) is None


@pytest.mark.parametrize("data", [b"\xff\xfe garbage\n", b"1 aa:bb 10.0.7.5 host *\n\xff\n", b"\0" * 32])
def test_a_mangled_dnsmasq_leases_file_shows_what_is_a_lease(tmp_path, data):
    from lxctools.runtime import bridge
    (tmp_path / "dnsmasq.leases").write_bytes(data)
    leases = bridge._dhcp_leases(tmp_path)
    assert all(set(lease) == {"expires", "mac", "address", "hostname"} for lease in leases)
    (tmp_path / "dnsmasq.leases").unlink()
    (tmp_path / "dnsmasq.leases").mkdir()
    assert bridge._dhcp_leases(tmp_path) == []


@FIXTURE_OK
@given(data=st.binary(max_size=100)
       | st.lists(st.sampled_from(["PYL_BRIDGE", "PYL_ADDR", "PYL_DHCP", "PYL_NFT_TABLE", "#", "X"]), max_size=3)
       .flatmap(lambda keys: st.lists(st.text(max_size=20), min_size=len(keys), max_size=len(keys))
                .map(lambda vals: "\n".join(f"{k}={v}" for k, v in zip(keys, vals)).encode(errors="surrogatepass"))))
def test_pyl_net_settings_of_any_content_load_or_are_refused_naming_the_file(tmp_path, data):
    from lxctools.runtime import bridge
    path = tmp_path / "pyl-net"
    path.write_bytes(data)
    try:
        cfg = bridge.load_config(path)
    except ConfigError as err:
        assert "\n" not in err.message
        return
    # what loads is usable: a link name the kernel takes, an address with a host part
    assert 0 < len(cfg.name) <= 15 and all(c.isprintable() and not c.isspace() and c not in "/:" for c in cfg.name)
    cfg.cidr


@pytest.mark.parametrize("data", [b"\xff\xfePYL_BRIDGE=x\n", b'PYL_BRIDGE="br 0"\n', b"PYL_BRIDGE=a\0b\n",
                                  b"PYL_BRIDGE=a/b\n"])
def test_pyl_net_settings_that_are_not_text_or_no_link_name_are_refused(tmp_path, data):
    from lxctools.runtime import bridge
    path = tmp_path / "pyl-net"
    path.write_bytes(data)
    with pytest.raises(ConfigError):
        bridge.load_config(path)


def test_a_folder_as_pyl_net_settings_is_refused_naming_it(tmp_path):
    from lxctools.runtime import bridge
    with pytest.raises(ConfigError, match=str(tmp_path)):
        bridge.load_config(tmp_path)


# ---- pid files (pyl-start -p) -----------------------------------------------------------------

def test_the_supervisor_removes_its_pid_file_only_and_never_dies_on_it(tmp_path):
    from lxctools.monitor.lifecycle import _remove_pidfile
    path = tmp_path / "c1.pid"
    for data in (b"\xff\xfe\x00", b"", b"12abc", f"{os.getpid()}\n".encode()):
        path.write_bytes(data)
        _remove_pidfile(str(path))  # a stop's cleanup goes on after it (state file, running lock)
        assert path.exists() == (data.strip() != str(os.getpid()).encode())
        path.unlink(missing_ok=True)
    path.mkdir()
    _remove_pidfile(str(path))
    assert path.is_dir()
