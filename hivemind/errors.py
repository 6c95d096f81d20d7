"""The one exception type the command line formats: input a user can fix.

Every layer raises a subclass (``ScenarioError`` for a scenario key, ``SweepError`` for a
grid, ``RunDirError`` for a run directory, ...); ``str(e)`` is one line naming the file or
the key, and ``hivemind`` prints it and exits with status 2. This module imports nothing,
so every layer may use it.
"""


class InputError(Exception):
    """Bad input, named in one line: the CLI prints ``command_line()`` and exits with status 2."""

    def command_line(self) -> str:
        """The message as the command line prints it (a subclass may name the flag a key came from)."""
        return str(self)
