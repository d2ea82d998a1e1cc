"""One spawner's side of usage recording: what it tells the hub's recorder when its lab starts, stops or dies."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from labhub.usage import metrics, reasons
from labhub.usage.recorder import UsageRecorder
from labhub.usage.store import LabRecord


@dataclass(frozen=True)
class LabFacts:
    """What a started lab is, as plain values the spawner already holds."""

    user: str
    server_name: str
    groups: tuple[str, ...]
    profile: str
    image: str
    gpus: tuple[str, ...]
    gpu_count: int
    engine: str
    object_id: str
    warm: bool


class LabUsage:
    """The record key of one spawner's running lab, and the calls that keep its record.

    Nothing here waits for the records file: a start is a dictionary entry and a queued
    write (see :meth:`UsageRecorder.lab_started`), so a spawn is not held up.
    """

    def __init__(self, recorder: UsageRecorder | None):
        self.recorder = recorder
        #: the running lab's record; kept in the spawner's state so a restarted hub closes it
        self.key = ""

    def started(self, facts: LabFacts, spawn_seconds: float) -> None:
        metrics.SPAWN_DURATION.labels(start="warm" if facts.warm else "cold").observe(spawn_seconds)
        if self.recorder is None:
            return
        self.key = uuid.uuid4().hex
        self.recorder.lab_started(LabRecord(key=self.key, started=time.time(), **facts.__dict__))

    async def stopping(self, owner: str, object_id: str) -> None:
        """Close the record with why the hub stops the lab (call first thing in ``stop()``)."""
        key, self.key = self.key, ""
        if key and self.recorder is not None:
            await self.recorder.lab_stopping(key, object_id, reasons.stop_reason(owner))

    def died(self) -> None:
        key, self.key = self.key, ""
        if key and self.recorder is not None:
            self.recorder.lab_died(key)

    def restore(self, key: str) -> None:
        """A restarted hub's running lab: its record stays open and is sampled again."""
        self.key = key
        if key and self.recorder is not None:
            self.recorder.ensure_running()
