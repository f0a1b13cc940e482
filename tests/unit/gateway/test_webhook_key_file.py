"""The webhook key file is made once, whole, even when many threads ask for it at the same moment."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from meetgate.gateway.webhooks.secret_box import SecretBox, load_or_create_key_file


def test_concurrent_first_use_gives_every_thread_the_same_whole_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "webhook.key"
    start = threading.Barrier(16)
    keys: list[str] = []
    lock = threading.Lock()

    def first_use() -> None:
        start.wait()
        key = load_or_create_key_file(path)
        with lock:
            keys.append(key)

    threads = [threading.Thread(target=first_use) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and keys[0]
    SecretBox(keys[0])  # a well-formed key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["webhook.key"]  # no temporary file left
