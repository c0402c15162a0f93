"""The one error shape every command uses.

A `UsageError` is something the person can fix (a wrong flag, a missing file, a package not
installed). The CLI prints its message as one line and exits with code 2; nothing else in
autolab catches it.
"""


class UsageError(Exception):
    """Bad input a person can fix; the message says how, in one line."""

    exit_code = 2
