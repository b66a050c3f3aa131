"""Round trips for every key of the table, and hypothesis properties of the parsers.

LXC -> TOML -> LXC must give the same values() for every key; random valid configs
round-trip through both formats and through edits; random garbage raises ConfigError only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lxctools.config import keys
from lxctools.config.model import ContainerConfig
from lxctools.errors import ConfigError

# A concrete key for each pattern spec.
CONCRETE = {
    "lxc.net.<N>": "lxc.net.3",
    "lxc.cgroup.<controller.file>": "lxc.cgroup.memory.limit_in_bytes",
    "lxc.cgroup2.<controller.file>": "lxc.cgroup2.memory.max",
    "lxc.prlimit.<resource>": "lxc.prlimit.nofile",
    "lxc.sysctl.<key>": "lxc.sysctl.net.ipv4.ip_forward",
    "lxc.proc.<file>": "lxc.proc.oom_score_adj",
}

# Valid sample values where completions/kind do not give one (free-form or structured keys).
SAMPLES = {
    "lxc.uts.name": ["c1"],
    "lxc.rootfs.path": ["dir:/var/lib/pyl/c1/rootfs"],
    "lxc.rootfs.options": ["idmap=container"],
    "lxc.rootfs.mount": ["/usr/lib/pyl/rootfs"],
    "lxc.mount.fstab": ["/var/lib/pyl/c1/fstab"],
    "lxc.mount.entry": ["/srv srv none bind,create=dir 0 0", "tmpfs tmp tmpfs defaults 0 0"],
    "lxc.mount.auto": ["proc:mixed sys:ro", "cgroup:mixed"],
    "lxc.tty.dir": ["lxc"],
    "lxc.console.logfile": ["/var/log/c1.console"],
    "lxc.init.cmd": ["/sbin/init --debug"],
    "lxc.execute.cmd": ["/usr/bin/app"],
    "lxc.init.cwd": ["/srv"],
    "lxc.init.groups": ["10,20", "30"],
    "lxc.environment": ["APP_ENV=prod", "TERM"],
    "lxc.cap.drop": ["sys_module mac_admin", "sys_time"],
    "lxc.cap.keep": ["chown setuid", "kill"],
    "lxc.idmap": ["u 0 100000 65536", "g 0 100000 65536"],
    "lxc.namespace.clone": ["mnt pid", "uts"],
    "lxc.namespace.keep": ["user net", "ipc"],
    "lxc.time.offset.boot": ["-5s"],
    "lxc.time.offset.monotonic": ["10ms"],
    "lxc.apparmor.raw": ["mount,", "deny /sys/** w,"],
    "lxc.selinux.context": ["system_u:system_r:lxc_t:s0:c22"],
    "lxc.selinux.context.keyring": ["system_u:object_r:lxc_t:s0"],
    "lxc.seccomp.profile": ["/usr/share/pyl/config/common.seccomp"],
    "lxc.seccomp.notify.proxy": ["unix:@proxy"],
    "lxc.seccomp.notify.cookie": ["cookie"],
    "lxc.log.file": ["/var/log/c1.log"],
    "lxc.group": ["onboot", "web"],
    "lxc.cgroup.dir": ["pyl/c1"],
    "lxc.cgroup.dir.container": ["pyl.payload/c1"],
    "lxc.cgroup.dir.container.inner": ["inner"],
    "lxc.cgroup.dir.monitor": ["pyl.monitor/c1"],
    "lxc.cgroup.dir.monitor.pivot": ["pivot"],
    "lxc.cgroup.devices.allow": ["c 1:3 rwm", "c 136:* rwm"],
    "lxc.cgroup.devices.deny": ["a"],
    "lxc.cgroup2.devices.allow": ["c 1:5 rwm", "b *:* m"],
    "lxc.cgroup2.devices.deny": ["a"],
    "lxc.include": [],   # exercised by the include tests
    "lxc.cgroup.<controller.file>": ["512M"],
    "lxc.cgroup2.<controller.file>": ["max"],
    "lxc.prlimit.<resource>": ["1024:4096"],
    "lxc.sysctl.<key>": ["1"],
    "lxc.proc.<file>": ["10"],
    "lxc.net.<N>.link": ["pylbr0"],
    "lxc.net.<N>.name": ["eth0"],
    "lxc.net.<N>.ipv4.address": ["10.0.3.5/24", "10.0.3.6/24 10.0.3.255"],
    "lxc.net.<N>.ipv4.gateway": ["10.0.3.1"],
    "lxc.net.<N>.ipv6.address": ["fd00::5/64", "fd00::6/64"],
    "lxc.net.<N>.ipv6.gateway": ["fd00::1"],
    "lxc.net.<N>.veth.pair": ["vethc1"],
    "lxc.net.<N>.veth.ipv4.route": ["10.1.0.0/16", "10.2.0.0/16"],
    "lxc.net.<N>.veth.ipv6.route": ["fd01::/64"],
    "lxc.net.<N>.veth.vlan.tagged.id": ["10", "20"],
    "lxc.net.<N>.script.up": ["/usr/local/bin/up"],
    "lxc.net.<N>.script.down": ["/usr/local/bin/down"],
    "lxc.hook.pre-start": ["/usr/local/bin/hook arg"],
    "lxc.monitor.signal.pdeath": ["SIGTERM"],
}


def concrete(spec: keys.KeySpec) -> str:
    name = CONCRETE.get(spec.name, spec.name)
    return name.replace("<N>", "3")


def samples(spec: keys.KeySpec) -> list[str]:
    if spec.name in SAMPLES:
        return SAMPLES[spec.name]
    if spec.name.startswith("lxc.hook.") and spec.multi:
        return ["/usr/local/bin/hook"]
    if spec.completions:
        return [spec.completions[0]]
    if spec.kind in ("int", "bool"):
        return ["1"]
    return ["value"]


VALUE_SPECS = [s for s in keys.all_specs() if not s.group_clear and s.name != "lxc.include"]


def test_every_sample_is_valid() -> None:
    for spec in VALUE_SPECS:
        key = concrete(spec)
        assert keys.lookup(key) is spec, key
        for value in samples(spec):
            spec.validate(value)


@pytest.mark.parametrize("spec", VALUE_SPECS, ids=lambda s: s.name)
def test_every_key_round_trips(spec: keys.KeySpec) -> None:
    key = concrete(spec)
    values = samples(spec) if spec.multi else samples(spec)[:1]
    text = "".join(f"{key} = {v}\n" for v in values)
    cfg = ContainerConfig.from_text(text)
    expected = {key: list(values) if spec.multi else values[0]}
    assert cfg.values() == expected
    toml = cfg.to_text("toml")
    via_toml = ContainerConfig.from_text(toml, fmt="toml")
    assert via_toml.values() == expected, toml
    back = ContainerConfig.from_text(via_toml.to_text("lxc"))
    assert back.values() == expected
    # Editing the TOML document (tomlkit) writes a value the reader gets back unchanged.
    edited = ContainerConfig.empty("toml")
    for v in values:
        edited.append(key, v)
    assert ContainerConfig.from_text(edited.to_text(), fmt="toml").values() == expected


@pytest.mark.parametrize("group", [s for s in keys.all_specs() if s.group_clear], ids=lambda s: s.name)
def test_every_group_clear_round_trips_after_an_include(group: keys.KeySpec, tmp_path: Path) -> None:
    below = {"lxc.net": "lxc.net.0.type = veth", "lxc.net.<N>": "lxc.net.3.type = veth",
             "lxc.cgroup": "lxc.cgroup.pids.max = 10", "lxc.cgroup2": "lxc.cgroup2.pids.max = 10",
             "lxc.hook": "lxc.hook.start = /x", "lxc.prlimit": "lxc.prlimit.core = 0",
             "lxc.sysctl": "lxc.sysctl.kernel.x = 1", "lxc.proc": "lxc.proc.oom_score_adj = 1"}
    (tmp_path / "inc.conf").write_text(below[group.name] + "\nlxc.tty.max = 4\n")
    key = concrete(group)
    cfg = ContainerConfig.from_text(f"lxc.include = inc.conf\n{key} =\n", base_dir=tmp_path)
    assert cfg.values() == {"lxc.tty.max": "4"}
    toml = ContainerConfig.from_text(cfg.to_text("toml"), fmt="toml", base_dir=tmp_path)
    assert toml.values() == {"lxc.tty.max": "4"}
    assert ContainerConfig.from_text(toml.to_text("lxc"), base_dir=tmp_path).values() == {"lxc.tty.max": "4"}


def test_leaf_and_prefix_keys_together() -> None:
    text = ("lxc.autodev = 1\nlxc.autodev.tmpfs.size = 500000\nlxc.cgroup.dir = a\n"
            "lxc.cgroup.dir.container = b\nlxc.cgroup.dir.container.inner = c\n"
            "lxc.cgroup.dir.monitor = d\nlxc.cgroup.dir.monitor.pivot = e\n"
            "lxc.selinux.context = x\nlxc.selinux.context.keyring = y\n")
    cfg = ContainerConfig.from_text(text)
    toml = cfg.to_text("toml")
    assert ContainerConfig.from_text(toml, fmt="toml").values() == cfg.values()


# --- hypothesis ---------------------------------------------------------------------------

LINE_TEXT = st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), min_size=1,
                    max_size=30)
FREE_FORM = {s.name for s in VALUE_SPECS if s.validate.__name__ == "any_value"}


@st.composite
def valid_configs(draw) -> list[tuple[str, str]]:
    chosen = draw(st.lists(st.sampled_from(VALUE_SPECS), min_size=1, max_size=12))
    pairs = []
    for spec in chosen:
        key = concrete(spec)
        if spec.name.startswith("lxc.net.<N>."):
            key = key.replace(".3.", f".{draw(st.integers(0, 12))}.")
        if spec.name in FREE_FORM and draw(st.booleans()):
            value = draw(LINE_TEXT)
        else:
            value = draw(st.sampled_from(samples(spec)))
        pairs.append((key, value))
    return pairs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs())
def test_random_valid_configs_round_trip(pairs: list[tuple[str, str]]) -> None:
    cfg = ContainerConfig.empty("lxc")
    for key, value in pairs:
        cfg.append(key, value)
    expected = cfg.values()
    reparsed = ContainerConfig.from_text(cfg.to_text())
    assert reparsed.values() == expected
    toml = ContainerConfig.from_text(cfg.to_text("toml"), fmt="toml")
    assert toml.values() == expected
    assert ContainerConfig.from_text(toml.to_text("lxc")).values() == expected
    # the same edits applied to a TOML document through tomlkit
    tcfg = ContainerConfig.empty("toml")
    for key, value in pairs:
        tcfg.append(key, value)
    assert ContainerConfig.from_text(tcfg.to_text(), fmt="toml").values() == expected


GARBAGE_LINE = st.one_of(
    st.text(max_size=40),
    st.builds(lambda k, v: f"{k} = {v}",
              st.one_of(st.sampled_from([concrete(s) for s in keys.all_specs()]),
                        st.text(max_size=20).map(lambda s: "lxc." + s)),
              st.text(max_size=30)),
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(GARBAGE_LINE, max_size=8))
def test_garbage_lxc_raises_only_config_error(lines: list[str], tmp_path_factory) -> None:
    base = tmp_path_factory.mktemp("empty")
    try:
        cfg = ContainerConfig.from_text("\n".join(lines), base_dir=base)
        cfg.values()
        cfg.networks()
        cfg.to_text("toml")
    except ConfigError:
        pass


TOML_SCALAR = st.one_of(st.text(max_size=20), st.integers(-2**63, 2**63 - 1), st.booleans())


@settings(max_examples=200, deadline=None)
@given(doc=st.one_of(
    st.text(max_size=80),
    st.dictionaries(st.sampled_from([concrete(s) for s in VALUE_SPECS]),
                    st.one_of(TOML_SCALAR, st.lists(TOML_SCALAR, max_size=3)), max_size=6)))
def test_garbage_toml_raises_only_config_error(doc, tmp_path_factory) -> None:
    base = tmp_path_factory.mktemp("empty")
    if isinstance(doc, dict):
        import tomlkit

        text = tomlkit.dumps({k: v for k, v in doc.items()})
    else:
        text = doc
    try:
        cfg = ContainerConfig.from_text(text, fmt="toml", base_dir=base)
        cfg.values()
        cfg.to_text("lxc")
    except ConfigError:
        pass


# --- TOML edits without tomlkit must agree with tomlkit --------------------------------------

COMMENT = st.sampled_from(["# a comment", "# lxc.uts.name = not a key", "#", "# [lxc.fake]", "# \"q\" = 1"])


@st.composite
def toml_documents(draw) -> tuple[str, list[tuple[str, str]]]:
    """A TOML config as pyl writes it (render), with comments sprinkled in, and edits to make."""
    from lxctools.config.tomlformat import render
    pairs = draw(valid_configs())
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        if keys.lookup(key).multi or key not in grouped:
            grouped.setdefault(key, []).append(value)
    items = [(key, values, draw(st.lists(COMMENT, max_size=2))) for key, values in grouped.items()]
    text = render(items, draw(st.lists(COMMENT, max_size=2)), draw(st.lists(COMMENT, max_size=1)))
    edits = draw(st.lists(valid_configs(), min_size=1, max_size=3))
    return text, [edit[0] for edit in edits]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(toml_documents())
def test_toml_edits_by_text_match_tomlkit(doc: tuple[str, list[tuple[str, str]]]) -> None:
    from lxctools.config.tomlformat import TomlDocument
    text, edits = doc
    fast, slow = TomlDocument(text, "t"), TomlDocument(text, "t")
    slow._doc()  # tomlkit from the start: every edit and walk goes its way

    def walk(d: TomlDocument) -> list:
        return [(c, (e.key, e.value) if e else None) for c, e in d.comments_and_entries()]

    by_text = fast._comments_and_entries_by_text()
    assert by_text is None or [(c, (e.key, e.value) if e else None) for c, e in by_text] == walk(slow)
    for key, value in edits:
        fast.set_key(key, [value])
        slow.set_key(key, [value])
        assert sorted((e.key, e.value) for e in fast.entries()) == sorted((e.key, e.value) for e in slow.entries())
    assert ContainerConfig.from_text(fast.to_text(), fmt="toml").values() == \
        ContainerConfig.from_text(slow.to_text(), fmt="toml").values()
    import tomlkit
    tomlkit.parse(fast.to_text())  # a later edit may need tomlkit: it must read what we wrote


def test_an_escaped_quote_does_not_hide_the_lines_after_it() -> None:
    # Found by hypothesis: the line scan took the \" in ["\""] for the string's end, saw an
    # array still open, and swallowed the following lines into its value: the comment walk of
    # a conversion lost "# a comment" (and a later key made it fall back to tomlkit).
    from lxctools.config.tomlformat import TomlDocument
    text = '[lxc.uts]\nname = "c1"\n\n[lxc.hook]\npre-start = ["\\""]\n\n# a comment\n'
    by_text = TomlDocument(text, "t")._comments_and_entries_by_text()
    assert by_text is not None
    assert [(c, (e.key, e.value) if e else None) for c, e in by_text] == [
        (None, ("lxc.uts.name", "c1")), (None, ("lxc.hook.pre-start", '"')), ("# a comment", None)]


def test_text_edits_keep_sibling_tables_together_for_tomlkit() -> None:
    # Found by hypothesis: [lxc.net.0], [lxc.uts], [lxc.net.1] is valid TOML that tomlkit
    # refuses ("net" defined twice), so a later tomlkit edit failed.
    cfg = ContainerConfig.empty("toml")
    for key, value in [("lxc.rootfs.path", "dir:/r"), ("lxc.net.0.type", "veth"), ("lxc.uts.name", "c1"),
                       ("lxc.net.1.type", "veth"), ("lxc.group", "onboot"), ("lxc.net.2.type", "veth")]:
        cfg.append(key, value)
    values = ContainerConfig.from_text(cfg.to_text(), fmt="toml").values()
    assert [values[f"lxc.net.{i}.type"] for i in range(3)] == ["veth"] * 3 and values["lxc.group"] == ["onboot"]


def test_plain_edits_need_no_tomlkit() -> None:
    from lxctools.config.tomlformat import TomlDocument
    doc = TomlDocument('[lxc]\ninclude = ["common.toml"]\n\n[lxc.net.0]\n# eth0\ntype = "veth"\n'
                       'hwaddr = "00:16:3e:xx:xx:xx"\n"ipv4.address" = ["auto"]\n', "t")
    common = str(Path(__file__).resolve().parents[2] / "configs" / "common.toml")
    doc.set_key("lxc.include", [common])
    doc.set_key("lxc.net.0.hwaddr", ["00:16:3e:12:34:56"])
    doc.set_key("lxc.uts.name", ["c1"])               # a new table, appended
    doc.set_key("lxc.net.0.ipv4.address", ["10.0.3.2/24", "10.0.3.3/24"])
    assert doc._tk is None
    assert [c for c, e in doc.comments_and_entries() if c] == ["# eth0"] and doc._tk is None
    values = ContainerConfig.from_text(doc.to_text(), fmt="toml").values()
    assert values["lxc.net.0.hwaddr"] == "00:16:3e:12:34:56" and values["lxc.uts.name"] == "c1"
    assert values["lxc.net.0.ipv4.address"] == ["10.0.3.2/24", "10.0.3.3/24"]
    assert f'include = ["{common}"]' in doc.to_text()
    doc.set_key("lxc.net.0.mtu", ["1400"])             # into an existing table: tomlkit's job
    assert doc._tk is not None and "mtu = 1400" in doc.to_text()
