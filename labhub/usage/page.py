"""Each user's usage page at /hub/usage, the folder notice on the hub's pages, and how configure() wires both.

A user sees their own lab hours, CPU hours, peak memory and personal-folder size;
an admin also sees everyone, and anyone's page with ``?user=``. Everything shown
comes from the records file and the recorder's last folder measurement: rendering
a page walks no folder and asks Docker nothing.
"""

from __future__ import annotations

import asyncio
import calendar
import time
from dataclasses import dataclass
from typing import Any

from jupyterhub.handlers import BaseHandler
from tornado import web

from labhub.paths import hub_pages_dir
from labhub.usage import recorder, report, sizes
from labhub.usage.store import read_only

#: The config key of the notice in JupyterHub's template_vars (read by share/labhub/pages/page.html).
NOTICE_VAR = "labhub_usage_notice"


def month_start(now: float) -> float:
    """The first second of ``now``'s month, UTC."""
    t = time.gmtime(now)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


@dataclass(frozen=True)
class ShownRow:
    """A report row with its sizes written for people."""

    key: str
    labs: int
    lab_hours: float
    cpu_hours: float
    gpu_hours: float
    warm_share: float
    unknown: int
    peak_memory: str
    folder: str


def shown(row: report.Row | None, key: str, folder: int | None) -> ShownRow:
    if row is None:
        row = report.Row(key, 0, 0.0, 0.0, None, 0.0, 0.0, 0)
    return ShownRow(
        key=key,
        labs=row.labs,
        lab_hours=row.lab_hours,
        cpu_hours=row.cpu_hours,
        gpu_hours=row.gpu_hours,
        warm_share=row.warm_share,
        unknown=row.unknown,
        peak_memory=sizes.human_size(row.peak_memory_bytes),
        folder=sizes.human_size(folder),
    )


def usage_notice(user: Any) -> str:
    """The over-the-limit sentence for the logged-in ``user`` on every hub page ("" if none)."""
    if user is None or not getattr(user, "name", ""):
        return ""
    for made in recorder.recorders():
        notice = made.notice_for(user.name)
        if notice:
            return notice
    return ""


class UsageHandler(BaseHandler):
    """GET /hub/usage: the logged-in user's usage this month; admins also see everyone's."""

    def initialize(self, records_file: str = "", soft_limit: int | None = None) -> None:
        self.records_file = records_file
        self.soft_limit = soft_limit

    async def _records_and_sizes(self, since: float) -> tuple[list, dict, int | None]:
        running = [r for r in recorder.recorders() if r.settings.records_file == self.records_file]
        if running:
            made = running[0]
            sized = {user: size for user, (size, _) in made.folder_sizes.items()}
            return await made.records(since=since), sized, made.settings.soft_limit
        # no lab has run under this hub process yet: read the file as the report does
        store = await asyncio.get_running_loop().run_in_executor(None, read_only, self.records_file)
        if store is None:
            return [], {}, self.soft_limit
        try:
            loop = asyncio.get_running_loop()
            records = await loop.run_in_executor(None, lambda: store.records(since=since))
            folder_rows = await loop.run_in_executor(None, store.folder_sizes)
        finally:
            store.close()
        return records, {u: v[0] for u, v in folder_rows.items()}, self.soft_limit

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        is_admin = bool(getattr(user, "admin", False))
        shown_user = user.name
        asked = self.get_argument("user", "")
        if asked and asked != user.name:
            if not is_admin:
                raise web.HTTPError(403, "Only admins see other users' usage.")
            shown_user = asked
        now = time.time()
        since = month_start(now)
        records, folder_sizes, soft_limit = await self._records_and_sizes(since)
        rows = {r.key: r for r in report.summarise(records, "user", since, now)}
        everyone = []
        if is_admin and not asked:
            everyone = [shown(row, key, folder_sizes.get(key)) for key, row in rows.items()]
        size = folder_sizes.get(shown_user)
        html = await self.render_template(
            "usage.html",
            shown_user=shown_user,
            month_start=time.strftime("%Y-%m-%d", time.gmtime(since)),
            mine=shown(rows.get(shown_user), shown_user, size),
            folder_size=sizes.human_size(size),
            soft_limit=sizes.human_size(soft_limit) if soft_limit else "",
            notice=recorder.over_limit_notice(size, soft_limit),
            everyone=everyone,
        )
        self.finish(html)


def templates_dir() -> str:
    """labhub's hub templates: the usage page, and page.html with its link and notice."""
    return str(hub_pages_dir())


def wire_usage_page(c: Any, records_file: str, soft_limit: int | None) -> None:
    """Add the page, its templates and the notice to the JupyterHub config ``c`` (applying twice adds nothing)."""
    route = r"/usage"
    handlers = [h for h in (c.JupyterHub.get("extra_handlers") or []) if h[0] != route]
    c.JupyterHub.extra_handlers = [
        *handlers,
        (route, UsageHandler, {"records_file": records_file, "soft_limit": soft_limit}),
    ]
    # after the admin's own template folders, as the login page's: the admin's templates win
    paths = list(c.JupyterHub.get("template_paths") or [])
    if templates_dir() not in paths:
        c.JupyterHub.template_paths = [*paths, templates_dir()]
    template_vars = dict(c.JupyterHub.get("template_vars") or {})
    template_vars[NOTICE_VAR] = usage_notice
    c.JupyterHub.template_vars = template_vars
