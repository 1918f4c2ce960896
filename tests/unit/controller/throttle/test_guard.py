"""The enrollment port's throttle: source keys, per-source attempts, per-subject wrong answers."""

from __future__ import annotations

import pytest

from fleetops.common.errors import RateLimited
from fleetops.controller.throttle import EnrollmentThrottle, Rate, ThrottleSettings, source_key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:10.0.0.7", "10.0.0.7"),
        ("unix:/run/x.sock", "unix:/run/x.sock"),
    ],
)
def test_source_keys(address: str, key: str) -> None:
    assert source_key(address) == key


def test_a_source_over_its_burst_is_told_when_to_come_back() -> None:
    now = [0.0]
    throttle = EnrollmentThrottle(ThrottleSettings(per_source=Rate(2, 0.25)), clock=lambda: now[0])
    throttle.admit("10.0.0.1", "registration attempts")
    throttle.admit("10.0.0.1", "registration attempts")
    with pytest.raises(RateLimited) as info:
        throttle.admit("10.0.0.1", "registration attempts")
    assert info.value.retry_after == pytest.approx(4.0)
    assert info.value.message == "too many registration attempts from 10.0.0.1; retry in 4 s"
    assert "--enroll-burst" in info.value.hint and info.value.exit_code == 6
    throttle.admit("10.0.0.2", "registration attempts")  # another address is unaffected
    now[0] = 4.0
    throttle.admit("10.0.0.1", "registration attempts")


def test_only_wrong_answers_count_against_a_subject() -> None:
    now = [0.0]
    throttle = EnrollmentThrottle(ThrottleSettings(per_subject=Rate(3, 0.1)), clock=lambda: now[0])
    for _ in range(50):  # right answers (checks without a wrong answer) never throttle
        throttle.check_subject("activation:a", "codes")
    for _ in range(3):
        throttle.wrong_answer("activation:a")
    with pytest.raises(RateLimited, match="too many wrong codes lately; retry in 10 s"):
        throttle.check_subject("activation:a", "codes")
    throttle.check_subject("activation:b", "codes")
