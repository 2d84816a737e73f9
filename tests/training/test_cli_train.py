"""The train command refuses input with nothing to learn from, in one line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from training.cli import app

runner = CliRunner()


def test_training_on_a_file_whose_rows_are_all_rejected_is_a_one_line_error(tmp_path: Path) -> None:
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,event_type,timestamp\n,a,view,2024-01-01\nu,,view,2024-01-01\n")
    result = runner.invoke(
        app, ["train", "--events", str(events), "--no-track", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 2
    assert "nothing to train on: 2 rows read, 0 accepted" in result.stderr
    assert "missing_user': 1" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "b").exists()


def test_training_on_a_gpu_where_there_is_none_is_a_one_line_error(tmp_path: Path) -> None:
    from training.models import gpu_available

    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,event_type,timestamp\nu,a,view,2024-01-01\nv,a,view,2024-01-01\n")
    args = ["train", "--events", str(events), "--no-track", "--out", str(tmp_path / "b"), "--device", "gpu"]
    result = runner.invoke(app, args)
    if gpu_available():  # a machine with CUDA trains there
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2
    assert "--device gpu: no CUDA GPU here" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "b").exists()
