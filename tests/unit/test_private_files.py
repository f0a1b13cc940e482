"""meetgate.private_files: the one writer of secret-holding files (keys, sign-in cache, exports)."""

from __future__ import annotations

import os
import stat

import pytest

from meetgate.private_files import make_private_folder, readable_by_others, write_private_file


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    previous = os.umask(0)  # the most permissive umask: modes must not depend on it
    yield
    os.umask(previous)


def test_files_and_new_folders_are_private_whatever_the_umask(tmp_path, open_umask):
    path = tmp_path / "new" / "key.pem"
    write_private_file(path, b"secret")
    assert path.read_bytes() == b"secret"
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700
    assert not readable_by_others(path)
    assert [p.name for p in path.parent.iterdir()] == ["key.pem"]  # no temporary file left behind


def test_an_existing_file_is_replaced_only_when_asked(tmp_path):
    path = tmp_path / "key.pem"
    write_private_file(path, b"one")
    with pytest.raises(FileExistsError):
        write_private_file(path, b"two", replace=False)
    assert path.read_bytes() == b"one"
    write_private_file(path, b"two")
    assert path.read_bytes() == b"two" and _mode(path) == 0o600


def test_an_existing_folder_keeps_its_mode_unless_it_is_ours_to_tighten(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)
    make_private_folder(folder)
    assert _mode(folder) == 0o755 and readable_by_others(folder)
    make_private_folder(folder, tighten=True)
    assert _mode(folder) == 0o700
