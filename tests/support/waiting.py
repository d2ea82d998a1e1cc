"""The one way tests wait: ask an API or the engine until the answer is right, within a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    interval: float = 0.2,
    what: str | Callable[[], str] = "",
    retry_on: tuple[type[BaseException], ...] = (Exception,),
) -> Any:
    """Call ``predicate`` until it returns something true; return that, or raise TimeoutError.

    An exception of a type in ``retry_on`` counts as "not yet" (a part that is starting
    or restarting answers with errors for a while); any other ends the wait at once,
    so a predicate can fail fast when what it waits for can no longer happen.
    ``what`` names the condition in the timeout message; a callable is asked only then
    (for example for a log tail).
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except retry_on as err:
            last_error = err
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    described = what() if callable(what) else what
    raise TimeoutError(
        f"{described or predicate!r} not true after {timeout} s (last error: {last_error})"
    )
