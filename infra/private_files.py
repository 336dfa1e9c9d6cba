"""Owner-only files and folders for what kefu keeps on disk: the SQLite archive, payload keys, the dev server's
state and logs under .data/ (docs/security.md, "Data at rest").

Folders kefu creates are 0700 and files 0600, whatever the umask; files left looser by an older kefu are tightened
when kefu opens them again. Secrets kefu only reads (key and token files) are checked, never changed: one that
group or others may read or write is refused with the command that fixes it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
_CHECKS_MODES = os.name == "posix"  # Windows has no group/other mode bits to check


def private_dir(path: Path, tighten: bool = False) -> Path:
    """Create path (and missing parents) owner-only. tighten: also chmod an existing folder to 0700 (only for
    kefu's own data folder; never for a folder the user chose to put a database in)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process created it first
            folder.mkdir(mode=DIR_MODE)
        _chmod(folder, DIR_MODE)  # mkdir's mode is masked by the umask
    if tighten:
        _chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create path empty and owner-only if it is missing; tighten it to 0600 if it exists looser."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    tighten_file(path)
    return path


def tighten_file(path: Path) -> None:
    """chmod 0600 a file kefu wrote when group or others may read or write it; missing or foreign files are left."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            _chmod(path, FILE_MODE)


def private_sqlite(path: Path) -> Path:
    """An owner-only SQLite database file (created empty, which SQLite reads as a new database). SQLite gives the
    -wal and -shm files it creates the database file's mode; ones an older kefu left looser are tightened."""
    private_file(path)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten_file(path.with_name(path.name + suffix))
    return path


def open_private_log(path: Path) -> int:
    """A file descriptor appending to path, created owner-only (or tightened when an older kefu created it)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    tighten_file(path)
    return fd


def loose_mode_error(path: Path, label: str) -> str | None:
    """One line naming the file, its mode and the fix when group or others may read or write path, else None.
    Raises OSError when the file cannot be looked at."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not _CHECKS_MODES or not mode & 0o077:
        return None
    return (f"{label} {path}: mode {mode:04o} lets group or others read or write it; "
            f"run `chmod 600 {shlex.quote(str(path))}`")


def _chmod(path: Path, mode: int) -> None:
    if not _CHECKS_MODES:
        return
    with contextlib.suppress(PermissionError):  # not ours (a shared folder): leave it
        if stat.S_IMODE(path.stat().st_mode) != mode and path.stat().st_uid == os.getuid():
            path.chmod(mode)
