"""The only ctypes user in pyl: thin wrappers over Linux syscalls, kernel names and argument order.

Each submodule binds its prototypes once at import. Failures raise
lxctools.errors.KernelError (errno kept) through ``_libc.check``.
"""
