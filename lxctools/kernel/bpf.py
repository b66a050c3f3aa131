"""bpf(2) for cgroup-v2 device control: assemble a BPF_PROG_TYPE_CGROUP_DEVICE program from
device rules, BPF_PROG_LOAD it and BPF_PROG_ATTACH it to a cgroup directory.

The program sees struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } where
access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*; it returns 1 to allow, 0 to deny.
Rule semantics follow the v1 devices controller: an allow rule matches when every requested access
is in the rule (match_exception); a deny rule when any is (match_exception_partial).
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from collections.abc import Sequence

from lxctools.errors import KernelError
from lxctools.kernel._libc import SYS_bpf, syscall

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2  # programs of ancestors keep running too: nesting can only restrict further

BPF_DEVCG_ACC_MKNOD = 1
BPF_DEVCG_ACC_READ = 2
BPF_DEVCG_ACC_WRITE = 4
BPF_DEVCG_DEV_BLOCK = 1
BPF_DEVCG_DEV_CHAR = 2

_ACCESS = {"m": BPF_DEVCG_ACC_MKNOD, "r": BPF_DEVCG_ACC_READ, "w": BPF_DEVCG_ACC_WRITE}
_DEVTYPE = {"b": BPF_DEVCG_DEV_BLOCK, "c": BPF_DEVCG_DEV_CHAR}
_ALL = 7

# Opcodes (linux/bpf_common.h, linux/bpf.h).
_LDX_W_MEM = 0x61   # BPF_LDX | BPF_W | BPF_MEM
_AND32_K = 0x54     # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74     # BPF_ALU | BPF_RSH | BPF_K
_MOV32_X = 0xBC     # BPF_ALU | BPF_MOV | BPF_X
_MOV64_K = 0xB7     # BPF_ALU64 | BPF_MOV | BPF_K
_JEQ_K = 0x15       # BPF_JMP | BPF_JEQ | BPF_K
_JNE_K = 0x55       # BPF_JMP | BPF_JNE | BPF_K
_EXIT = 0x95        # BPF_JMP | BPF_EXIT

# (type "a"/"b"/"c", major or None for *, minor or None, access subset of "rwm", allow)
DeviceRuleTuple = tuple[str, int | None, int | None, str, bool]


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


_NEXT = object()  # placeholder: jump to the next rule's first instruction


def compile_device_program(default_allow: bool, rules: Sequence[DeviceRuleTuple]) -> bytes:
    """Instructions (8 bytes each) checking ``rules`` in order, then returning the default."""
    prog = [
        _insn(_LDX_W_MEM, dst=2, src=1, off=0), _insn(_AND32_K, dst=2, imm=0xFFFF),  # r2 = type
        _insn(_LDX_W_MEM, dst=3, src=1, off=0), _insn(_RSH32_K, dst=3, imm=16),      # r3 = access
        _insn(_LDX_W_MEM, dst=4, src=1, off=4),                                      # r4 = major
        _insn(_LDX_W_MEM, dst=5, src=1, off=8),                                      # r5 = minor
    ]
    for dtype, major, minor, access, allow in rules:
        acc = sum(_ACCESS[c] for c in set(access))
        block: list[object] = []
        if dtype != "a":
            block.append((_JNE_K, 2, _DEVTYPE[dtype]))
        if allow and acc != _ALL:
            block += [_insn(_MOV32_X, dst=1, src=3), _insn(_AND32_K, dst=1, imm=~acc & _ALL), (_JNE_K, 1, 0)]
        elif not allow and acc != _ALL:
            block += [_insn(_MOV32_X, dst=1, src=3), _insn(_AND32_K, dst=1, imm=acc), (_JEQ_K, 1, 0)]
        if major is not None:
            block.append((_JNE_K, 4, major))
        if minor is not None:
            block.append((_JNE_K, 5, minor))
        block += [_insn(_MOV64_K, dst=0, imm=int(allow)), _insn(_EXIT)]
        for i, item in enumerate(block):
            if isinstance(item, tuple):  # conditional jump past the end of this block
                code, reg, imm = item
                block[i] = _insn(code, dst=reg, off=len(block) - i - 1, imm=imm)
        prog += block  # type: ignore[arg-type]
    prog += [_insn(_MOV64_K, dst=0, imm=int(default_allow)), _insn(_EXIT)]
    return b"".join(prog)  # type: ignore[arg-type]


def _bpf(cmd: int, attr: ctypes.Array, what: str) -> int:
    return syscall(SYS_bpf, ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(len(attr)), what=what)


def _prog_load_attr(prog_type: int, code: ctypes.Array, lic: ctypes.Array, log: ctypes.Array | None) -> ctypes.Array:
    attr = ctypes.create_string_buffer(128)  # larger than the kernel's union is fine: tail is zero
    struct.pack_into("<IIQQIIQ", attr, 0, prog_type, len(code) // 8, ctypes.addressof(code),
                     ctypes.addressof(lic), 1 if log is not None else 0, len(log) if log is not None else 0,
                     ctypes.addressof(log) if log is not None else 0)
    return attr


def bpf_prog_load(prog_type: int, insns: bytes, *, license: bytes = b"GPL") -> int:
    """BPF_PROG_LOAD; returns the program fd. A verifier rejection is retried once with the
    verifier log on, so the error names the reason."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license)
    try:
        return _bpf(BPF_PROG_LOAD, _prog_load_attr(prog_type, code, lic, None), "bpf(BPF_PROG_LOAD)")
    except KernelError as e:
        if e.errno not in (errno.EINVAL, errno.EACCES):
            raise
        log = ctypes.create_string_buffer(65536)
        try:
            return _bpf(BPF_PROG_LOAD, _prog_load_attr(prog_type, code, lic, log), "bpf(BPF_PROG_LOAD)")
        except KernelError as e2:
            last = log.value.decode(errors="replace").strip().splitlines()[-1:]
            raise KernelError(f"{e2.message} (verifier: {'; '.join(last) or 'no log'})", e2.errno) from e2


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIII", attr, 0, target_fd, prog_fd, attach_type, flags)
    _bpf(BPF_PROG_ATTACH, attr, "bpf(BPF_PROG_ATTACH)")


def bpf_prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIII", attr, 0, target_fd, prog_fd, attach_type, 0)
    _bpf(BPF_PROG_DETACH, attr, "bpf(BPF_PROG_DETACH)")


def attach_device_program(cgroup_dir: str, default_allow: bool, rules: Sequence[DeviceRuleTuple]) -> None:
    """Compile, load and attach a device program to ``cgroup_dir`` (BPF_F_ALLOW_MULTI).

    The attachment lives as long as the cgroup, so both fds are closed again here.
    """
    insns = compile_device_program(default_allow, rules)
    cg_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        prog_fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, insns)
        try:
            bpf_prog_attach(cg_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        finally:
            os.close(prog_fd)
    finally:
        os.close(cg_fd)


def bpf_prog_query(target_fd: int, attach_type: int) -> list[int]:
    """BPF_PROG_QUERY: the ids of the programs attached to TARGET itself (not inherited ones)."""
    ids = (ctypes.c_uint32 * 64)()
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIIIQI", attr, 0, target_fd, attach_type, 0, 0, ctypes.addressof(ids), len(ids))
    _bpf(BPF_PROG_QUERY, attr, "bpf(BPF_PROG_QUERY)")
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:min(count, len(ids))])


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr, "bpf(BPF_PROG_GET_FD_BY_ID)")


def replace_device_program(cgroup_dir: str, default_allow: bool, rules: Sequence[DeviceRuleTuple]) -> None:
    """Put a new device program in place of those attached to ``cgroup_dir`` (pyl-device on a
    running container). The new one is attached first, then the old ones detached: with several
    attached, an access must pass every one of them, so at no moment is more allowed than the
    old or the new rules allow (detaching first would leave the container unrestricted)."""
    insns = compile_device_program(default_allow, rules)
    cg_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = bpf_prog_query(cg_fd, BPF_CGROUP_DEVICE)
        prog_fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, insns)
        try:
            bpf_prog_attach(cg_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        finally:
            os.close(prog_fd)
        for prog_id in old:
            fd = bpf_prog_get_fd_by_id(prog_id)
            try:
                bpf_prog_detach(cg_fd, fd, BPF_CGROUP_DEVICE)
            finally:
                os.close(fd)
    finally:
        os.close(cg_fd)
