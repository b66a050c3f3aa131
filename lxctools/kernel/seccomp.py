"""Our own small ctypes binding of libseccomp.so.2: filter contexts, rules, arches, actions, load.

libseccomp is loaded on first use, so importing pyl never needs it; a missing library becomes a
StartError when a container actually wants a filter. libseccomp functions return -errno; every
failure becomes a KernelError naming the call. Syscall numbers handed to rule functions are the
*native* arch's numbers (what ``seccomp_syscall_resolve_name`` returns): libseccomp translates
them for every other arch in the context.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass

from lxctools.errors import KernelError, StartError
from lxctools.kernel._libc import SYS_seccomp, _syscall

# Actions (seccomp.h). "kill" in a policy means KILL_PROCESS: killing one thread of a
# multi-threaded program leaves the rest running in a broken state.
SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_KILL_THREAD = 0x00000000
SCMP_ACT_KILL = SCMP_ACT_KILL_THREAD
SCMP_ACT_TRAP = 0x00030000
SCMP_ACT_NOTIFY = 0x7FC00000
SCMP_ACT_LOG = 0x7FFC0000
SCMP_ACT_ALLOW = 0x7FFF0000


def SCMP_ACT_ERRNO(code: int) -> int:  # noqa: N802 - libseccomp's macro name
    return 0x00050000 | (code & 0x0000FFFF)


def SCMP_ACT_TRACE(msg: int) -> int:  # noqa: N802
    return 0x7FF00000 | (msg & 0x0000FFFF)


# enum scmp_compare
SCMP_CMP_NE = 1
SCMP_CMP_LT = 2
SCMP_CMP_LE = 3
SCMP_CMP_EQ = 4
SCMP_CMP_GE = 5
SCMP_CMP_GT = 6
SCMP_CMP_MASKED_EQ = 7

# enum scmp_filter_attr
SCMP_FLTATR_ACT_DEFAULT = 1
SCMP_FLTATR_ACT_BADARCH = 2
SCMP_FLTATR_CTL_NNP = 3
SCMP_FLTATR_CTL_TSYNC = 4
SCMP_FLTATR_API_TSKIP = 5
SCMP_FLTATR_CTL_LOG = 6

# Arch tokens are AUDIT_ARCH_* values (ABI-stable); keys are libseccomp's arch names.
SCMP_ARCH_NATIVE = 0
SCMP_ARCHES: dict[str, int] = {
    "x86": 0x40000003,
    "x86_64": 0xC000003E,
    "x32": 0x4000003E,
    "arm": 0x40000028,
    "aarch64": 0xC00000B7,
    "mips": 0x00000008,
    "mips64": 0x80000008,
    "mips64n32": 0xA0000008,
    "mipsel": 0x40000008,
    "mipsel64": 0xC0000008,
    "mipsel64n32": 0xE0000008,
    "ppc": 0x00000014,
    "ppc64": 0x80000015,
    "ppc64le": 0xC0000015,
    "s390": 0x00000016,
    "s390x": 0x80000016,
    "riscv64": 0xC00000F3,
}
ARCH_NAMES: dict[int, str] = {token: name for name, token in SCMP_ARCHES.items()}

# Which other ABIs a native kernel also runs; their syscalls must be filtered too, or a
# 32-bit binary (or int 0x80 from a 64-bit one) would walk around the rules.
COMPAT_ARCHES: dict[str, tuple[str, ...]] = {
    "x86_64": ("x86", "x32"),
    "aarch64": ("arm",),
    "ppc64": ("ppc",),
    "mips64": ("mips", "mips64n32"),
    "mipsel64": ("mipsel", "mipsel64n32"),
    "s390x": ("s390",),
}

NR_SCMP_ERROR = -1  # __NR_SCMP_ERROR: name unknown on that arch


class scmp_arg_cmp(ctypes.Structure):  # noqa: N801 - the C struct's name
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


@dataclass(frozen=True)
class ArgCmp:
    """One argument comparison; for SCMP_CMP_MASKED_EQ ``datum_a`` is the mask, ``datum_b`` the value."""

    arg: int
    op: int
    datum_a: int
    datum_b: int = 0


_lib: ctypes.CDLL | None = None


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is not None:
        return _lib
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as exc:
        raise StartError("seccomp: cannot load libseccomp.so.2",
                         hint="install libseccomp2, or set lxc.seccomp.profile = none") from exc
    ctx = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctx
    lib.seccomp_reset.argtypes = [ctx, ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctx]
    lib.seccomp_release.restype = None
    lib.seccomp_merge.argtypes = [ctx, ctx]
    lib.seccomp_arch_native.argtypes = []
    lib.seccomp_arch_native.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    for name in ("seccomp_arch_exist", "seccomp_arch_add", "seccomp_arch_remove"):
        getattr(lib, name).argtypes = [ctx, ctypes.c_uint32]
    lib.seccomp_attr_set.argtypes = [ctx, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_attr_get.argtypes = [ctx, ctypes.c_int, ctypes.POINTER(ctypes.c_uint32)]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    for name in ("seccomp_rule_add_array", "seccomp_rule_add_exact_array"):
        getattr(lib, name).argtypes = [ctx, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                       ctypes.POINTER(scmp_arg_cmp)]
    lib.seccomp_export_pfc.argtypes = [ctx, ctypes.c_int]
    lib.seccomp_export_bpf.argtypes = [ctx, ctypes.c_int]
    _lib = lib
    return lib


def _check(rc: int, what: str) -> int:
    if rc < 0:
        raise KernelError(f"{what}: {os.strerror(-rc)}", -rc)
    return rc


def available() -> bool:
    """True if libseccomp can be loaded (tests skip on False)."""
    try:
        _library()
    except StartError:
        return False
    return True


def seccomp_init(default_action: int) -> int:
    handle = _library().seccomp_init(default_action)
    if not handle:
        raise KernelError("seccomp_init: cannot create filter context", ctypes.get_errno())
    return handle


def seccomp_reset(ctx: int, default_action: int) -> None:
    _check(_library().seccomp_reset(ctx, default_action), "seccomp_reset")


def seccomp_release(ctx: int) -> None:
    _library().seccomp_release(ctx)


def seccomp_merge(dst: int, src: int) -> None:
    """Merge SRC into DST; on success SRC belongs to DST (do not release it)."""
    _check(_library().seccomp_merge(dst, src), "seccomp_merge")


def seccomp_arch_native() -> int:
    return _library().seccomp_arch_native()


def seccomp_arch_resolve_name(name: str) -> int:
    return _library().seccomp_arch_resolve_name(name.encode())


def seccomp_arch_exist(ctx: int, arch: int) -> bool:
    rc = _library().seccomp_arch_exist(ctx, arch)
    if rc == -17:  # -EEXIST means "not present" here
        return False
    _check(rc, "seccomp_arch_exist")
    return True


def seccomp_arch_add(ctx: int, arch: int) -> None:
    _check(_library().seccomp_arch_add(ctx, arch), f"seccomp_arch_add({ARCH_NAMES.get(arch, arch)})")


def seccomp_arch_remove(ctx: int, arch: int) -> None:
    _check(_library().seccomp_arch_remove(ctx, arch), f"seccomp_arch_remove({ARCH_NAMES.get(arch, arch)})")


def seccomp_attr_set(ctx: int, attr: int, value: int) -> None:
    _check(_library().seccomp_attr_set(ctx, attr, value), f"seccomp_attr_set({attr})")


def seccomp_attr_get(ctx: int, attr: int) -> int:
    value = ctypes.c_uint32()
    _check(_library().seccomp_attr_get(ctx, attr, ctypes.byref(value)), f"seccomp_attr_get({attr})")
    return value.value


def seccomp_syscall_resolve_name(name: str) -> int:
    """Native number of NAME; NR_SCMP_ERROR if unknown, another negative for a pseudo syscall."""
    return _library().seccomp_syscall_resolve_name(name.encode())


def seccomp_syscall_resolve_name_arch(arch: int, name: str) -> int:
    return _library().seccomp_syscall_resolve_name_arch(arch, name.encode())


def _cmp_array(args: Sequence[ArgCmp]) -> ctypes.Array[scmp_arg_cmp]:
    array = (scmp_arg_cmp * max(len(args), 1))()
    for slot, cmp in zip(array, args):
        slot.arg, slot.op, slot.datum_a, slot.datum_b = cmp.arg, cmp.op, cmp.datum_a, cmp.datum_b
    return array


def seccomp_rule_add_array(ctx: int, action: int, syscall: int, args: Sequence[ArgCmp] = ()) -> None:
    rc = _library().seccomp_rule_add_array(ctx, action, syscall, len(args), _cmp_array(args))
    _check(rc, f"seccomp_rule_add({syscall})")


def seccomp_rule_add_exact_array(ctx: int, action: int, syscall: int, args: Sequence[ArgCmp] = ()) -> None:
    rc = _library().seccomp_rule_add_exact_array(ctx, action, syscall, len(args), _cmp_array(args))
    _check(rc, f"seccomp_rule_add_exact({syscall})")


def seccomp_export_pfc(ctx: int, fd: int) -> None:
    """Write the filter as human-readable pseudo code to FD (tests read it back)."""
    _check(_library().seccomp_export_pfc(ctx, fd), "seccomp_export_pfc")


def seccomp_export_bpf(ctx: int, fd: int) -> None:
    _check(_library().seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")


# ----------------------------------------------------------------- precompiled programs --
# libseccomp's seccomp_load builds the BPF program anew: ~1 ms of rule additions and code
# generation in the container's init, a fork of the supervisor that pays copy-on-write faults
# for every page libseccomp touches. pyl has libseccomp compile (rules, arches, code) and
# export the program, once per policy in the supervisor, and installs those bytes itself with
# the call seccomp_load ends in; seccomp_load is not used.

SECCOMP_SET_MODE_FILTER = 1
_BPF_INSTRUCTION = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k
_BPF_MAXINSNS = 4096


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _exported(ctx: int, export) -> bytes:  # noqa: ANN001 - seccomp_export_bpf or _pfc
    fd = os.memfd_create("pyl-seccomp", os.MFD_CLOEXEC)  # no size limit, unlike a pipe's
    try:
        export(ctx, fd)
        return os.pread(fd, os.lseek(fd, 0, os.SEEK_END), 0)
    finally:
        os.close(fd)


def export_program(ctx: int) -> bytes:
    """The classic BPF program seccomp_load would install for CTX."""
    return _exported(ctx, seccomp_export_bpf)


def export_pseudo_code(ctx: int) -> str:
    """CTX's filter as libseccomp's human-readable pseudo code."""
    return _exported(ctx, seccomp_export_pfc).decode()


def load_program(program: bytes) -> None:
    """Install PROGRAM (export_program's bytes) on the calling thread: seccomp(2) with
    SECCOMP_SET_MODE_FILTER and no flags, as seccomp_load does for a context whose TSYNC, LOG
    and SSB attributes are off (pyl's). No notify listener is asked for: a notify rule's
    syscall then fails with ENOSYS, as it does once the listener fd is closed. Needs
    CAP_SYS_ADMIN or no_new_privs."""
    count, rest = divmod(len(program), _BPF_INSTRUCTION)
    if rest or not 0 < count <= _BPF_MAXINSNS:
        raise KernelError(f"seccomp: not a BPF program ({len(program)} bytes)", errno.EINVAL)
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(count, ctypes.addressof(buffer))
    if _syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, ctypes.byref(fprog)) == -1:
        code = ctypes.get_errno()
        hint = "loading a filter without no_new_privs needs CAP_SYS_ADMIN" if code in (errno.EPERM, errno.EACCES) else None
        raise KernelError(f"seccomp(SET_MODE_FILTER): {os.strerror(code)}", code, hint=hint)
