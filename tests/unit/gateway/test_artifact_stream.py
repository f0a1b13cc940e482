"""A recording's content on its way through the gateway: read from Graph at the reader's pace (a few
chunks held at most), in order, cut short by Graph's failure, the download ended when the reader goes
away; and the transcript formats an ``Accept`` header asks for."""

from __future__ import annotations

import asyncio

import pytest

from meetgate.gateway.artifacts import QUEUE_CHUNKS, _relay
from meetgate.gateway.problems import from_graph_error
from meetgate.gateway.routers.artifacts import _preferred
from meetgate.graph.artifact_models import ARTIFACT_PERMISSIONS, Recording
from meetgate.graph.errors import (
    ArtifactNotReady,
    CalendarMeetingRequired,
    ChannelMeetingUnsupported,
    MissingRolesError,
    TranscriptAccessDisabled,
    TransportError,
)

CHUNKS = 50


def _producer(queue: asyncio.Queue[bytes], sent: list[int], fail_at: int | None = None):
    async def produce() -> Recording:
        for i in range(CHUNKS):
            if i == fail_at:
                raise TransportError("GET …/content broke off")
            await queue.put(bytes([i]))
            sent.append(i)
        return Recording(id="r1")

    return produce()


def test_the_reader_sets_the_pace_and_gets_every_chunk_in_order():
    async def scenario() -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        sent: list[int] = []
        task = asyncio.create_task(_producer(queue, sent))
        body = _relay(queue, task)
        first = await anext(body)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(sent) <= QUEUE_CHUNKS + 2  # Graph is read no further ahead than the queue holds
        rest = [chunk async for chunk in body]
        assert first + b"".join(rest) == bytes(range(CHUNKS))

    asyncio.run(scenario())


def test_a_reader_that_goes_away_ends_the_download():
    async def scenario() -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        sent: list[int] = []
        task = asyncio.create_task(_producer(queue, sent))
        body = _relay(queue, task)
        await anext(body)
        await body.aclose()
        assert task.cancelled() and len(sent) < CHUNKS

    asyncio.run(scenario())


def test_graph_breaking_off_cuts_the_answer_short():
    async def scenario() -> None:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_CHUNKS)
        task = asyncio.create_task(_producer(queue, [], fail_at=10))
        got: list[bytes] = []

        async def read() -> None:
            async for chunk in _relay(queue, task):
                got.append(chunk)

        with pytest.raises(TransportError):
            await read()
        assert b"".join(got) == bytes(range(10))  # what came before the failure was passed on

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        (None, None),
        ("application/json", None),
        ("text/vtt", "text/vtt"),
        ("text/plain;q=0.9, application/json", "text/plain"),
        ("application/json, text/vtt", None),
        ("*/*", None),
    ],
)
def test_the_transcript_format_follows_accept(accept, wanted):
    assert _preferred(accept) == wanted


def test_artifact_errors_become_problems_with_remedies():
    assert from_graph_error(TranscriptAccessDisabled("off", status=403)).slug == "transcripts-disabled"
    assert "EnableGraphTranscriptAccess" in (from_graph_error(TranscriptAccessDisabled("off")).remedy or "")
    assert from_graph_error(CalendarMeetingRequired("no iCalUid")).slug == "calendar-meeting-required"
    channel = from_graph_error(ChannelMeetingUnsupported("channel", status=400))
    assert channel.slug == "channel-meeting-unsupported" and "channel" in channel.kind.remedy
    not_ready = from_graph_error(ArtifactNotReady("later", kind="recording"))
    assert not_ready.slug == "artifact-not-ready" and int(not_ready.headers["Retry-After"]) > 0
    role = ARTIFACT_PERMISSIONS["recordings"]
    missing = from_graph_error(MissingRolesError("no role", missing_roles=[role]))
    assert missing.slug == "artifact-permission-missing" and missing.extra["missingRoles"] == [role]
    # a missing meetings permission stays the operator's concern, unexplained to the consumer
    other = from_graph_error(MissingRolesError("no role", missing_roles=["OnlineMeetings.ReadWrite.All"]))
    assert other.slug == "graph-auth-failed"
