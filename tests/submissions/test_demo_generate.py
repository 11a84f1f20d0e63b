"""`cme demo generate`: the synthetic population as submission files, with its stages shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main


def test_demo_generate_reports_its_stages_on_stderr_and_the_files_on_stdout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["demo", "generate", "--children", "300", "--seed", "4", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    files = captured.out.split()
    assert files and all(Path(name).is_file() for name in files)
    stages = captured.err.splitlines()
    assert stages[0] == "generating 300 children (seed 4)..."
    assert stages[1].startswith("generated in ") and f"writing to {tmp_path}" in stages[1]
    assert stages[2].startswith(f"{len(files)} files in ")
