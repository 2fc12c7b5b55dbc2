"""What the tool's exit codes mean, and the one error it raises: a message for one line on stderr."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The tool's exit codes. For commands about a migration (status, follow, report, start --follow)
    the code also says how the migration stands: 0 succeeded, 1 failed, 6 still running."""

    OK = 0
    # The migration failed, timed out or was aborted.
    MIGRATION_FAILED = 1
    # Bad arguments, or an input file that cannot be read.
    USAGE = 2
    # The request was refused before anything changed: it breaks a rule, or conflicts with AWS.
    REFUSED = 3
    # No such stack, state machine output, execution, report, or no local emulation running.
    NOT_FOUND = 4
    # AWS could not be used: no credentials or region, access denied, throttled, unreachable.
    AWS_ERROR = 5
    # The migration has not ended yet (status, report, or a follow whose deadline passed).
    RUNNING = 6
    # Interrupted (Ctrl-C): the migration itself goes on.
    INTERRUPTED = 130
    # Whoever read the output stopped reading (`mwaa-migrate plan --json | head`): 128 + SIGPIPE, the
    # code of a command the signal ended, as for any other command in the pipe.
    BROKEN_PIPE = 141


class CliError(Exception):
    """An error to report on one line, with the exit code it means."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code

    @property
    def line(self) -> str:
        return " ".join(str(self).split())
