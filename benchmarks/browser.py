"""What people feel: from clicking "Sign in" to the first cell's output, in a real browser.

Three hubs over HTTPS on host networking, one after the other for each run: labhub
cold, labhub from a warm pool, and stock DockerSpawner on the plain Jupyter image
(spawn.py's hubs). Each run is a new user in a new headless Chromium (nothing cached,
as on a first visit): the login form, the hub's spawn page, JupyterLab, a new notebook
from the launcher's Python card, ``1 + 1`` and Shift+Enter, until ``2`` shows. Marks
along the way, taken from the browser's own network log and the page, give a waterfall
that says where the time goes.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from benchmarks import spawn, warm
from benchmarks.progress import say
from labhub.cli.certs import make_self_signed
from tests.support.chromium import Chromium, start_chromium
from tests.support.hub import HubProcess
from tests.support.waiting import wait_until

#: The rows, in the order each run visits them.
KINDS = ("stock_plain", "lab_cold", "lab_warm")
LABELS = {
    "stock_plain": "stock DockerSpawner, plain Jupyter image",
    "lab_cold": "labhub cold",
    "lab_warm": "labhub from a warm pool",
}
#: Waiting containers of the warm hub: one run takes one, the next run waits until it is back.
POOL = 2
PASSWORD = secrets.token_hex(8)
#: The marks of one run, in the order they happen (seconds after the click).
MARKS = (
    ("login_answered", "the hub answered the login form"),
    ("spawn_page", "the browser asked for the hub's spawn page"),
    ("lab_requested", "the browser first asked for /user/NAME/lab"),
    ("lab_drawn", "JupyterLab drew its file browser"),
    ("launcher_clicked", "the launcher's Python card clicked"),
    ("kernel_idle", "the new notebook's kernel idle"),
    ("output", "the first cell's output shown"),
)
#: Marks read from the browser's network log: (mark, URL part, method, sent or answered).
NETWORK_MARKS = (
    ("login_answered", "/hub/login", "POST", "answered"),
    ("spawn_page", "/hub/spawn-pending/", "GET", "sent"),
    ("lab_requested", "/user/{user}/lab", "GET", "sent"),
)
#: A run whose requests Chromium dropped (a container started elsewhere) is run again.
RETRIES = 3


def _https(hub: HubProcess, cert: Path, key: Path) -> HubProcess:
    with open(hub.config_path, "a") as f:
        f.write(f"\nc.JupyterHub.ssl_cert = {str(cert)!r}\nc.JupyterHub.ssl_key = {str(key)!r}\n")
    hub.scheme = "https"
    hub.verify = str(cert)
    return hub


def make_hubs(workdir: Path, lean: str, plain: str) -> dict[str, HubProcess]:
    """The three hubs (not started), with spawn.py's configs plus HTTPS and a known password."""
    cert, key = workdir / "lab.crt", workdir / "lab.key"
    make_self_signed(cert, key, ["127.0.0.1"])
    limits = spawn.hub_limits()
    hubs = {
        "stock_plain": spawn.stock_hub(workdir, plain, spawn.NAME_PREFIX + "bstock", limits),
        "lab_cold": spawn.lab_hub(workdir, lean, spawn.NAME_PREFIX + "bcold", limits),
        "lab_warm": spawn.lab_hub(workdir, lean, spawn.NAME_PREFIX + "bwarm", limits, pool=POOL),
    }
    for hub in hubs.values():
        _https(hub, cert, key)
        with open(hub.config_path, "a") as f:
            f.write(f"c.LabAuthenticator.dummy_password = {PASSWORD!r}\n")
    return hubs


class NetworkDropped(RuntimeError):
    """Chromium dropped requests of this run because the machine's interfaces changed."""


def _first_sent(browser: Chromium, fragment: str, method: str) -> float | None:
    """Wall time (s) at which the browser first sent a request whose URL holds ``fragment``."""
    sent = [
        t["sent"]
        for t in browser.record.timings.values()
        if fragment in t["url"] and t.get("sent") and t["method"] == method
    ]
    return min(sent) if sent else None


def sign_in_to_output(hub: HubProcess, user: str, timeout: float = 180.0) -> dict:
    """One run: a new browser signs ``user`` in, opens a notebook and runs ``1 + 1``.

    Returns the seconds from the click to the output, and the marks between.
    """
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.keys import Keys

    browser = Chromium(start_chromium())
    try:
        browser.driver.get(f"{hub.url}/hub/login")
        browser.find("#username_input").send_keys(user)
        browser.find("#password_input").send_keys(PASSWORD)
        button = browser.find("#login_submit")
        browser.drain()
        clicked_wall, clicked = time.time(), time.monotonic()
        button.click()
        marks: dict[str, float] = {}
        browser.wait_for_lab(timeout)
        marks["lab_drawn"] = time.monotonic() - clicked

        def click_python_card() -> bool:
            dialogs = browser.text_of(".jp-Dialog")
            if dialogs:  # JupyterLab could not load a part: a dropped request, or a fault
                browser.drain()
                if browser.record.network_changes:
                    raise NetworkDropped(dialogs[0][:200])
                raise RuntimeError(f"JupyterLab shows a dialog: {dialogs[0][:300]}")
            for card in browser.all('.jp-LauncherCard[data-category="Notebook"]'):
                if "Python" in card.text:
                    card.click()  # intercepted while JupyterLab still lays out: tried again
                    return True
            return False

        wait_until(
            click_python_card,
            timeout,
            0.05,
            what="the launcher's Python notebook card clicked",
            retry_on=(WebDriverException,),
        )
        marks["launcher_clicked"] = time.monotonic() - clicked
        editor = browser.find(".jp-NotebookPanel .jp-Cell .cm-content", timeout)
        browser.kernel_idle(timeout)
        marks["kernel_idle"] = time.monotonic() - clicked
        editor.click()
        editor.send_keys("1 + 1")
        editor.send_keys(Keys.SHIFT, Keys.ENTER)
        wait_until(
            lambda: any(
                o["text"].strip() == "2" for c in browser.code_cells() for o in c["outputs"]
            ),
            timeout,
            0.02,
            what="the output 2",
        )
        marks["output"] = time.monotonic() - clicked
        browser.drain()
        if browser.record.network_changes:
            raise NetworkDropped(browser.record.network_changes[0])
        for mark, fragment, method, when in NETWORK_MARKS:
            fragment = fragment.format(user=user)
            at = (_answered if when == "answered" else _first_sent)(browser, fragment, method)
            if at:
                marks[mark] = at - clicked_wall
        return {"seconds": marks["output"], "marks": marks}
    finally:
        browser.driver.quit()


def _answered(browser: Chromium, fragment: str, method: str) -> float | None:
    """Wall time at which the first ``method`` request to ``fragment`` got its response."""
    done = [
        t["sent"] + (t["finished_ts"] - t["sent_ts"])
        for t in browser.record.timings.values()
        if fragment in t["url"]
        and t["method"] == method
        and t.get("finished_ts") is not None
        and t.get("sent_ts") is not None
    ]
    return min(done) if done else None


def measured_run(hub: HubProcess, user: str) -> dict:
    """One run for a new ``user``; again, as a new user, if Chromium dropped its requests."""
    for attempt in range(RETRIES):
        name = user if attempt == 0 else f"{user}r{attempt}"
        spawn.prepare_user(hub, name)
        try:
            return sign_in_to_output(hub, name)
        except (NetworkDropped, TimeoutError) as err:
            if attempt == RETRIES - 1:
                raise
            say("browser", f"run of {name} discarded: {type(err).__name__}: {err}"[:300])
        finally:
            hub.stop_server(name, wait=120)


def run_browser_benchmarks(lean: str, plain: str, workdir: Path, runs: int) -> dict:
    """Every row, ``runs`` times, interleaved so that drift on the machine hits all alike."""
    workdir.mkdir(parents=True, exist_ok=True)
    hubs = make_hubs(workdir, lean, plain)
    results: dict = {"images": {"plain": plain, "lean": lean}, "runs": {k: [] for k in KINDS}}
    try:
        for kind, hub in hubs.items():
            hub.start()
            say("browser", f"hub started: {LABELS[kind]}")
        warm_hub, warm_prefix = hubs["lab_warm"], spawn.NAME_PREFIX + "bwarm"
        since = 0
        for i in range(runs):
            for kind in KINDS:
                hub = hubs[kind]
                user = f"b{kind.split('_')[-1]}{i}"
                if kind == "lab_warm":
                    warm.wait_full(warm_hub, warm_prefix, POOL, since, timeout=300)
                    since = warm.log_offset(warm_hub)
                run = measured_run(hub, user)
                results["runs"][kind].append(run)
                marks = ", ".join(
                    f"{name} {run['marks'][name]:.2f}" for name, _ in MARKS if name in run["marks"]
                )
                say("browser", f"{LABELS[kind]} {i + 1}/{runs}: {run['seconds']:.2f} s ({marks})")
        warm_users = [u["name"] for u in warm_hub.api("GET", "/users").json()]
        served = warm.served_from_pool(warm_hub, 0, warm_users)
        results["from_pool"] = served
        say("browser", f"{served}/{len(warm_users)} warm runs came from the pool (the hub's log)")
    finally:
        for hub in hubs.values():
            hub.stop()
        spawn.cleanup_containers()
        spawn.release_mounts(workdir)
    results["summary"] = {
        kind: spawn.summary([r["seconds"] for r in runs_])
        for kind, runs_ in results["runs"].items()
    }
    return results
