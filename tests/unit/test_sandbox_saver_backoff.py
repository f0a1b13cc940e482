"""The sandbox's debounced saver waits longer after slow saves (a big state must not stall the loop)."""

import asyncio

from meetgate_sandbox.persistence import DebouncedSaver, StateFile
from meetgate_sandbox.state import SandboxState


def test_next_save_waits_a_multiple_of_the_last_save(tmp_path):
    async def scenario() -> tuple[float, float]:
        saver = DebouncedSaver(StateFile(tmp_path), SandboxState(), delay=0.5)
        loop = asyncio.get_running_loop()
        saver.schedule()
        assert saver._handle is not None
        quick = saver._handle.when() - loop.time()
        saver.flush()
        saver.last_save_seconds = 2.0  # as if the last save took 2 s
        saver.schedule()
        slow = saver._handle.when() - loop.time()
        saver.flush()
        return quick, slow

    quick, slow = asyncio.run(scenario())
    assert 0.4 < quick <= 0.5
    assert 7.9 < slow <= 8.0
    assert (tmp_path / "state.json").exists()
