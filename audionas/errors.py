"""User-facing errors: one line naming the file or field, exit code 2, never a traceback."""


class UserError(Exception):
    """A mistake in the user's input (file, flag, config field); printed as one line, exit code 2."""

    exit_code = 2

    def __init__(self, *args):
        # torch re-raises a DataLoader worker's exception as type(e)("Caught UserError in DataLoader worker
        # process N.\nOriginal Traceback ... audionas.errors.UserError: <line>"): keep the line only.
        text = args[0] if len(args) == 1 and isinstance(args[0], str) else ""
        if text.startswith(f"Caught {type(self).__name__} ") and "\nOriginal Traceback" in text:
            args = (text.rstrip().rsplit("\n", 1)[-1].split(": ", 1)[-1],)
        super().__init__(*args)


class ReadWarning(UserWarning):
    """A warning about a file read while a run trains: under torchrun the rank that reads it says it (other
    warnings come from rank 0 alone, as every rank builds the same data and model)."""
