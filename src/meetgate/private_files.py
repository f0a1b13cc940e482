"""Files only their owner may read: mode 0600, in folders of mode 0700, written atomically.

Keys, the kept administrator sign-in, the exported manual tests' credential and the SQLite store all
hold secrets. They are written through here so that the mode is right from the first byte (never a
world-readable moment before a ``chmod``) and a crash never leaves half a file. Imports nothing of
meetgate: every layer, the Graph client included, may use it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

PRIVATE_FILE_MODE = 0o600
PRIVATE_FOLDER_MODE = 0o700


def make_private_folder(folder: Path, *, tighten: bool = False) -> None:
    """Create ``folder`` (and its parents) with mode 0700 whatever the umask. An existing folder keeps
    its mode unless ``tighten`` (for folders that are meetgate's own, such as ``.meetgate/signin``)."""
    if folder.exists():
        if tighten and stat.S_IMODE(folder.stat().st_mode) != PRIVATE_FOLDER_MODE:
            folder.chmod(PRIVATE_FOLDER_MODE)
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=PRIVATE_FOLDER_MODE)
        folder.chmod(PRIVATE_FOLDER_MODE)  # mkdir's mode is masked by the umask
    except FileExistsError:  # another process made it meanwhile
        if tighten:
            folder.chmod(PRIVATE_FOLDER_MODE)


def readable_by_others(path: Path) -> bool:
    """True when the group or others have any permission on ``path``."""
    return bool(stat.S_IMODE(path.stat().st_mode) & 0o077)


def write_private_file(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte, atomically.

    The bytes go to a private temporary file beside ``path`` that then takes its place in one step.
    With ``replace=False`` an existing file is never clobbered: :class:`FileExistsError` is raised,
    also when the file appeared while this one was being written. The parent folder is created
    0700 when missing (an existing one keeps its mode)."""
    make_private_folder(path.parent)
    if not replace and path.exists():
        raise FileExistsError(path)
    # a name of its own per writer: two threads of one process may write the same file at once
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    try:
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # raises FileExistsError if the file appeared meanwhile
    finally:
        tmp.unlink(missing_ok=True)
