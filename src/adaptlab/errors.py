"""The one exception type users see.

Anything raised as :class:`AdaptlabError` is a problem with the user's input or environment (bad file,
unreachable source, invalid flag). The CLI turns it into a one-line ``error: ...`` message and exit
code 2; every other exception is a bug and keeps its traceback.
"""


class AdaptlabError(Exception):
    """A user-facing error: the message alone must tell the user what is wrong and what to do."""
