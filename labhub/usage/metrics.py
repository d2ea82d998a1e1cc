"""labhub's Prometheus metrics, served on the hub's own /hub/metrics (JupyterHub's registry).

Durations are observed where they happen (a spawn, a folder preparation); the state
metrics (labs running, warm pool, GPUs, folder sizes) are read at each scrape from
what the hub already keeps in memory, so a scrape costs no Docker call and no disk walk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from labhub.pool import warm_pool
from labhub.profiles import gpus
from labhub.usage import recorder

#: Spawns take from a fraction of a second (warm) to minutes (a first image pull).
SPAWN_BUCKETS = (0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300)

SPAWN_DURATION = Histogram(
    "labhub_spawn_duration_seconds",
    "Seconds from a lab spawn's start until its server answered, by start (cold or warm)",
    ["start"],
    buckets=SPAWN_BUCKETS,
)
FOLDER_PREPARATION = Histogram(
    "labhub_folder_preparation_seconds",
    "Seconds spent creating a user's lab folders before the container starts",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)


class LabStateCollector:
    """The labs, pool, GPUs and folders the hub holds now, read at each scrape."""

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily(
            "labhub_labs_running", "Labs running, by profile ('' without one)", labels=["profile"]
        )
        by_profile: Counter[str] = Counter()
        folders = GaugeMetricFamily(
            "labhub_personal_folder_bytes",
            "Disk bytes of each user's personal folder at its last background measurement",
            labels=["user"],
        )
        limit = None
        for rec in recorder.recorders():
            by_profile.update(r.profile for r in rec.running.values())
            for user, (size, _) in rec.folder_sizes.items():
                if size is not None:
                    folders.add_metric([user], size)
            limit = rec.settings.soft_limit or limit
        for profile, count in sorted(by_profile.items()):
            running.add_metric([profile], count)
        yield running
        yield folders
        if limit:
            yield GaugeMetricFamily(
                "labhub_personal_folder_soft_limit_bytes",
                "The personal-folder soft limit (a notice, never enforced)",
                value=limit,
            )

        size = GaugeMetricFamily("labhub_warm_pool_size", "Pool containers the warm pool keeps")
        free = GaugeMetricFamily(
            "labhub_warm_pool_free", "Pool containers started and waiting for a login"
        )
        pools = warm_pool.running_pools()
        size.add_metric([], sum(p.size for p in pools))
        free.add_metric([], sum(len(p.in_state("waiting")) for p in pools))
        yield size
        yield free

        held = GaugeMetricFamily("labhub_gpus_held", "GPUs held or shared by running labs")
        idle = GaugeMetricFamily("labhub_gpus_free", "GPUs no lab holds or shares")
        devices = {d for pool in gpus.all_pools() for d in pool.devices}
        free_ids = {d for pool in gpus.all_pools() for d in pool.free()}
        held.add_metric([], len(devices - free_ids))
        idle.add_metric([], len(free_ids))
        yield held
        yield idle


_collector = LabStateCollector()
REGISTRY.register(_collector)
