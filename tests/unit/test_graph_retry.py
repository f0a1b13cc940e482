import httpx
import pytest

from meetgate.graph.retry import RetryPolicy, no_jitter, parse_retry_after

EXACT = RetryPolicy(max_attempts=5, max_total_seconds=60, base=0.5, cap=4, jitter=no_jitter)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retries_throttling_and_server_errors_when_safe(status):
    assert EXACT.decide(1, status, None, True) == 0.5


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_that_may_have_processed_the_request_are_not_retried_when_unsafe(status):
    assert EXACT.decide(1, status, None, False) is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 501])
def test_does_not_retry_other_statuses(status):
    assert EXACT.decide(1, status, None, True) is None


def test_exponential_backoff_is_capped():
    assert [EXACT.decide(n, 503, None, True) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    capped = RetryPolicy(max_attempts=10, base=1, cap=3, jitter=no_jitter, max_total_seconds=100)
    assert capped.decide(6, 503, None, True) == 3


def test_retry_after_is_honoured_even_fractional():
    assert EXACT.decide(1, 429, 0.25, True) == 0.25
    assert EXACT.decide(3, 429, 7.5, True) == 7.5


def test_attempts_are_bounded():
    assert EXACT.decide(4, 429, 1, True) == 1
    assert EXACT.decide(5, 429, 1, True) is None


def test_total_time_is_bounded():
    assert EXACT.decide(1, 429, 30, True, elapsed=29) == 30
    assert EXACT.decide(1, 429, 30, True, elapsed=31) is None


def test_unsafe_requests_retry_only_when_nothing_was_processed():
    request = httpx.Request("POST", "https://graph.test/x")
    # 429 / 503: the service did not process it -> retry is fine for any request
    assert EXACT.decide(1, 429, None, False) is not None
    assert EXACT.decide(1, 503, None, False) is not None
    # 504 and a dropped response: it may have been processed -> only when safe
    assert EXACT.decide(1, 504, None, False) is None
    assert EXACT.decide(1, httpx.ReadError("reset", request=request), None, False) is None
    assert EXACT.decide(1, httpx.ReadError("reset", request=request), None, True) == 0.5
    # a failed connect sent nothing -> always retryable
    assert EXACT.decide(1, httpx.ConnectError("refused", request=request), None, False) == 0.5


def test_jitter_is_applied_to_backoff_only():
    halving = RetryPolicy(jitter=lambda d: d / 2, base=1, cap=10, max_total_seconds=100)
    assert halving.decide(2, 503, None, True) == 1.0
    assert halving.decide(2, 503, 3.0, True) == 3.0


def test_default_jitter_stays_within_half_and_full_delay():
    policy = RetryPolicy(base=2, cap=2)
    delays = {policy.decide(1, 503, None, True) for _ in range(50)}
    assert all(1.0 <= d <= 2.0 for d in delays)
    assert len(delays) > 1


def test_parse_retry_after():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_invalid_policy_rejected():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


def test_statuses_can_be_narrowed():
    policy = RetryPolicy(jitter=no_jitter, retry_statuses=frozenset({429, 503}))
    assert policy.decide(1, 500, None, True) is None
    assert policy.decide(1, 503, None, False) == 0.5
    assert EXACT.decide(1, 500, None, True) == 0.5
