"""Container name validation: a name is one directory under the lxcpath, safe to use in paths and cgroups."""

from __future__ import annotations

from lxctools.errors import InvalidNameError

# 64 keeps "pyl.payload.NAME" and the run-dir entries well under NAME_MAX and leaves room for
# the uts name (lxc.uts.name defaults to the container name; the kernel allows 64 bytes).
MAX_NAME_LENGTH = 64
_ALLOWED_PUNCTUATION = frozenset("-_.")


def shown(text: str) -> str:
    """TEXT as an error line may carry it: a name with a newline would make the one-line error
    two (a script reading stderr line by line sees a second error), and an escape sequence
    would reach the admin's terminal. Control characters are shown escaped, as repr does."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def validate_name(name: str) -> str:
    """Return name if it is a usable container name, else raise InvalidNameError saying why."""
    if not name:
        raise InvalidNameError("container name is empty")
    # surrogateescape: the bytes of an argv that is no UTF-8 ($'\xff'), which are not a name either
    if len(name.encode(errors="surrogateescape")) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"container name '{shown(name[:20])}...' is longer than {MAX_NAME_LENGTH} bytes")
    if "/" in name:
        raise InvalidNameError(f"container name '{shown(name)}' contains '/'")
    if name in (".", ".."):
        raise InvalidNameError(f"'{name}' is not a valid container name")
    if name.startswith("-"):
        raise InvalidNameError(f"container name '{shown(name)}' starts with '-'")
    if name.startswith("."):
        raise InvalidNameError(f"container name '{shown(name)}' starts with '.' (reserved for pyl's own files)")
    for ch in name:
        if not (ch.isascii() and (ch.isalnum() or ch in _ALLOWED_PUNCTUATION)):
            raise InvalidNameError(
                f"container name '{shown(name)}' contains {repr(ch)}",
                hint="use letters, digits, '-', '_' and '.'",
            )
    return name


def is_valid_name(name: str) -> bool:
    try:
        validate_name(name)
    except InvalidNameError:
        return False
    return True


def random_text(length: int, alphabet: str) -> str:
    """LENGTH characters of ALPHABET (at most 256), uniformly from os.urandom, the source
    secrets.choice draws from, without importing secrets (random, hashlib, hmac, base64: ~2 ms
    of a first start). Bytes past the last whole multiple of the alphabet are drawn again, so
    no character is favoured."""
    import os
    size = len(alphabet)
    limit = 256 - 256 % size
    out: list[str] = []
    while len(out) < length:
        out.extend(alphabet[b % size] for b in os.urandom(2 * length) if b < limit)
    return "".join(out[:length])
