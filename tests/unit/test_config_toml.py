"""pyl's TOML config format: flattening, typed scalars, quoted dotted keys, includes, errors, edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxctools.config.model import ContainerConfig
from lxctools.config.tomlformat import placement
from lxctools.errors import ConfigError


def tvalues(text: str, **kw) -> dict:
    return ContainerConfig.from_text(text, fmt="toml", **kw).values()


def test_nested_tables_flatten_to_lxc_keys() -> None:
    v = tvalues('''
# comment
[lxc]
arch = "amd64"
autodev = true
"autodev.tmpfs.size" = 500000
ephemeral = false
[lxc.uts]
name = "c1"
[lxc.net.0]
type = "veth"
ipv4.address = ["10.0.3.5/24", "10.0.3.6/24"]
"veth.pair" = "vethc1"
[lxc.mount]
entry = ["/a a none bind 0 0", "/b b none bind 0 0"]
[lxc.cgroup]
dir = "d"
"dir.container" = "dc"
"memory.limit_in_bytes" = "1G"
[other]
ignored = 1
''')
    assert v == {
        "lxc.arch": "amd64", "lxc.autodev": "1", "lxc.autodev.tmpfs.size": "500000",
        "lxc.ephemeral": "0", "lxc.uts.name": "c1", "lxc.net.0.type": "veth",
        "lxc.net.0.ipv4.address": ["10.0.3.5/24", "10.0.3.6/24"], "lxc.net.0.veth.pair": "vethc1",
        "lxc.mount.entry": ["/a a none bind 0 0", "/b b none bind 0 0"],
        "lxc.cgroup.dir": "d", "lxc.cgroup.dir.container": "dc",
        "lxc.cgroup.memory.limit_in_bytes": "1G",
    }


def test_quoted_dotted_keys_anywhere() -> None:
    assert tvalues('"lxc.uts.name" = "a"\n[lxc]\n"net.0.type" = "veth"\n') == {
        "lxc.uts.name": "a", "lxc.net.0.type": "veth"}
    assert tvalues('lxc.tty.max = 4\n') == {"lxc.tty.max": "4"}


def test_scalar_for_a_multi_valued_key_is_one_line() -> None:
    assert tvalues('[lxc.cap]\ndrop = "sys_module"\n') == {"lxc.cap.drop": ["sys_module"]}


def test_empty_array_element_clears() -> None:
    assert tvalues('[lxc.cap]\ndrop = ["sys_module", "", "sys_time"]\n') == {"lxc.cap.drop": ["sys_time"]}


def test_inline_tables_flatten_too() -> None:
    assert tvalues('lxc = {uts = {name = "x"}}\n') == {"lxc.uts.name": "x"}


def test_array_for_single_valued_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match="<string>:2: lxc.uts.name takes a single value"):
        tvalues('[lxc.uts]\nname = ["a", "b"]\n')


@pytest.mark.parametrize("value", ["1.5", "1979-05-27", "[[1]]", "[{a = 1}]"])
def test_unsupported_value_types(value: str) -> None:
    with pytest.raises(ConfigError, match="<string>:2: lxc.uts.name"):
        tvalues(f"[lxc.uts]\nname = {value}\n")


def test_unknown_key_names_file_and_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[lxc.uts]\nnmae = "x"\n')
    with pytest.raises(ConfigError) as exc:
        ContainerConfig.load(path)
    assert str(exc.value) == f"{path}:2: unknown key 'lxc.uts.nmae' (did you mean 'lxc.uts.name'?)"


def test_errors_name_the_line_of_the_key_however_it_is_written(tmp_path: Path) -> None:
    cases = {
        '# top\n[lxc]\ninclude = []\n\n[lxc.net.0]\ntype = "veth"\n"ipv4.address" = "x"\n': 7,
        '[lxc.net.0]\ntype = "veth"\nipv4.address = [\n  "10.0.0.1/24",\n  "nope",\n]\n': 3,
        '[lxc]\nuts = { nmae = "b" }\n': 2,
        'lxc.tty.max = "four"\n': 1,
    }
    for text, line in cases.items():
        path = tmp_path / "config.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=rf"^{path}:{line}: "):
            ContainerConfig.load(path).values()
    # an included file's key is named in that file
    (tmp_path / "inc.toml").write_text('[lxc]\n\n[lxc.uts]\nnmae = "x"\n')
    (tmp_path / "main.toml").write_text(f'[lxc]\ninclude = ["{tmp_path}/inc.toml"]\n')
    with pytest.raises(ConfigError, match=rf"^{tmp_path}/inc.toml:4: unknown key"):
        ContainerConfig.load(tmp_path / "main.toml").values()


def test_a_good_config_is_loaded_without_the_line_scan(tmp_path: Path, monkeypatch) -> None:
    # the lines are looked for only when an error needs one (every start loads configs)
    from lxctools.config import tomlformat

    def scan(_text):
        raise AssertionError("line scan on a good config")
        yield

    monkeypatch.setattr(tomlformat, "_plain_lines", scan)
    path = tmp_path / "config.toml"
    path.write_text('[lxc.uts]\nname = "x"\n[lxc.cap]\ndrop = ["sys_module"]\n[lxc]\nautodev = true\n')
    assert ContainerConfig.load(path).values()["lxc.uts.name"] == "x"


def test_syntax_error_gives_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[lxc]\narch = "amd64"\nname = \n')
    with pytest.raises(ConfigError, match=rf"{path}: invalid TOML: .*line 3"):
        ContainerConfig.load(path)


def test_bad_value_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[lxc.tty]\nmax = "four"\n')
    with pytest.raises(ConfigError, match=rf"^{path}:2: invalid value 'four' for lxc.tty.max"):
        ContainerConfig.load(path).values()


def test_includes_are_processed_first(tmp_path: Path) -> None:
    (tmp_path / "common.toml").write_text('[lxc.tty]\nmax = 4\n[lxc.cap]\ndrop = ["sys_module"]\n')
    (tmp_path / "extra.conf").write_text("lxc.cap.drop = mac_admin\nlxc.pty.max = 10\n")
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.conf").write_text("lxc.hook.mount = /a\n")
    path = tmp_path / "config.toml"
    path.write_text('[lxc.tty]\nmax = 2\n[lxc]\ninclude = ["common.toml", "extra.conf", "d/"]\n'
                    '[lxc.cap]\ndrop = ["sys_time"]\n')
    assert ContainerConfig.load(path).values() == {
        "lxc.tty.max": "2", "lxc.pty.max": "10", "lxc.hook.mount": ["/a"],
        "lxc.cap.drop": ["sys_module", "mac_admin", "sys_time"]}


def test_group_clear_in_toml(tmp_path: Path) -> None:
    (tmp_path / "net.toml").write_text('[lxc.net.0]\ntype = "veth"\n[lxc.net.1]\ntype = "empty"\n')
    v = tvalues('"lxc.net" = ""\n[lxc]\ninclude = ["net.toml"]\n[lxc.net.3]\ntype = "phys"\n',
                base_dir=tmp_path)
    assert v == {"lxc.net.3.type": "phys"}


def test_placement() -> None:
    assert placement("lxc.uts.name", {"lxc.uts.name"}) == ("lxc.uts", "name")
    assert placement("lxc.arch", set()) == ("lxc", "arch")
    assert placement("lxc.net.0.ipv4.address", set()) == ("lxc.net.0", "ipv4.address")
    assert placement("lxc.autodev.tmpfs.size", {"lxc.autodev"}) == ("lxc", "autodev.tmpfs.size")
    assert placement("lxc.autodev.tmpfs.size", set()) == ("lxc.autodev", "tmpfs.size")
    assert placement("lxc.cgroup.dir.container", {"lxc.cgroup.dir"}) == ("lxc.cgroup", "dir.container")
    assert placement("lxc.net.0.type", {"lxc.net"}) == ("lxc", "net.0.type")
    assert placement("lxc.net.0.type", {"lxc.net.0"}) == ("lxc.net", "0.type")


def test_writer_output_shape() -> None:
    cfg = ContainerConfig.from_text(
        "lxc.autodev = 1\nlxc.autodev.tmpfs.size = 500000\nlxc.uts.name = c1\n"
        "lxc.net.0.type = veth\nlxc.mount.entry = /a a\nlxc.mount.entry = /b b\n")
    assert cfg.to_text("toml") == (
        '[lxc]\nautodev = true\n"autodev.tmpfs.size" = 500000\n\n'
        '[lxc.uts]\nname = "c1"\n\n'
        '[lxc.net.0]\ntype = "veth"\n\n'
        '[lxc.mount]\nentry = [\n    "/a a",\n    "/b b",\n]\n')


# --- edits keep comments ---------------------------------------------------------

DOC = '''# my container
[lxc]
# includes first
include = ["common.toml"]

[lxc.uts]
# the host name
name = "c1" # inline note

[lxc.net.0]
type = "veth"
link = "pylbr0" # bridge
'''


def test_set_replaces_in_place_keeping_comments() -> None:
    cfg = ContainerConfig.from_text(DOC, fmt="toml")
    cfg.set("lxc.uts.name", "c2")
    text = cfg.to_text()
    assert text == DOC.replace('"c1"', '"c2"')


def test_set_new_keys_in_canonical_tables() -> None:
    cfg = ContainerConfig.from_text(DOC, fmt="toml")
    cfg.set("lxc.net.0.ipv4.address", "10.0.3.5/24")
    cfg.set("lxc.tty.max", "4")
    cfg.set("lxc.autodev", "1")
    cfg.set("lxc.autodev.tmpfs.size", "1000")
    cfg.set("lxc.net.1.type", "empty")
    text = cfg.to_text()
    for comment in ("# my container", "# includes first", "# the host name", "# inline note", "# bridge"):
        assert comment in text
    reparsed = ContainerConfig.from_text(text, fmt="toml")
    own = {e.key: e.value for e in reparsed._doc.entries()}
    assert own["lxc.net.0.ipv4.address"] == "10.0.3.5/24"
    assert own["lxc.tty.max"] == "4" and own["lxc.autodev"] == "1"
    assert own["lxc.autodev.tmpfs.size"] == "1000" and own["lxc.net.1.type"] == "empty"
    assert '"autodev.tmpfs.size" = 1000' in text
    assert "[lxc.net.1]" in text


def test_setting_a_leaf_where_a_table_is_moves_the_table_keys() -> None:
    cfg = ContainerConfig.from_text('[lxc.autodev]\n"tmpfs.size" = 100\n', fmt="toml")
    cfg.set("lxc.autodev", "1")
    own = {e.key: e.value for e in cfg._doc.entries()}
    assert own == {"lxc.autodev": "1", "lxc.autodev.tmpfs.size": "100"}


def test_clear_removes_key_and_empty_table_keeps_comments() -> None:
    cfg = ContainerConfig.from_text(DOC, fmt="toml")
    cfg.clear("lxc.net")
    text = cfg.to_text()
    assert "veth" not in text and "[lxc.net" not in text
    assert "# the host name" in text and "# includes first" in text


def test_append_to_multi_valued_key() -> None:
    cfg = ContainerConfig.from_text('[lxc.cap]\n# why\ndrop = ["sys_module"]\n', fmt="toml")
    cfg.append("lxc.cap.drop", "sys_time")
    assert cfg.values() == {"lxc.cap.drop": ["sys_module", "sys_time"]}
    assert "# why" in cfg.to_text()


def test_set_on_empty_toml_document() -> None:
    cfg = ContainerConfig.empty()
    cfg.set("lxc.uts.name", "c1")
    cfg.append("lxc.mount.entry", "/a a")
    cfg.append("lxc.mount.entry", "/b b")
    cfg.set("lxc.start.auto", "1")
    assert ContainerConfig.from_text(cfg.to_text(), fmt="toml").values() == {
        "lxc.uts.name": "c1", "lxc.mount.entry": ["/a a", "/b b"], "lxc.start.auto": "1"}
    assert "auto = true" in cfg.to_text()
