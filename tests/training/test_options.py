"""Option groups: a command declares a group once and gets its options as one dataclass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from typer.testing import CliRunner

from training.options import SourceOptions, option_group


@dataclass(frozen=True)
class Extra:
    colour: Annotated[str, typer.Option(help="A colour.")] = "red"
    size: Annotated[int, typer.Option(min=1, help="A size.")] = 3


def test_a_group_adds_its_options_and_hands_them_over_as_one_argument() -> None:
    app, seen = typer.Typer(), []

    @app.command()
    @option_group(Extra, "extra")
    def run(extra: Extra, name: Annotated[str, typer.Option()] = "x") -> None:
        seen.append((extra, name))

    result = CliRunner().invoke(app, ["--colour", "blue", "--name", "y"])
    assert result.exit_code == 0, result.output
    assert seen == [(Extra(colour="blue", size=3), "y")]
    assert CliRunner().invoke(app, ["--size", "0"]).exit_code == 2  # the field's own bounds hold


def test_train_inspect_and_sweep_share_every_source_option() -> None:
    from training.cli import app

    runner = CliRunner()
    flags = {"--events", "--items", "--items-map", "--preset", "--map", "--event-type", "--event-map",
             "--cancel-prefix", "--non-product", "--timezone"}  # fmt: skip
    assert len(flags) == len(SourceOptions.__dataclass_fields__) - 1  # and --timestamp-format
    for command in ("train", "inspect", "sweep"):
        text = runner.invoke(app, [command, "--help"], terminal_width=200).output
        assert all(flag in text for flag in flags), (command, text)
