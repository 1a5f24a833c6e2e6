"""RetryPolicy and its Attempts tracker, on a fake clock; StallWatch on a fake clock."""

from __future__ import annotations

import random
import subprocess
import sys

from imgmirror.errors import ArchiveError, NetworkError, RateLimited, VerificationError
from imgmirror.transport.retry import RetryPolicy, parse_retry_after
from imgmirror.transport.stall import StallWatch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_attempts_are_bounded_in_count():
    policy = RetryPolicy(attempts=3, backoff=1.0, deadline=1000)
    attempts = policy.start(clock=FakeClock(), rng=random.Random(1))  # noqa: S311

    first, second, third = (attempts.next_delay() for _ in range(3))

    assert first is not None
    assert 0.5 <= first <= 1.0
    assert second is not None
    assert 1.0 <= second <= 2.0
    assert third is None


def test_attempts_are_bounded_in_time_attempts_included():
    clock = FakeClock()
    attempts = RetryPolicy(attempts=100, backoff=1.0, deadline=10).start(clock=clock)

    assert attempts.next_delay() is not None
    clock.now += 9.5  # a slow attempt eats the budget
    assert attempts.next_delay() is None


def test_retry_after_wins_and_is_capped():
    attempts = RetryPolicy(max_delay=5, deadline=100).start(clock=FakeClock())

    assert attempts.next_delay(retry_after=3) == 3
    assert attempts.next_delay(retry_after=60) == 5


def test_reset_after_progress_gives_a_fresh_budget():
    clock = FakeClock()
    attempts = RetryPolicy(attempts=2, deadline=10).start(clock=clock)
    assert attempts.next_delay() is not None
    clock.now += 50
    attempts.reset()
    assert attempts.next_delay() is not None
    assert attempts.next_delay() is None


def test_after_decides_from_the_error():
    policy = RetryPolicy(attempts=3, backoff=1.0, max_delay=10, deadline=1000)
    attempts = policy.start(clock=FakeClock(), rng=random.Random(2))  # noqa: S311

    assert attempts.after(VerificationError("blob", "sha256:a", "sha256:b")) is None
    assert attempts.after(ArchiveError("not transient")) is None
    assert attempts.attempt == 1  # a refusal spends nothing
    slow_down = RateLimited("429", status=429, method="GET", url="https://r/v2/", retry_after=7)
    assert attempts.after(slow_down) == 7
    delay = attempts.after(NetworkError("connection reset"))
    assert delay is not None
    assert 1.0 <= delay <= 2.0
    assert attempts.after(NetworkError("again")) is None  # three attempts made


def test_a_resume_that_gains_little_is_a_failed_attempt():
    clock = FakeClock()
    attempts = RetryPolicy(attempts=3, deadline=1000).start(clock=clock)
    assert attempts.resumed(gained=10, minimum=30 * 1024) is not None
    assert attempts.resumed(gained=0, minimum=30 * 1024) is not None
    assert attempts.resumed(gained=29, minimum=30 * 1024) is None  # a drip cannot go on


def test_a_resume_that_gains_enough_starts_a_fresh_budget():
    clock = FakeClock()
    attempts = RetryPolicy(attempts=2, deadline=10).start(clock=clock)
    for _ in range(50):  # a big blob broken every few MiB keeps going
        clock.now += 60
        assert attempts.resumed(gained=4 << 20, minimum=30 * 1024) is not None


def test_a_restart_after_progress_keeps_the_count_but_not_the_time_spent():
    clock = FakeClock()
    attempts = RetryPolicy(attempts=3, deadline=10).start(clock=clock)
    clock.now += 500  # a long attempt that moved the blob on, then broke
    assert attempts.next_delay(progress=True) is not None
    clock.now += 500
    assert attempts.next_delay(progress=True) is not None
    assert attempts.next_delay(progress=True) is None  # three attempts in all
    fresh = RetryPolicy(attempts=3, deadline=10).start(clock=clock)
    clock.now += 500
    assert fresh.next_delay() is None  # without progress the time counts


def test_statuses_are_one_set_on_the_policy():
    policy = RetryPolicy()
    assert all(policy.should_retry_status(s) for s in (408, 429, 500, 502, 503, 504))
    assert not policy.should_retry_status(404)
    assert RetryPolicy(statuses=frozenset({418})).should_retry_status(418)


def test_retry_after_date_and_seconds():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=90.0) == 10.0
    assert parse_retry_after("soon") is None


def test_email_utils_is_not_imported_at_start_up():
    code = "import imgmirror.transport.retry, sys; print('email.utils' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_stall_watch_fails_a_drip_and_passes_a_steady_flow():
    drip = StallWatch(window=30, min_rate=1024)
    seconds = 0
    while not drip.moved(1, 1.0):  # a byte a second
        seconds += 1
    assert seconds == 29  # the first whole window of waiting ends it

    steady = StallWatch(window=30, min_rate=1024)
    for _ in range(1000):
        assert not steady.moved(2048, 1.0)
    assert steady.remaining() > 10


def test_stall_watch_slides_a_slow_tail_after_a_fast_start_is_cut_off():
    watch = StallWatch(window=30, min_rate=1024)
    assert not watch.moved(50 * 1024 * 1024, 2.0)  # a fast start earns no credit beyond a window
    waited = 0.0
    while not watch.moved(1, 0.5):
        waited += 0.5
    assert 29 <= waited <= 30 + 30 / 8  # the window slides in eighths


def test_stall_watch_remaining_bounds_a_silent_wait():
    watch = StallWatch(window=10, min_rate=100)
    assert watch.remaining() == 10  # nothing moved yet: the head must come within a window
    watch.moved(0, 4.0)
    assert watch.remaining() == 6
    watch.moved(5000, 1.0)  # a window's worth: the clock is now the last byte's
    assert watch.remaining() == 10
    watch.moved(0, 10.0)
    assert watch.stalled()


def test_replay_buffer_keeps_a_bounded_tail_by_offset():
    from imgmirror.transport.upload import ReplayBuffer

    replay = ReplayBuffer(limit=10)
    for piece in (b"aaaa", b"bbbb", b"cccc", b"dddd"):
        replay.record(piece)

    assert replay.end == 16
    assert replay.since(16) == []
    assert b"".join(replay.since(10) or []) == b"ccdddd"
    assert b"".join(replay.since(8) or []) == b"ccccdddd"
    assert replay.since(3) is None  # evicted: the caller starts the blob again
    assert replay.since(17) is None  # the registry claims more than was sent
