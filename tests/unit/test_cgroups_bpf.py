"""The cgroup device BPF program, run through a tiny interpreter of the opcodes it uses, so the
verdict for each (type, major, minor, access) is checked without loading anything."""

from __future__ import annotations

import struct

import pytest

from lxctools.kernel import bpf
from lxctools.runtime.cgroups import DEFAULT_DEVICE_POLICY, build_policy

R, W, M = bpf.BPF_DEVCG_ACC_READ, bpf.BPF_DEVCG_ACC_WRITE, bpf.BPF_DEVCG_ACC_MKNOD
CHR, BLK = bpf.BPF_DEVCG_DEV_CHAR, bpf.BPF_DEVCG_DEV_BLOCK


def run(prog: bytes, devtype: int, major: int, minor: int, access: int) -> int:
    ctx = struct.pack("<III", (access << 16) | devtype, major, minor)
    regs = [0] * 11
    pc = 0
    insns = [struct.unpack_from("<BBhi", prog, i) for i in range(0, len(prog), 8)]
    for _ in range(10_000):
        code, regbyte, off, imm = insns[pc]
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        u32 = imm & 0xFFFFFFFF
        if code == 0x61:
            assert src == 1, "only ctx loads"
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif code == 0x54:
            regs[dst] = regs[dst] & u32
        elif code == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif code == 0xBC:
            regs[dst] = regs[src] & 0xFFFFFFFF
        elif code == 0xB7:
            regs[dst] = imm
        elif code == 0x55:
            pc += off if regs[dst] != (imm & 0xFFFFFFFFFFFFFFFF) else 0
        elif code == 0x15:
            pc += off if regs[dst] == (imm & 0xFFFFFFFFFFFFFFFF) else 0
        elif code == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("no exit")


def compile_policy(policy) -> bytes:
    return bpf.compile_device_program(
        policy.default_allow, [(r.type, r.major, r.minor, r.access, r.allow) for r in policy.rules])


def test_default_allow_list():
    prog = compile_policy(DEFAULT_DEVICE_POLICY)
    assert run(prog, CHR, 1, 3, R | W) == 1           # /dev/null
    assert run(prog, CHR, 136, 7, R) == 1             # /dev/pts/7
    assert run(prog, CHR, 10, 229, W) == 1            # fuse
    assert run(prog, CHR, 4, 1, M) == 1               # mknod of any char device
    assert run(prog, BLK, 8, 0, M) == 1
    assert run(prog, BLK, 8, 0, R) == 0               # but no block device access
    assert run(prog, CHR, 4, 1, R | W) == 0           # /dev/tty1
    assert run(prog, CHR, 10, 200, R) == 0            # tun not in common.conf
    assert run(prog, CHR, 1, 3, R | M) == 1


def test_partial_access_semantics():
    # allow-list: the rule must cover every requested access
    prog = compile_policy(build_policy(["c 1:3 r"], ["a"], prefix="k"))
    assert run(prog, CHR, 1, 3, R) == 1
    assert run(prog, CHR, 1, 3, R | W) == 0
    # deny-list: any overlap denies
    prog = compile_policy(build_policy(["a"], ["c 1:3 w", "b *:* rwm"], prefix="k"))
    assert run(prog, CHR, 1, 3, R) == 1
    assert run(prog, CHR, 1, 3, R | W) == 0
    assert run(prog, BLK, 254, 0, M) == 0
    assert run(prog, CHR, 5, 0, R | W) == 1


def test_type_a_rule_matches_both_types():
    prog = bpf.compile_device_program(False, [("a", 7, None, "rw", True)])
    assert run(prog, CHR, 7, 1, R) == 1 and run(prog, BLK, 7, 2, W) == 1 and run(prog, BLK, 8, 0, R) == 0


def test_program_loads_in_kernel():
    import os

    if os.geteuid() != 0:
        pytest.skip("BPF_PROG_LOAD needs root")
    fd = bpf.bpf_prog_load(bpf.BPF_PROG_TYPE_CGROUP_DEVICE, compile_policy(DEFAULT_DEVICE_POLICY))
    os.close(fd)
