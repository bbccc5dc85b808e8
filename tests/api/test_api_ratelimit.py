"""The token bucket and its headers."""

from arbotd_api.ratelimit import RateLimiter, TokenBucket


def test_bucket_allows_burst_then_refuses_with_retry_after():
    bucket = TokenBucket(per_minute=60, burst=3, now=1000.0)
    decisions = [bucket.take(1000.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.retry_after == 1
    assert refused.headers()["Retry-After"] == "1"
    # Full again after 3 tokens at 1 a second.
    assert refused.reset == 1003


def test_bucket_refills_at_the_rate_and_never_above_burst():
    bucket = TokenBucket(per_minute=60, burst=2, now=0.0)
    bucket.take(0.0)
    bucket.take(0.0)
    assert bucket.take(0.5).allowed is False
    assert bucket.take(1.0).allowed is True
    assert bucket.take(100.0).remaining == 1  # capped at burst 2, minus this one


def test_headers_exactly():
    decision = TokenBucket(per_minute=1000, burst=50, now=10.0).take(10.0)
    assert decision.headers() == {
        "X-RateLimit-Limit": "1000",
        "X-RateLimit-Remaining": "49",
        "X-RateLimit-Reset": "11",  # ceil(10 + 1 / (1000 / 60))
        "X-RateLimit-Type": "requests",
    }


def test_limiter_keys_by_client_and_kind_and_forgets_full_buckets():
    now = [0.0]
    limiter = RateLimiter({"read": (60, 1), "write": (60, 1)}, clock=lambda: now[0])
    assert limiter.take("a", "read").allowed
    assert not limiter.take("a", "read").allowed
    assert limiter.take("a", "write").allowed
    assert limiter.take("b", "read").allowed
    now[0] = 1000.0
    for _ in range(RateLimiter._SWEEP_EVERY):
        limiter.take("c", "write")
    assert ("a", "read") not in limiter._buckets


def test_reconfigure_resets():
    limiter = RateLimiter({"read": (60, 1)}, clock=lambda: 0.0)
    limiter.take("a", "read")
    limiter.configure({"read": (120, 5)})
    assert limiter.take("a", "read").remaining == 4
