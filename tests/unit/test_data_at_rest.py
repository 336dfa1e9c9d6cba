"""Data at rest (issue 15): the SQLite archive, its -wal/-shm files and the folders kefu creates for them are
owner-only whatever the umask; files an older kefu left world-readable are tightened; folders the user chose are
left alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from archive.store import Archive
from infra.private_files import open_private_log, private_dir
from tests.modes import mode

pytestmark = pytest.mark.usefixtures("umask_022")  # SQLite and mkdir would otherwise make 0644/0755


def test_a_new_sqlite_archive_and_its_folders_are_owner_only(tmp_path: Path) -> None:
    db = tmp_path / "data" / "nested" / "kefu.db"
    before = mode(tmp_path)
    archive = Archive(f"sqlite:///{db}")
    archive.create_schema()
    with archive.engine.connect() as conn:  # open: WAL mode keeps the -wal and -shm files beside the database
        conn.execute(text("SELECT count(*) FROM requests"))
        files = {p.name: mode(p) for p in db.parent.iterdir()}
    archive.close()
    assert files == {"kefu.db": 0o600, "kefu.db-wal": 0o600, "kefu.db-shm": 0o600}
    assert (mode(tmp_path / "data"), mode(db.parent)) == (0o700, 0o700)
    assert mode(tmp_path) == before  # the folder that existed is not kefu's to change


def test_an_archive_left_world_readable_is_tightened_and_its_folder_kept(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # a folder the user chose: kefu does not change it
    db = tmp_path / "kefu.db"
    Archive(f"sqlite:///{db}").create_schema()
    for name in ("kefu.db", "kefu.db-wal", "kefu.db-shm"):
        path = tmp_path / name
        path.touch()
        path.chmod(0o644)  # as an older kefu (or `kefu db upgrade`) left them
    archive = Archive(f"sqlite:///{db}")
    assert {name: mode(tmp_path / name) for name in ("kefu.db", "kefu.db-wal", "kefu.db-shm")} == \
        {"kefu.db": 0o600, "kefu.db-wal": 0o600, "kefu.db-shm": 0o600}
    assert mode(tmp_path) == 0o755
    archive.close()


def test_kefu_data_folder_and_logs_are_owner_only(tmp_path: Path) -> None:
    data = tmp_path / ".data"
    data.mkdir(mode=0o755)
    assert mode(private_dir(data, tighten=True)) == 0o700
    log = data / "temporal-server.log"
    log.write_text("old\n")
    log.chmod(0o644)
    os.close(open_private_log(log))
    assert mode(log) == 0o600 and log.read_text() == "old\n"
    os.close(open_private_log(data / "new.log"))
    assert mode(data / "new.log") == 0o600
