"""The README's main job end to end, on a tiny grid: it writes the figures, tables and data it names."""

from __future__ import annotations

from pathlib import Path

from scaling.cli import main


def test_main_job_writes_its_artifacts(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["main", "--out", str(tmp_path), "--steps", "20", "--widths", "16", "32", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "hidden.0" in printed and "grows" in printed  # SP's hidden layer moves more with width
    assert list((tmp_path / "coord").glob("coord-mlp-sp-vs-mup-adam-delta.png"))
    assert list((tmp_path / "transfer").glob("transfer_mlp_*.png"))
    assert "drift" in (tmp_path / "transfer" / "transfer-mlp.txt").read_text()
