"""The command line's one rule: domain errors are one line and exit code 2; a bug keeps its traceback."""

from __future__ import annotations

import pytest
import typer

from features.errors import InvalidParameter
from training.console import one_line_errors
from training.errors import ModelError, OptionError, TrackingError


@pytest.mark.parametrize(
    "error", [OptionError, ModelError, TrackingError, InvalidParameter, FileNotFoundError]
)
def test_a_domain_error_becomes_exit_code_2(
    error: type[Exception], capsys: pytest.CaptureFixture[str]
) -> None:
    @one_line_errors
    def command() -> None:
        raise error("--holdout must be between 0 and 1, got 7")

    with pytest.raises(typer.Exit) as exit_:
        command()
    assert exit_.value.exit_code == 2
    assert "--holdout must be between 0 and 1, got 7" in capsys.readouterr().err


@pytest.mark.parametrize("bug", [KeyError, TypeError, ValueError])
def test_a_programming_bug_keeps_its_traceback(bug: type[Exception]) -> None:
    @one_line_errors
    def command() -> None:
        raise bug("a bug")

    with pytest.raises(bug):
        command()
