"""Small helpers shared by the tests."""


def assert_one_line(exc_info):
    """The message of a raised exception (pytest's ``ExceptionInfo``), checked to be one
    non-empty line; returns it."""
    msg = str(exc_info.value)
    assert msg and "\n" not in msg, msg
    return msg
