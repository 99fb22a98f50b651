import os
import time
from pathlib import Path

from meterworks import inbox


def _touch(path: Path, age_seconds: float = 60) -> Path:
    path.write_text("{}\n")
    past = time.time() - age_seconds
    os.utime(path, (past, past))
    return path


def test_pending_files_skips_unsettled_hidden_partial_and_unsupported(tmp_path: Path) -> None:
    ready = _touch(tmp_path / "b.jsonl")
    gz = _touch(tmp_path / "a.csv.gz")
    _touch(tmp_path / "c.jsonl", age_seconds=0)  # still being written
    _touch(tmp_path / ".hidden.jsonl")
    _touch(tmp_path / "d.jsonl.part")
    _touch(tmp_path / "notes.txt")
    (tmp_path / "sub").mkdir()
    assert inbox.pending_files(tmp_path, settle_seconds=5) == [gz, ready]
    assert inbox.pending_files(tmp_path / "missing") == []


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    f = _touch(tmp_path / "a.jsonl")
    first = inbox.fingerprint([f])
    f.write_text('{"more": 1}\n')
    assert inbox.fingerprint([f]) != first


def test_archive_moves_files_into_batch_folder(tmp_path: Path) -> None:
    f = _touch(tmp_path / "a.jsonl")
    moved = inbox.archive([f, tmp_path / "gone.jsonl"], tmp_path / "processed", batch_id=7)
    assert moved == [tmp_path / "processed" / "batch-000007" / "a.jsonl"]
    assert not f.exists() and moved[0].exists()
