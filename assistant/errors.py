"""The one exception type whose message is shown to the user as-is.

Raise `AssistantError` at a boundary (a file, a config key, a request) with a
single line that names what was wrong and what was expected. The CLI prints it
as `error: ...` and exits with status 2; the daemon turns it into an `error`
event. Anything else escaping is a bug and keeps its traceback.
"""


class AssistantError(Exception):
    """A user-facing error with a one-line message."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class StorageError(AssistantError):
    """The preference store could not read or write (disk full, locked, I/O error, corrupt); nothing was changed."""
