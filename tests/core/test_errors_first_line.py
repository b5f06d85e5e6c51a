"""errors.first_line: the one line of a library exception that goes into an AdaptlabError message."""

from adaptlab.errors import first_line


def test_first_non_blank_line_or_the_type_name():
    assert first_line(ValueError("\n\n  bad header in row 3  \nTraceback details\n")) == "bad header in row 3"
    assert first_line(OSError("")) == "OSError"
