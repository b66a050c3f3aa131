"""The one exception tree of pyl, and the exit codes it maps to.

Every failure a user can cause is a PylError subclass carrying its exit code and
an optional hint; the CLI prints ``pyl-TOOL: NAME: message`` and exits with the code.
Anything else reaching the CLI is a bug (exit 70, traceback only with --debug).
"""

from __future__ import annotations

import errno as _errno

# OSErrors that are README's "permission denied" (77): a file or folder the user may not
# write, a file made immutable. A read-only file system is the host's condition (1), as a
# full disk is.
PERMISSION_ERRNOS = frozenset({_errno.EACCES, _errno.EPERM})


class ExitCode:
    """Documented exit codes (README "Exit codes"). Stable: cron jobs rely on them.
    Plain ints, not an IntEnum: `enum` costs every command ~4 ms of start-up."""

    OK = 0
    FAILURE = 1          # generic failure (LXC's only code)
    NOT_RUNNING = 2      # pyl-stop on a container that is not running (as lxc-stop)
    USAGE = 64           # bad command line (EX_USAGE)
    INVALID_NAME = 65    # container name rejected (EX_DATAERR)
    NOT_FOUND = 66       # container or file does not exist (EX_NOINPUT)
    WRONG_STATE = 67     # operation not allowed in the container's current state
    ALREADY_EXISTS = 68  # create/copy onto an existing name
    CONFIG = 78          # malformed config file or bad key/value (EX_CONFIG)
    PERMISSION = 77      # not permitted (EX_NOPERM)
    BUSY = 75            # another operation holds the container's lock (EX_TEMPFAIL)
    TIMEOUT = 76         # wait/stop timed out
    BUG = 70             # internal error (EX_SOFTWARE)
    START_FAILED = 71    # container failed to start (setup error inside the start choreography)


class PylError(Exception):
    """Base of every error pyl reports to a user."""

    exit_code: int = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message

    def prefixed(self, what: str) -> PylError:
        """This error, said of WHAT ("clone c2: cannot destroy: ..."); the same object, so its
        class, exit code, hint and cause stay."""
        self.message = f"{what}: {self.message}"
        self.args = (self.message,)
        return self

    def __reduce__(self):
        # Errors cross processes (the netlink worker, netns helpers) pickled; subclasses take
        # other constructor arguments (KernelError's errno), so rebuild from the attributes.
        return _rebuild_error, (type(self), self.message), dict(self.__dict__)


def _rebuild_error(cls: type, message: str) -> PylError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    return err


class UsageError(PylError):
    exit_code = ExitCode.USAGE


class InvalidNameError(PylError):
    exit_code = ExitCode.INVALID_NAME


class NotFoundError(PylError):
    exit_code = ExitCode.NOT_FOUND


class WrongStateError(PylError):
    exit_code = ExitCode.WRONG_STATE


class NotRunningError(WrongStateError):
    exit_code = ExitCode.NOT_RUNNING


class AlreadyExistsError(PylError):
    exit_code = ExitCode.ALREADY_EXISTS


class ConfigError(PylError):
    """A config file or value is wrong; message names the file and line (or the key)."""

    exit_code = ExitCode.CONFIG


class PermissionDeniedError(PylError):
    exit_code = ExitCode.PERMISSION


class BusyError(PylError):
    exit_code = ExitCode.BUSY


class TimeoutError_(PylError):
    exit_code = ExitCode.TIMEOUT


class StartError(PylError):
    exit_code = ExitCode.START_FAILED


class KernelError(PylError):
    """A syscall failed; carries errno. Raised by lxctools.kernel wrappers."""

    def __init__(self, message: str, errno: int, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.errno = errno


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP while pyl-create or pyl-copy builds a container (`timeout` in a cron
    job, a closed ssh session): raised like Ctrl-C's KeyboardInterrupt, so the cleanup that
    runs for Ctrl-C runs too (the template killed, the half-made folder removed) instead of
    the process dying with both left behind. The driver exits 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def file_error(err: OSError, what: str) -> PylError:
    """A file named on the command line (a pid file, a log) that cannot be opened, as the one
    line and exit code README gives it: missing folder 66, permission 77, anything else 1 (a
    read-only file system among them, as for every other command)."""
    text = f"cannot open {what}: {err.strerror}"
    if err.errno in (_errno.ENOENT, _errno.ENOTDIR):
        return NotFoundError(text)
    if err.errno in PERMISSION_ERRNOS:
        return PermissionDeniedError(text)
    return PylError(text)
