"""The lab labhub's image serves: quiet (no news, no update check), its resource indicator, R beside Python."""

from __future__ import annotations

import html
import json
import re

import pytest

from labhub.cli.lab_config import DISABLED_PLUGINS, SERVER_CONFIG, page_config

from ..support.hubconfig import configured_config
from ..support.kernels import Kernel

#: A profile with its own limits: the indicator must show these, not the machine's.
PROFILES = """
c.LabDockerSpawner.profile_list = [
    {"display_name": "Small", "slug": "small",
     "spawner_override": {"mem_limit": "1G", "cpu_limit": 1.5}},
]
"""

R_CELL = """
suppressPackageStartupMessages({library(ggplot2); library(dplyr); library(readr)})
counts <- mtcars |> group_by(cyl) |> summarise(n = n())
cat("groups", nrow(counts), "\\n")
ggplot(mtcars, aes(wt, mpg)) + geom_point()
"""


def test_the_news_popup_and_the_outside_calls_are_off():
    assert "@jupyterlab/apputils-extension:announcements" in DISABLED_PLUGINS
    assert page_config()["disabledExtensions"] == {plugin: True for plugin in DISABLED_PLUGINS}
    assert SERVER_CONFIG["LabApp"]["news_url"] is None
    assert SERVER_CONFIG["LabApp"]["check_for_updates_class"].endswith("NeverCheckForUpdate")


def served_page_config(page: str) -> dict:
    """The page config JupyterLab's HTML hands its front end."""
    found = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S
    )
    assert found, page[:500]
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.docker
def test_a_default_lab_is_quiet_shows_its_profiles_limits_and_runs_r(
    hub_factory, lab_image, lab_root, lab_prefix
):
    hub = hub_factory(configured_config(lab_image, lab_root, lab_prefix, after=PROFILES))
    hub.spawn("ann", {"profile": "small"})

    # quiet: the plugins are off in the page the lab serves, and the server asks no one
    page = hub.user_request("ann", "GET", "/lab")
    assert page.status_code == 200, page.text[:300]
    config = served_page_config(page.text)
    assert set(DISABLED_PLUGINS) <= set(config["disabledExtensions"]), config
    assert config["news"] == {"disabled": True}, config
    news = hub.user_request("ann", "GET", "/lab/api/news")
    assert news.status_code == 200 and news.json()["news"] == [], news.text
    update = hub.user_request("ann", "GET", "/lab/api/update")
    assert update.status_code == 200 and update.json()["notification"] is None, update.text

    # the indicator: memory and CPU against the profile's limits
    metrics = hub.user_request("ann", "GET", "/api/metrics/v1")
    assert metrics.status_code == 200, metrics.text
    limits = metrics.json()["limits"]
    assert limits["memory"]["rss"] == 1024**3, limits
    assert limits["cpu"]["cpu"] == 1.5 and "cpu_percent" in metrics.json(), metrics.json()

    # R: the kernel the launcher shows, with the tidyverse pieces, plotting
    specs = hub.user_request("ann", "GET", "/api/kernelspecs").json()["kernelspecs"]
    assert specs["ir"]["spec"]["display_name"] == "R", specs.keys()
    with Kernel(hub, "ann", "ir") as kernel:
        outcome = kernel.run(R_CELL)
    assert not outcome.error and not outcome.stderr, outcome.text
    assert "groups 3" in outcome.stdout, outcome.text
    assert any("image/png" in result for result in outcome.results), outcome.results
