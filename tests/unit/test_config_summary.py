"""pyl-ls's cache of config summaries: reused while every file behind a config is unchanged,
re-read when the config, an include or an include directory changes, never trusted when racy."""

from __future__ import annotations

import os
import time

import pytest

from lxctools.config import summary
from lxctools.paths import Layout

OLD = time.time() - 60  # files older than the racy window


def age(*paths) -> None:
    for p in paths:
        os.utime(p, (OLD, OLD))


@pytest.fixture
def layout(tmp_path):
    lx = tmp_path / "lxc"
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "common.toml").write_text('[lxc.start]\nauto = 1\n')
    (tmp_path / "dropins").mkdir()
    for name in ("a", "b"):
        (lx / name).mkdir(parents=True)
        (lx / name / "config.toml").write_text(
            "# Template used to create this container: /x/templates/busybox\n"
            f'[lxc]\ninclude = ["{inc}/common.toml", "{tmp_path}/dropins/"]\ngroup = ["web"]\n'
            f'[lxc.rootfs]\npath = "dir:{lx}/{name}/rootfs"\n')
    age(inc / "common.toml", tmp_path / "dropins", lx / "a" / "config.toml", lx / "b" / "config.toml")
    return Layout(lx, tmp_path / "run")


@pytest.fixture
def loads(monkeypatch):
    from lxctools.config.model import ContainerConfig
    calls = []
    real = ContainerConfig.load.__func__

    def counting(cls, path):
        calls.append(str(path))
        return real(cls, path)
    monkeypatch.setattr(ContainerConfig, "load", classmethod(counting))
    return calls


def fresh(layout):
    s = summary.Summaries(layout)
    out = {name: s.get(name) for name in ("a", "b")}
    s.save()
    return out


def test_values_template_and_reuse(layout, loads):
    first = fresh(layout)
    assert first["a"]["values"]["lxc.start.auto"] == "1" and first["a"]["values"]["lxc.group"] == ["web"]
    assert first["a"]["template"] == "busybox" and first["a"]["error"] is None
    assert len(loads) == 2
    assert fresh(layout) == first and len(loads) == 2  # from the cache: no parse


def test_a_changed_config_include_or_include_directory_is_read_again(layout, loads, tmp_path):
    fresh(layout)
    cfg = layout.lxcpath / "a" / "config.toml"
    cfg.write_text(cfg.read_text().replace('"web"', '"db"'))
    assert fresh(layout)["a"]["values"]["lxc.group"] == ["db"] and len(loads) == 3
    age(cfg)
    fresh(layout)
    (tmp_path / "inc" / "common.toml").write_text("[lxc.start]\nauto = 0\n")
    both = fresh(layout)
    assert both["a"]["values"]["lxc.start.auto"] == both["b"]["values"]["lxc.start.auto"] == "0"
    age(tmp_path / "inc" / "common.toml")
    fresh(layout)
    before = len(loads)
    (tmp_path / "dropins" / "mem.conf").write_text("lxc.cgroup2.memory.max = 1G\n")
    assert fresh(layout)["b"]["values"]["lxc.cgroup2.memory.max"] == "1G" and len(loads) == before + 2


def test_racy_entries_are_not_cached(layout, loads):
    cfg = layout.lxcpath / "a" / "config.toml"
    cfg.write_text(cfg.read_text())  # mtime now: a second write this tick could go unseen
    fresh(layout)
    fresh(layout)
    assert loads.count(str(cfg)) == 2 and loads.count(str(layout.lxcpath / "b" / "config.toml")) == 1


def test_errors_are_summarised_and_gone_containers_dropped(layout, tmp_path):
    cfg = layout.lxcpath / "b" / "config.toml"
    cfg.write_text("[lxc]\nnot_a_key = 1\n")
    age(cfg)
    got = fresh(layout)
    assert "not_a_key" in got["b"]["error"] and got["b"]["values"] == {}
    os.unlink(cfg)
    s = summary.Summaries(layout)
    s.get("a")
    s.changed = True
    s.save()
    assert set(summary.Summaries(layout).entries) == {"a"}


def test_a_broken_cache_file_is_ignored(layout):
    fresh(layout)
    for text in ("{not json", '{"version": 1, "entries": {"a": {"files": 3}, "b": [], "zz": 1}}',
                 '{"version": 1, "entries": {"a": {"files": [["x"]], "values": [], "template": 1}}}'):
        with open(layout.run_path(summary.CACHE_FILE), "w") as f:
            f.write(text)
        assert fresh(layout)["a"]["template"] == "busybox"
