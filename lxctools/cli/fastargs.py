"""Parse a command line from the same add_argument() calls argparse gets, without importing
argparse (~11 ms of every command's start-up: it pulls in `re` and `gettext`).

It understands the plain forms pyl's tools use: long and short options with a value
(`--name x`, `--name=x`, `-n x`, `-nx`), flags, append/append_const, int/float types, choices,
positionals with nargs None/'?'/'*'. Anything else -- help, --version, an unknown or malformed
option, a bad choice, a missing required option, combined short flags -- returns None, and the
driver parses with argparse instead, so every error message and the help are argparse's own.
"""

from __future__ import annotations


class Namespace:
    """What argparse.parse_args returns: attributes; without importing `types` (~0.4 ms)."""

    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class _Arg:
    __slots__ = ("flags", "dest", "action", "nargs", "const", "default", "type", "choices", "required",
                 "completer", "group")

    def __init__(self, flags: tuple[str, ...], kwargs: dict) -> None:
        self.flags = flags
        self.action = kwargs.get("action", "store")
        self.nargs = kwargs.get("nargs")
        self.const = kwargs.get("const")
        self.type = kwargs.get("type")
        self.choices = kwargs.get("choices")
        self.required = kwargs.get("required", False)
        if "dest" in kwargs:
            self.dest = kwargs["dest"]
        elif flags and flags[0].startswith("-"):
            longs = [f for f in flags if f.startswith("--")]
            self.dest = (longs[0] if longs else flags[0]).lstrip("-").replace("-", "_")
        else:
            self.dest = flags[0]
        self.group: object = None
        default = kwargs.get("default")
        if "default" not in kwargs and self.action == "store_true":
            default = False
        elif "default" not in kwargs and self.action == "store_false":
            default = True
        self.default = default

    @property
    def positional(self) -> bool:
        return not self.flags[0].startswith("-")

    @property
    def takes_value(self) -> bool:
        return self.action in ("store", "append")


class _Unsupported(Exception):
    pass


class _Group:
    def __init__(self, parser: "MiniParser") -> None:
        self.parser = parser

    def add_argument(self, *flags: str, **kwargs: object) -> _Arg:
        arg = self.parser.add_argument(*flags, **kwargs)
        arg.group = self
        return arg


class MiniParser:
    """Records add_argument() calls like argparse.ArgumentParser; parse() may decline (None)."""

    def __init__(self, **_: object) -> None:
        self.args: list[_Arg] = []
        self.defaults: dict[str, object] = {}

    # the slice of argparse's API the tools use to declare their arguments
    def add_argument(self, *flags: str, **kwargs: object) -> _Arg:
        if kwargs.get("action") not in (None, "store", "store_true", "store_false", "append", "append_const"):
            arg = _Arg(flags, {**kwargs, "action": "unsupported"})
        else:
            arg = _Arg(flags, kwargs)
        self.args.append(arg)
        return arg

    def add_argument_group(self, *_: object, **__: object) -> "MiniParser":
        return self

    def add_mutually_exclusive_group(self, *_: object, **__: object) -> "_Group":
        return _Group(self)  # conflicts are argparse's to report: a fast parse declines them

    def set_defaults(self, **kwargs: object) -> None:
        self.defaults.update(kwargs)

    def parse(self, argv: list[str]) -> Namespace | None:
        try:
            return self._parse(argv)
        except _Unsupported:
            return None

    def _parse(self, argv: list[str]) -> Namespace:
        values: dict[str, object] = {}
        for arg in self.args:
            if arg.action == "unsupported" or arg.dest in values:
                continue  # as argparse: the first declaration of a dest gives its default
            values[arg.dest] = list(arg.default) if isinstance(arg.default, list) else arg.default
        values.update(self.defaults)
        options = {flag: arg for arg in self.args if not arg.positional for flag in arg.flags}
        positionals = [a for a in self.args if a.positional]
        # argparse: once a parser has an option that looks like a negative number (ls's -1),
        # "-5" is never a value or a positional any more.
        negative_options = any(_is_number(flag) for flag in options)
        seen: set[str] = set()
        given: list[_Arg] = []
        loose: list[str] = []
        chunks, last_loose = 1, False  # argparse matches positionals per run between options
        i = 0
        while i < len(argv):
            token = argv[i]
            i += 1
            if not token.startswith("-") or token == "-" or (_is_number(token) and token not in options
                                                             and not negative_options):
                if loose and not last_loose:
                    chunks += 1
                loose.append(token)
                last_loose = True
                continue
            last_loose = False
            if token.startswith("--"):
                name, eq, inline = token.partition("=")
                arg = options.get(name)
                value = inline if eq else None
            else:
                arg = options.get(token[:2])
                value = token[2:] or None
                if value is not None and value.startswith("="):
                    raise _Unsupported(token)  # argparse reads -n=x as x: its answer, not '=x'
            if arg is None or arg.action == "unsupported":
                raise _Unsupported(token)
            if arg.dest in seen and arg.action not in ("append", "append_const"):
                raise _Unsupported(token)  # argparse would take the last one; keep its semantics simple
            seen.add(arg.dest)
            given.append(arg)
            if not arg.takes_value:
                if value is not None:
                    raise _Unsupported(token)  # -qk style or --flag=x
                if arg.nargs == "?":
                    raise _Unsupported(token)
                if arg.action == "store_true":
                    values[arg.dest] = True
                elif arg.action == "store_false":
                    values[arg.dest] = False
                else:  # append_const
                    values[arg.dest] = [*(values[arg.dest] or []), arg.const]
                continue
            if value is None:
                if arg.nargs == "?" or i >= len(argv):
                    raise _Unsupported(token)
                value = argv[i]
                i += 1
                if value.startswith("-") and (not _is_number(value) or negative_options):
                    raise _Unsupported(token)
            converted = _convert(arg, value)
            if arg.action == "append":
                values[arg.dest] = [*(values[arg.dest] or []), converted]
            else:
                values[arg.dest] = converted
        if chunks > 1 and len(positionals) > 1 or chunks > 1 and any(a.nargs == "*" for a in positionals):
            raise _Unsupported("positionals between options")
        for arg in positionals:
            if arg.nargs == "*":
                values[arg.dest] = [_convert(arg, v) for v in loose]
                loose = []
            elif arg.nargs == "?":
                if loose:
                    values[arg.dest] = _convert(arg, loose.pop(0))
            else:
                if not loose:
                    raise _Unsupported(arg.dest)
                values[arg.dest] = _convert(arg, loose.pop(0))
        if loose:
            raise _Unsupported(loose[0])
        if any(a.required and a.dest not in seen for a in self.args if not a.positional):
            raise _Unsupported("required")
        given_groups = [id(a.group) for a in given if a.group is not None]
        if len(given_groups) != len(set(given_groups)):
            raise _Unsupported("mutually exclusive options")
        return Namespace(**values)


def _convert(arg: _Arg, value: str) -> object:
    if arg.type is not None:
        try:
            value = arg.type(value)
        except (TypeError, ValueError):
            raise _Unsupported(value) from None
    if arg.choices is not None and value not in arg.choices:
        raise _Unsupported(value)
    return value


def _is_number(token: str) -> bool:
    """argparse's test for a negative number (^-\\d+$|^-\\d*\\.\\d+$), without `re`: to it '-inf',
    '-1e5' and '-nan' are options, not values (float() would take them)."""
    whole, dot, fraction = token.removeprefix("-").partition(".")
    if not token.startswith("-"):
        return False
    return whole.isdecimal() and not dot or (not whole or whole.isdecimal()) and fraction.isdecimal()
