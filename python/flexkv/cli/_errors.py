"""The command line's own error: input the user can fix (exit code 2, message without a traceback)."""


class UsageError(Exception):
    """A bad argument or input file."""
