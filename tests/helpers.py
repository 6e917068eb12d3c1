"""Small helpers shared by the tests."""


def assert_one_line(exc_info):
    """The message of a raised exception (pytest's ``ExceptionInfo``), checked to be one
    non-empty line; returns it."""
    msg = str(exc_info.value)
    assert msg and "\n" not in msg, msg
    return msg


def assert_failed_with_one_error(result, names: str) -> None:
    """A finished command (``subprocess.CompletedProcess``) failed with exactly one line
    of stderr that says "error" and contains ``names``, and no traceback."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and names in errors[0], result.stderr
