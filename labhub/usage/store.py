"""The usage records file: one SQLite file in data_dir, through SQLAlchemy, with a schema version.

Every call here is blocking file I/O; the hub runs them in the recorder's own thread,
``labhub report`` calls them directly. A file that cannot be read, or that a newer
labhub wrote, is moved aside (kept, never deleted) and a new one is started.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

#: The file's name in data_dir (``configure()`` and ``labhub report --data-dir`` agree on it).
RECORDS_FILE = "labhub-usage.sqlite"

#: The schema this labhub writes. A file at a lower version is upgraded by MIGRATIONS.
SCHEMA_VERSION = 1
#: SQL statements that take a file from version N to N+1, by N (none yet: version 1 is the first).
MIGRATIONS: dict[int, tuple[str, ...]] = {}

STOP_REASONS = ("logout", "user", "cull", "died", "admin", "hub restart")

metadata = sa.MetaData()

version_table = sa.Table(
    "labhub_usage_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

labs = sa.Table(
    "labs",
    metadata,
    sa.Column("key", sa.String(32), primary_key=True),
    sa.Column("user", sa.Unicode(255), nullable=False, index=True),
    sa.Column("server_name", sa.Unicode(255), nullable=False, default=""),
    sa.Column("groups", sa.UnicodeText, nullable=False, default="[]"),
    sa.Column("profile", sa.Unicode(255), nullable=False, default=""),
    sa.Column("image", sa.Unicode(1024), nullable=False, default=""),
    sa.Column("gpus", sa.UnicodeText, nullable=False, default="[]"),
    sa.Column("gpu_count", sa.Integer, nullable=False, default=0),
    sa.Column("engine", sa.String(16), nullable=False, default="docker"),
    sa.Column("object_id", sa.String(128), nullable=False, default=""),
    sa.Column("warm", sa.Boolean, nullable=False, default=False),
    sa.Column("started", sa.Float, nullable=False, index=True),
    sa.Column("stopped", sa.Float, nullable=True),
    sa.Column("stop_reason", sa.String(32), nullable=True),
    # NULL is unknown (the engine could not show the container's accounting), never zero
    sa.Column("cpu_seconds", sa.Float, nullable=True),
    sa.Column("peak_memory_bytes", sa.BigInteger, nullable=True),
    sa.Column("sampled", sa.Float, nullable=True),
)

folder_sizes = sa.Table(
    "folder_sizes",
    metadata,
    sa.Column("user", sa.Unicode(255), primary_key=True),
    sa.Column("bytes", sa.BigInteger, nullable=True),
    sa.Column("complete", sa.Boolean, nullable=False, default=True),
    sa.Column("measured", sa.Float, nullable=False),
)


class RecordsUnreadable(Exception):
    """The records file is corrupt or from a newer labhub; the message is one sentence."""


@dataclass(frozen=True)
class LabRecord:
    """One lab's usage: who, what, when, and the container's own accounting (None: unknown)."""

    key: str
    user: str
    started: float
    server_name: str = ""
    groups: tuple[str, ...] = ()
    profile: str = ""
    image: str = ""
    gpus: tuple[str, ...] = ()
    gpu_count: int = 0
    engine: str = "docker"
    object_id: str = ""
    warm: bool = False
    stopped: float | None = None
    stop_reason: str | None = None
    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    sampled: float | None = None


@dataclass(frozen=True)
class Sample:
    """A container's accounting at one moment; None where it could not be read."""

    cpu_seconds: float | None = None
    peak_memory_bytes: int | None = None
    at: float = field(default_factory=time.time)


def _record(row: sa.Row) -> LabRecord:
    values = dict(row._mapping)
    values["groups"] = tuple(json.loads(values["groups"] or "[]"))
    values["gpus"] = tuple(json.loads(values["gpus"] or "[]"))
    values["warm"] = bool(values["warm"])
    return LabRecord(**values)


class UsageStore:
    """The records file at ``path``: open (upgrading, or moving an unreadable one aside) and write."""

    def __init__(self, path: str, *, create: bool = True):
        self.path = path
        self.engine = sa.create_engine(
            f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 30}
        )
        self._check(create)

    def _check(self, create: bool) -> None:
        try:
            with self.engine.begin() as conn:
                tables = set(sa.inspect(conn).get_table_names())
                if version_table.name not in tables:
                    if tables and labs.name not in tables:
                        raise RecordsUnreadable(f"{self.path} is not a labhub usage records file")
                    if not create:
                        return
                    metadata.create_all(conn)
                    conn.execute(version_table.insert().values(version=SCHEMA_VERSION))
                    # who worked when, and in which groups: for the hub's account only
                    os.chmod(self.path, 0o600)
                    return
                found = conn.execute(sa.select(version_table.c.version)).scalar()
                if found is None or found > SCHEMA_VERSION:
                    raise RecordsUnreadable(
                        f"{self.path} was written by a newer labhub (schema {found}, "
                        f"this one reads {SCHEMA_VERSION})"
                    )
                for step in range(found, SCHEMA_VERSION):
                    for statement in MIGRATIONS[step]:
                        conn.execute(sa.text(statement))
                if found < SCHEMA_VERSION:
                    conn.execute(version_table.update().values(version=SCHEMA_VERSION))
                metadata.create_all(conn)  # tables a migration adds whole
        except DatabaseError as err:
            self.engine.dispose()
            raise RecordsUnreadable(
                f"{self.path} cannot be read as SQLite ({err.orig or err})"
            ) from None
        except RecordsUnreadable:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    # --- writing ---------------------------------------------------------------------

    def add(self, record: LabRecord) -> None:
        values = {
            **record.__dict__,
            "groups": json.dumps(list(record.groups)),
            "gpus": json.dumps(list(record.gpus)),
        }
        with self.engine.begin() as conn:
            conn.execute(labs.insert().values(**values))

    def sample(self, key: str, sample: Sample) -> None:
        """Keep ``sample`` as the lab's latest accounting; an unknown value keeps the last known one."""
        values: dict = {"sampled": sample.at}
        if sample.cpu_seconds is not None:
            values["cpu_seconds"] = sample.cpu_seconds
        if sample.peak_memory_bytes is not None:
            # the peak only grows; a restarted container's own counter would start again
            values["peak_memory_bytes"] = sa.func.max(
                sa.func.coalesce(labs.c.peak_memory_bytes, 0), sample.peak_memory_bytes
            )
        with self.engine.begin() as conn:
            conn.execute(labs.update().where(labs.c.key == key).values(**values))

    def stop(self, key: str, reason: str, at: float, sample: Sample | None = None) -> bool:
        """Close the lab's record once (a second close is ignored); True if this call closed it."""
        if sample is not None:
            self.sample(key, sample)
        with self.engine.begin() as conn:
            done = conn.execute(
                labs.update()
                .where(labs.c.key == key, labs.c.stopped.is_(None))
                .values(stopped=at, stop_reason=reason)
            )
        return bool(done.rowcount)

    def set_folder_size(self, user: str, size: int | None, complete: bool, at: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(folder_sizes.delete().where(folder_sizes.c.user == user))
            conn.execute(
                folder_sizes.insert().values(user=user, bytes=size, complete=complete, measured=at)
            )

    # --- reading ---------------------------------------------------------------------

    def open_records(self) -> list[LabRecord]:
        """Labs recorded as running (started, not stopped)."""
        return self.records(open_only=True)

    def records(
        self, since: float | None = None, user: str | None = None, open_only: bool = False
    ) -> list[LabRecord]:
        """Records of labs running at or after ``since``, oldest first."""
        query = sa.select(labs).order_by(labs.c.started)
        if since is not None:
            query = query.where(sa.or_(labs.c.stopped.is_(None), labs.c.stopped >= since))
        if user is not None:
            query = query.where(labs.c.user == user)
        if open_only:
            query = query.where(labs.c.stopped.is_(None))
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(labs.name):
                return []
            return [_record(row) for row in conn.execute(query)]

    def folder_sizes(self) -> dict[str, tuple[int | None, bool, float]]:
        """Each user's personal-folder size: bytes (None: unknown), complete, when measured."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(folder_sizes.name):
                return {}
            rows = conn.execute(sa.select(folder_sizes))
            return {r.user: (r.bytes, bool(r.complete), r.measured) for r in rows}


def aside_name(path: str, now: float | None = None) -> str:
    """Where an unreadable records file is kept: beside it, stamped with the time it was moved."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{path}.unreadable-{stamp}"


def open_for_hub(path: str, warn) -> UsageStore:
    """The hub's records file; an unreadable one is moved aside with one logged sentence.

    ``warn`` gets that sentence. The hub starts and records in a new file either way.
    """
    try:
        return UsageStore(path)
    except RecordsUnreadable as err:
        kept = aside_name(path)
        os.replace(path, kept)
        for suffix in ("-journal", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, kept + suffix)
        warn(f"labhub: usage records {err}; kept it as {kept} and started a new file.")
        return UsageStore(path)


def read_only(path: str) -> UsageStore | None:
    """The records file for a report, never created or changed; None when it does not exist."""
    if not os.path.exists(path):
        return None
    return UsageStore(path, create=False)


def records_path(data_dir: str) -> str:
    return os.path.join(data_dir, RECORDS_FILE)
