"""The dev server ``kartu up`` starts: the settings that make a local stack fast (README,
"Speed") are on its command line."""

from __future__ import annotations

from pathlib import Path

from starter.devserver import DevServer


def test_a_file_backed_server_uses_the_write_ahead_log_synced_at_checkpoints(tmp_path: Path):
    command = DevServer(db_path=tmp_path / "temporal.sqlite", port=7233).command()
    pragmas = [command[i + 1] for i, arg in enumerate(command) if arg == "--sqlite-pragma"]
    assert pragmas == ["journal_mode=wal", "synchronous=normal"]
    assert command[command.index("--db-filename") + 1] == str(tmp_path / "temporal.sqlite")


def test_the_transfer_queue_is_read_without_the_default_throttle():
    command = DevServer(port=7233).command()
    values = [command[i + 1] for i, arg in enumerate(command) if arg == "--dynamic-config-value"]
    assert "history.transferProcessorMaxPollRPS=1000" in values
    assert "--sqlite-pragma" not in command  # in memory: no file, no pragma
