"""The two exceptions ``core`` raises on purpose.

Anything else escaping ``core`` is a bug and keeps its traceback.
"""


class UserInputError(ValueError):
    """A mistake in the user's input: a bad file or parameter.

    The message names the parameter (as the Processing algorithm calls it) and says
    how to fix it; the provider shows it as a ``QgsProcessingException``.
    """


class Cancelled(Exception):  # noqa: N818 (reads better than CancelledError here)
    """The user cancelled a long run; outputs have been cleaned up."""
