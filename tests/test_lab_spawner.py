"""The lifecycle's pure parts: how often a starting lab is asked whether it is ready."""

from __future__ import annotations

from labhub.lab_spawner import READINESS_CAP, readiness_interval


def test_one_lab_is_polled_often_a_burst_less_often_never_rarer_than_the_cap():
    assert readiness_interval(0) == readiness_interval(1) == 0.02
    assert readiness_interval(10) == 0.2
    assert readiness_interval(50) == readiness_interval(500) == READINESS_CAP
