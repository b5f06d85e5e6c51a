"""The one exception type users see.

Anything raised as :class:`AdaptlabError` is a problem with the user's input or environment (bad file,
unreachable source, invalid flag). The CLI turns it into a one-line ``error: ...`` message and exit
code 2; every other exception is a bug and keeps its traceback.
"""


class AdaptlabError(Exception):
    """A user-facing error: the message alone must tell the user what is wrong and what to do."""


def first_line(exc: BaseException) -> str:
    """The first non-blank line of ``exc``'s message (its type name if the message is empty).

    Library exceptions often carry multi-line messages; AdaptlabError messages must stay one line.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
