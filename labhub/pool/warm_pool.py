"""The warm pool at run time: keep N pool containers started, hand each out once, refill.

One :class:`WarmPool` per hub process holds one map from each of its pool
containers to its slot and its state: starting, waiting (free and ready), or
being taken. Filling runs in the background with at most ``concurrency`` starts at
a time, and pool containers wait at a low CPU weight, so refilling after a
burst of logins does not starve the labs already running. A container leaves the
pool by being renamed to a user's lab name; Docker renames a name once, so two
spawns can never take the same one. At hub start, free pool containers of the
same configuration are adopted and every other one is removed; slot folders with
no container are released.

What a pool container is and how it becomes a lab: :mod:`labhub.pool.model`; the host
mounts: :mod:`labhub.pool.mounts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from docker.errors import APIError, NotFound
from requests import RequestException

from labhub.lab import names
from labhub.lab.model import Lab, Overrides
from labhub.pool import model as pool
from labhub.pool import mounts as pool_mounts

#: CPU weight of a pool container until someone takes it (Docker's default is 1024).
WAITING_CPU_SHARES = 64
#: How often free containers are checked for life.
HEALTH_INTERVAL = 20.0
#: The longest wait after repeated failures to start a pool container.
MAX_BACKOFF = 60.0

#: The host's memory the pool leaves to labs unless the admin says otherwise: a tenth, at least this.
MIN_MEMORY_RESERVE = 2 * 1024**3

DockerCall = Callable[..., Awaitable[Any]]

#: What a Docker call raises when the engine refuses it or cannot be reached (restarting, gone).
ENGINE_ERRORS = (APIError, RequestException)


def meminfo_bytes(meminfo: str, field: str) -> int | None:
    """The value of ``field`` (such as ``MemAvailable``) in a ``/proc/meminfo`` text, in bytes."""
    for line in meminfo.splitlines():
        name, _, value = line.partition(":")
        if name == field:
            words = value.split()
            if words and words[0].isdigit():
                return int(words[0]) * 1024  # the kernel writes kB
    return None


def memory_reserve(meminfo: str, configured: int | None) -> int:
    """Bytes of the host's memory the pool leaves free for labs: ``configured``, or the default."""
    if configured:
        return configured
    total = meminfo_bytes(meminfo, "MemTotal") or 0
    return max(MIN_MEMORY_RESERVE, total // 10)


def memory_shortfall(meminfo: str, reserve: int) -> str:
    """Why one more waiting container would eat into the labs' memory, or "" when there is room."""
    available = meminfo_bytes(meminfo, "MemAvailable")
    if available is None or available > reserve:
        return ""
    return (
        f"the Docker host has {available // 1024**2} MiB of memory available and the pool "
        f"leaves {reserve // 1024**2} MiB to labs (warm_pool_memory_reserve)"
    )


#: The states of a pool container, in the order it passes them.
STARTING, WAITING, TAKING = "starting", "waiting", "taking"


@dataclass(frozen=True)
class SlotState:
    """A pool container's slot and state: ``starting``, ``waiting`` (free, ready) or ``taking``."""

    slot: str
    state: str


def read_meminfo() -> str:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            return f.read()
    except OSError:
        return ""  # not Linux: no guard, as without a pool


class WarmPool:
    """Free pool containers of one lab template, kept at ``size``."""

    def __init__(
        self,
        *,
        size: int,
        concurrency: int,
        prefix: str,
        pool_dir: str,
        template: Lab,
        overrides: Overrides,
        slot_targets: list[str],
        docker: DockerCall,
        create_host_config: Callable[..., Any],
        log: logging.Logger | logging.LoggerAdapter,
        ready_timeout: float = 120.0,
        memory_reserve: int | None = None,
        meminfo: Callable[[], str] = read_meminfo,
    ) -> None:
        self.size = size
        self.concurrency = max(1, concurrency)
        self.prefix = prefix
        self.pool_dir = pool_dir
        self.stand_in = template
        self.overrides = overrides
        self.slot_targets = list(slot_targets)
        # the template as pool containers have it, with a placeholder slot: what fit() compares
        self.template = pool.template_lab(template, self.slot_targets, pool_dir, "0")
        self.docker = docker
        self.create_host_config = create_host_config
        self.log = log
        self.ready_timeout = ready_timeout
        self.memory_reserve = memory_reserve
        self.meminfo = meminfo
        self.held_back = ""  # why the pool holds fewer than size (memory), logged once
        _, self.key = pool.pool_spec(self.template, overrides)
        # every pool container this pool holds, by name; waiting ones in the order they got ready
        self.containers: dict[str, SlotState] = {}
        self.failures = 0
        self.disabled = ""
        self._wake = asyncio.Event()
        self._task: asyncio.Future | None = None
        self._slots = asyncio.Semaphore(self.concurrency)
        self._announced_full = False
        # the process id of each container just taken, for the hand-over's own look at its mounts
        self._taken_pids: dict[str, int] = {}

    def in_state(self, state: str) -> list[str]:
        """Names of the pool containers in ``state``, oldest first."""
        return [name for name, held in self.containers.items() if held.state == state]

    def _set(self, name: str, slot: str, state: str) -> None:
        # moved to the end: waiting containers are handed out in the order they got ready
        self.containers.pop(name, None)
        self.containers[name] = SlotState(slot, state)

    # --- what spawners use ---------------------------------------------------------

    def start(self) -> None:
        """Adopt what a previous hub left, then keep the pool full in the background."""
        if self._task is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return  # not yet: the first spawn starts it
            self._task = asyncio.ensure_future(self._run())

    def fit(self, lab: Lab, overrides: Overrides) -> list[pool.SlotBind]:
        """The binds that make a pool container into ``lab``; :class:`pool.PoolMismatch` if none can."""
        if self.disabled:
            raise pool.PoolMismatch(self.disabled)
        return pool.fit(lab, overrides, self.template, self.key)

    async def take(self, name: str) -> tuple[str, str] | None:
        """Claim a free container as ``name``: its id and slot, or None when the pool is empty."""
        while waiting := self.in_state(WAITING):
            free_name = waiting[0]
            slot = self.containers[free_name].slot
            self._wake.set()  # refill now
            # held while it is renamed, so the health check does not take it for an orphan
            self._set(free_name, slot, TAKING)
            try:
                await self.docker("rename", free_name, name)
                info = await self.docker("inspect_container", name)
            except ENGINE_ERRORS as err:
                self.log.warning("labhub: warm pool: %s could not be taken (%s)", free_name, err)
                await self._discard(free_name, slot)
                continue
            finally:
                self.containers.pop(free_name, None)  # a user's lab now, or gone
            if not info.get("State", {}).get("Running"):
                self.log.warning("labhub: warm pool: %s had stopped; it is removed", free_name)
                await self._discard(name, slot)
                continue
            self._announced_full = False
            self._taken_pids[info["Id"]] = int(info["State"].get("Pid") or 0)
            return info["Id"], slot
        self._wake.set()
        return None

    def taken_pid(self, container_id: str) -> int:
        """The main process id of a container :meth:`take` just returned (0 if unknown), once."""
        return self._taken_pids.pop(container_id, 0)

    def turn_off(self, reason: str) -> None:
        """Stop handing out containers; users get normal starts from now on.

        Only for a failure of the hub's own (it cannot mount, or its mounts do not
        reach the engine's containers): never for what happens in one user's container.
        """
        if not self.disabled:
            self.disabled = reason
            self.log.error("labhub: warm pool is off: %s", reason)
            self._wake.set()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # --- filling ------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._adopt()
        except Exception as err:
            self.log.error("labhub: warm pool: leftovers could not be checked (%s)", err)
        while not self.disabled:
            missing = self.size - len(self.in_state(WAITING)) - len(self.in_state(STARTING))
            if missing > 0 and self._short_of_memory():
                missing = 0  # looked at again at the next take or health check
            for _ in range(max(0, missing)):
                slot = pool.slot_name()
                name = names.pool_container_name(self.prefix, slot)
                self._set(name, slot, STARTING)
                asyncio.ensure_future(self._fill_one(name, slot))
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), HEALTH_INTERVAL)
            if not self._wake.is_set():
                try:
                    await self._check_health()
                except Exception as err:  # the pool outlives any one failed check
                    self.log.warning("labhub: warm pool: health check failed (%s)", err)
        await self._drain()

    async def _fill_one(self, name: str, slot: str) -> None:
        try:
            async with self._slots:
                if self.failures:
                    await asyncio.sleep(min(MAX_BACKOFF, 2.0**self.failures))
                if self.disabled or self._short_of_memory():
                    return
                started = time.monotonic()
                await self._start_container(name, slot)
            self.failures = 0
            self._set(name, slot, WAITING)
            self.log.debug(
                "labhub: warm pool: %s ready in %.2f s", name, time.monotonic() - started
            )
            ready = len(self.in_state(WAITING))
            if ready >= self.size and not self._announced_full:
                self._announced_full = True
                self.log.info("labhub: warm pool: %d/%d ready", ready, self.size)
        except Exception as err:
            self.failures += 1
            if self.failures in (1, 5) or self.failures % 20 == 0:
                self.log.error(
                    "labhub: warm pool: a container could not start (%s); users get normal "
                    "starts until it can (failure %d)",
                    err,
                    self.failures,
                )
            await self._discard(name, slot)
        finally:
            if self.containers.get(name) == SlotState(slot, STARTING):
                del self.containers[name]  # not started: it holds no place in the pool
            self._wake.set()

    def _short_of_memory(self) -> bool:
        """True when the host has no memory to spare for another waiting container (said once)."""
        text = self.meminfo()
        why = memory_shortfall(text, memory_reserve(text, self.memory_reserve))
        if why and not self.held_back:
            self.log.warning(
                "labhub: warm pool: holding %d of %d: %s; logins beyond it get normal starts",
                len(self.in_state(WAITING)) + len(self.in_state(STARTING)),
                self.size,
                why,
            )
        elif not why and self.held_back:
            self.log.info("labhub: warm pool: memory is available again; refilling")
        self.held_back = why
        return bool(why)

    async def _start_container(self, name: str, slot: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            None, pool_mounts.make_slot, self.pool_dir, slot, len(self.slot_targets)
        )
        lab = pool.template_lab(self.stand_in, self.slot_targets, self.pool_dir, slot)
        spec, _ = pool.pool_spec(lab, self.overrides)
        spec["name"] = name
        spec["labels"] = {**spec["labels"], pool.LABEL_POOL: self.key}
        host = dict(spec["host_config"])
        host["cpu_shares"] = WAITING_CPU_SHARES
        spec["host_config"] = self.create_host_config(**host)
        await self.docker("create_container", **spec)
        await self.docker("start", name)
        deadline = loop.time() + self.ready_timeout
        interval = 0.05
        while loop.time() < deadline:
            logs = await self.docker("logs", name, stdout=True, stderr=False)
            if b"labhub-pool: ready" in logs:
                return
            info = await self.docker("inspect_container", name)
            if not info["State"].get("Running"):
                tail = (await self.docker("logs", name, tail=5)).decode("utf-8", "replace")
                raise RuntimeError(
                    f"it exited with code {info['State'].get('ExitCode')}: {tail.strip()[-300:]}"
                )
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 0.25)
        raise RuntimeError(f"it was not ready after {self.ready_timeout:.0f} s")

    async def _discard(self, name: str, slot: str) -> None:
        """Remove a container that will serve nobody, then its slot folders.

        The slot is released even when the engine cannot be reached (restarting): a
        container left behind then is removed by a later health check.
        """
        try:
            await remove_container(self.docker, name, self.log)
        finally:
            await release(self.pool_dir, slot, self.log)

    def _is_free(self, container: dict[str, Any]) -> bool:
        """True for a free pool container of this hub: named exactly after its own slot.

        A lab taken from the pool keeps the pool's labels but has a user's lab name,
        never a pool container's (:mod:`labhub.lab.names`).
        """
        name = container["Names"][0].lstrip("/")
        slot = (container.get("Labels") or {}).get(pool.LABEL_SLOT, "")
        return names.is_pool_container_name(self.prefix, name) and name.endswith(f"-{slot}")

    async def _check_health(self) -> None:
        """Replace free containers that died; remove pool containers this pool no longer holds."""
        for name in self.in_state(WAITING):
            try:
                info = await self.docker("inspect_container", name)
                alive = info["State"].get("Running")
            except NotFound:
                alive = False
            except ENGINE_ERRORS:
                continue  # the engine is busy or restarting: check again next time
            held = self.containers.get(name)
            if not alive and held is not None and held.state == WAITING:
                del self.containers[name]
                slot = held.slot
                self.log.warning("labhub: warm pool: %s stopped while waiting; replacing it", name)
                await self._discard(name, slot)
                self._wake.set()
        # a container whose start the engine broke off (it restarted) is in no list of ours
        containers = await self.docker("containers", all=True, filters={"label": pool.LABEL_POOL})
        for container in containers:
            name = container["Names"][0].lstrip("/")
            if self._is_free(container) and name not in self.containers:
                self.log.warning("labhub: warm pool: removing %s, left by a broken start", name)
                await self._discard(name, (container.get("Labels") or {}).get(pool.LABEL_SLOT, ""))

    async def _adopt(self) -> None:
        """Keep a previous hub's free containers of this template; remove every other one."""
        containers = await self.docker("containers", all=True, filters={"label": pool.LABEL_POOL})
        in_use = set()
        for container in containers:
            name = container["Names"][0].lstrip("/")
            labels = container.get("Labels") or {}
            slot = labels.get(pool.LABEL_SLOT, "")
            if names.is_legacy_pool_container_name(self.prefix, name, slot):
                # named by a hub before the upgrade (see the function); one that started a
                # server was handed over, and stays a user's lab whatever its name
                logs = await self.docker("logs", name, stdout=True, stderr=False)
                if b"starting the server" not in logs:
                    await self._discard(name, slot)
                    continue
            if not self._is_free(container):
                in_use.add(slot)  # a user's lab now: its spawner releases the slot
                continue
            logs = b""
            if container.get("State") == "running" and labels.get(pool.LABEL_POOL) == self.key:
                logs = await self.docker("logs", name, stdout=True, stderr=False)
            if b"labhub-pool: ready" in logs and b"starting the server" not in logs:
                self._set(name, slot, WAITING)
                in_use.add(slot)
            else:
                await self._discard(name, slot)
        if self.containers:
            self.log.info(
                "labhub: warm pool: adopted %d waiting containers", len(self.in_state(WAITING))
            )
        loop = asyncio.get_running_loop()
        for slot in await loop.run_in_executor(None, list, pool_mounts.slots(self.pool_dir)):
            if slot not in in_use:
                await release(self.pool_dir, slot, self.log)

    async def _drain(self) -> None:
        for name in self.in_state(WAITING):
            held = self.containers.pop(name)
            await self._discard(name, held.slot)


async def remove_container(
    docker: DockerCall, name: str, log: logging.Logger | logging.LoggerAdapter
) -> None:
    """Remove a pool container, running or not; an engine that cannot answer now is logged.

    A container left behind that way is removed by a later health check.
    """
    try:
        await docker("remove_container", name, force=True, v=True)
    except NotFound:
        pass
    except ENGINE_ERRORS as err:
        log.warning("labhub: warm pool: %s not removed yet (%s)", name, err)


async def release(pool_dir: str, slot: str, log: logging.Logger | logging.LoggerAdapter) -> None:
    """Unmount and remove a slot's folders off the event loop; a failure is logged, not raised."""
    if not slot:
        return
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, pool_mounts.release_slot, pool_dir, slot
        )
    except OSError as err:
        log.error("labhub: warm pool: %s", err)


_pools: dict[str, WarmPool] = {}
_refusal: list[str] = []


def refuse(reason: str) -> None:
    """Remember that this hub's settings allow no pool, so no spawn builds one again."""
    _refusal[:] = [reason]


def refusal() -> str:
    """Why this hub has no pool, or "" if none was refused."""
    return _refusal[0] if _refusal else ""


def pool_for(key: str) -> WarmPool | None:
    """The running pool of this hub with template ``key``, if any."""
    return _pools.get(key)


def register(warm_pool: WarmPool) -> WarmPool:
    """Keep ``warm_pool`` as this hub's pool for its key and start it (once per key)."""
    existing = _pools.get(warm_pool.key)
    if existing is not None:
        return existing
    _pools[warm_pool.key] = warm_pool
    warm_pool.start()
    return warm_pool


def running_pools() -> list[WarmPool]:
    return list(_pools.values())
