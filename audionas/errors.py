"""User-facing errors: one line naming the file or field, exit code 2, never a traceback."""


class UserError(Exception):
    """A mistake in the user's input (file, flag, config field); printed as one line, exit code 2."""

    exit_code = 2
