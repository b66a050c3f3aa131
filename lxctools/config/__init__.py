"""Container and system configuration.

keys        the one key table (KeySpec per key/pattern), lookup with suggestions, completion, docs
validators  value validators used by the table
lxcformat   LXC `key = value` documents (parse, edit in place, serialise)
tomlformat  pyl's TOML documents (tomlread to read, tomlkit to edit/write)
tomlread    a TOML 1.0 reader without tomllib's import cost (its results, tested against tomllib)
legacy      pre-2.1 key names, lxc-update-config rewriting
model       ContainerConfig: load/edit/save a config, expanded flat values for runtime code
convert     LXC <-> TOML conversion, legacy-key file update (pyl-update-config)
system      pyl.toml: lxcpath, default_config, default_bridge, rundir

Nothing is imported here: `import lxctools.config.system` must stay cheap.
"""


def lines(value: object) -> list[str]:
    """A flat config value as its lines: multi-valued keys come as lists, the others as one
    string; a missing key has none."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]  # type: ignore[union-attr]


# First line of the config pyl-create writes (as lxc-create does); pyl-ls's TEMPLATE column
# reads the template's name back from it.
TEMPLATE_LINE = "# Template used to create this container: "
