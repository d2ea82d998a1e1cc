"""The hub's usage recorder: records written, running labs sampled, folders measured, all in the background.

One recorder per records file and hub process, shared by every spawner. Spawners hand
it plain values and never wait for the file: a start is a dictionary entry and a
queued write. The file is written by one thread of the recorder's own; Docker
accounting and folder walks run in two more, so neither a slow engine nor a huge
folder holds up the event loop or a spawn.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from labhub.usage import accounting, sizes
from labhub.usage.store import LabRecord, Sample, UsageStore, open_for_hub

#: Seconds one final sample of a stopping lab may take before it is recorded without one.
FINAL_SAMPLE_TIMEOUT = 10.0


@dataclass(frozen=True)
class UsageSettings:
    """What the recorder needs from the spawner's settings, read once."""

    records_file: str
    sample_interval: float = 300.0
    folder_interval: float = 600.0
    folder_timeout: float = 60.0
    soft_limit: int | None = None
    #: a user's personal folder on the hub's host, by username
    personal_folder: Callable[[str], str] | None = None


def over_limit_notice(size: int | None, limit: int | None) -> str:
    """One sentence for a user whose personal folder is over the soft limit; "" otherwise."""
    if size is None or not limit or size <= limit:
        return ""
    return (
        f"Your personal folder holds {sizes.human_size(size)}, more than the lab's soft limit of "
        f"{sizes.human_size(limit)}; please delete or move what you no longer need "
        "(labhub deletes nothing for you)."
    )


class UsageRecorder:
    """Records labs as spawners report them and samples the running ones every few minutes."""

    def __init__(
        self,
        settings: UsageSettings,
        client: Any,
        log: logging.Logger | logging.LoggerAdapter,
        *,
        opener: Callable[..., UsageStore] = open_for_hub,
        sampler: Callable[[Any, str], Sample] = accounting.read_sample,
    ):
        self.settings = settings
        self.client = client
        self.log = log
        self.sampler = sampler
        self.store: UsageStore | None = None
        #: labs recorded as running, by record key (restored from the file at hub start)
        self.running: dict[str, LabRecord] = {}
        #: each user's last measured personal folder: bytes (None: unknown) and whether complete
        self.folder_sizes: dict[str, tuple[int | None, bool]] = {}
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="labhub-usage-file")
        self._docker = ThreadPoolExecutor(2, thread_name_prefix="labhub-usage-docker")
        self._disk = ThreadPoolExecutor(1, thread_name_prefix="labhub-usage-disk")
        # the first job of the writer thread, so every later write finds the file open
        self._opened = self._writer.submit(self._open, opener)
        self._task: asyncio.Task | None = None

    def _open(self, opener: Callable[..., UsageStore]) -> tuple[list[LabRecord], dict]:
        self.store = opener(self.settings.records_file, self.log.warning)
        return self.store.open_records(), self.store.folder_sizes()

    # --- what spawners call ------------------------------------------------------------

    def ensure_running(self) -> None:
        """Start sampling in the hub's event loop (once; a no-op outside one)."""
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._run())

    def lab_started(self, record: LabRecord) -> None:
        """Note a lab that is now running; the file is written in the background."""
        self.running[record.key] = record
        self._write(UsageStore.add, record)
        self.ensure_running()

    async def lab_stopping(self, key: str, object_id: str, reason: str) -> None:
        """Take the stopping lab's last accounting, then close its record with ``reason``."""
        self.running.pop(key, None)
        sample = None
        if object_id:
            try:
                sample = await asyncio.wait_for(self._sample(object_id), FINAL_SAMPLE_TIMEOUT)
            except asyncio.TimeoutError:
                sample = None  # the samples taken while it ran stay
        self._write(UsageStore.stop, key, reason, time.time(), sample)

    def lab_died(self, key: str) -> None:
        """Close the record of a lab found dead; its last sample stays its accounting."""
        self.running.pop(key, None)
        self._write(UsageStore.stop, key, "died", time.time(), None)
        self.ensure_running()

    def notice_for(self, user: str) -> str:
        """The over-the-limit sentence for ``user``, from the last measurement ("" if none)."""
        size, _ = self.folder_sizes.get(user, (None, True))
        return over_limit_notice(size, self.settings.soft_limit)

    async def records(self, since: float | None = None, user: str | None = None) -> list:
        """Records from the file (in the writer thread, after every write queued before)."""
        return await self._call(lambda: self.store.records(since=since, user=user))

    async def flush(self) -> None:
        """Wait until every write queued so far is in the file."""
        await self._call(lambda: None)

    # --- the background ----------------------------------------------------------------

    async def _call(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn)

    def _write(self, method: Callable[..., Any], *args: Any) -> None:
        def write() -> None:
            try:
                method(self.store, *args)
            except Exception as err:  # a record lost is logged; the hub and the lab go on
                self.log.error("labhub: usage record not written (%s)", err)

        self._writer.submit(write)

    async def _sample(self, object_id: str) -> Sample:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._docker, self.sampler, self.client, object_id)

    async def sample_running(self) -> None:
        """Keep every running lab's accounting now (one Docker read each, two at a time)."""
        for key, record in list(self.running.items()):
            sample = await self._sample(record.object_id)
            if key in self.running:
                self._write(UsageStore.sample, key, sample)

    async def measure_folders(self) -> None:
        """Measure the personal folder of each user with a recorded lab, each within the time bound."""
        folder_of = self.settings.personal_folder
        if folder_of is None:
            return
        users = {r.user for r in self.running.values()} | set(self.folder_sizes)
        users |= set(await self._call(self._recorded_users))
        loop = asyncio.get_running_loop()
        for user in sorted(users):
            size, complete = await loop.run_in_executor(
                self._disk, sizes.folder_bytes, folder_of(user), self.settings.folder_timeout
            )
            if not complete:
                self.log.warning(
                    "labhub: %s's personal folder was not measured within %.0f s; "
                    "its size is at least %s",
                    user,
                    self.settings.folder_timeout,
                    sizes.human_size(size),
                )
            self.folder_sizes[user] = (size, complete)
            self._write(UsageStore.set_folder_size, user, size, complete, time.time())

    def _recorded_users(self) -> list[str]:
        return sorted({r.user for r in self.store.records()})

    async def _run(self) -> None:
        try:
            opened, measured = await asyncio.wrap_future(self._opened)
        except Exception as err:
            self.log.error("labhub: usage records cannot be kept (%s)", err)
            return
        for record in opened:
            self.running.setdefault(record.key, record)
        for user, (size, complete, _) in measured.items():
            self.folder_sizes.setdefault(user, (size, complete))
        next_folders = 0.0
        while True:
            try:
                await self.sample_running()
                if time.monotonic() >= next_folders:
                    next_folders = time.monotonic() + self.settings.folder_interval
                    await self.measure_folders()
            except Exception as err:  # the next round tries again
                self.log.error("labhub: usage sampling failed (%s)", err)
            await asyncio.sleep(self.settings.sample_interval)


_recorders: dict[str, UsageRecorder] = {}


def recorder_for(
    records_file: str,
    settings: Callable[[], UsageSettings],
    client: Any,
    log: logging.Logger | logging.LoggerAdapter,
) -> UsageRecorder:
    """This hub's recorder of ``records_file``, made once from ``settings()`` and shared by every spawner."""
    made = _recorders.get(records_file)
    if made is None:
        made = _recorders[records_file] = UsageRecorder(settings(), client, log)
    made.ensure_running()
    return made


def recorders() -> list[UsageRecorder]:
    """The recorders of this hub process (one, unless spawners name different files)."""
    return list(_recorders.values())
