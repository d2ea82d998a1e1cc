"""A real browser for the suite: Debian's Chromium driven by selenium, kept to loopback.

Selenium Manager never runs (the driver is named, SE_OFFLINE is set): it would download
drivers and send statistics. Every request the browser makes is recorded from its
performance log, and anything not addressed to loopback is sent to a proxy that is not
there, so a lab page that calls an outside host fails to reach it and the test sees it.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Hosts the browser may reach: this machine only.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: Schemes that never leave the browser.
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome", "chrome-extension", "devtools"})
#: Nothing listens here: every request for a non-loopback host fails at this "proxy".
DEAD_PROXY = "http://127.0.0.1:9"
#: Chromium drops requests in flight, loopback's too, when the machine's network interfaces
#: change: Docker adds one for every container it starts. Not an error of the page.
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"


def chromium_available() -> str | None:
    """None when Chromium and its driver are installed, else what is missing (one sentence)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        return f"{' and '.join(missing)} missing (apt-get install chromium chromium-driver)"
    return None


def chromium_arguments(window: str = "1400,900") -> list[str]:
    """Chromium's command-line switches: headless, loopback only, no background calls home."""
    return [
        "--headless=new",
        "--no-sandbox",
        "--ignore-certificate-errors",
        f"--window-size={window}",
        # loopback bypasses any proxy; everything else goes to one that is not there
        f"--proxy-server={DEAD_PROXY}",
        # and no name resolves but loopback's, so even a DNS prefetch stays on this machine
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-domain-reliability",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-dev-shm-usage",
    ]


def start_chromium(window: str = "1400,900"):
    """A headless Chromium session, its console and network events recorded for reading."""
    # imported here: collecting the suite must not need selenium where no browser runs
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"
    os.environ["SE_AVOID_STATS"] = "true"
    options = Options()
    options.binary_location = CHROMIUM
    for argument in chromium_arguments(window):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


def is_loopback(url: str) -> bool:
    """True for a URL that stays on this machine (loopback host, or a browser-local scheme)."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return (parts.hostname or "") in LOOPBACK_HOSTS


class NetworkChanged(TimeoutError):
    """Chromium dropped the page's requests because the machine's interfaces changed."""


@dataclass
class BrowserRecord:
    """What the browser did: every URL it asked for, and every error its console logged."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    #: requests Chromium dropped because an interface of the machine changed
    network_changes: list[str] = field(default_factory=list)
    #: request id -> url, method, wall time sent, and the browser's clock when sent and finished
    timings: dict[str, dict] = field(default_factory=dict)

    def outside(self) -> list[str]:
        """Requests to any host but loopback (the lab must make none)."""
        return [url for url in self.requests if not is_loopback(url)]


class Chromium:
    """One browser, its record, and the few things a test does with a JupyterLab page."""

    def __init__(self, driver):
        self.driver = driver
        self.record = BrowserRecord()

    # --- what the browser logged ------------------------------------------------

    def drain(self) -> BrowserRecord:
        """Move the browser's pending console and network events into ``self.record``."""
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            method, params = message.get("method", ""), message.get("params", {})
            if method == "Network.requestWillBeSent":
                request = params["request"]
                self.record.requests.append(request["url"])
                self.record.timings.setdefault(
                    params["requestId"],
                    {
                        "url": request["url"],
                        "method": request["method"],
                        "sent": params.get("wallTime"),
                        "sent_ts": params.get("timestamp"),
                    },
                )
            elif method == "Network.webSocketCreated":
                self.record.requests.append(params["url"])
            elif method == "Network.loadingFinished" and params["requestId"] in self.record.timings:
                self.record.timings[params["requestId"]]["finished_ts"] = params["timestamp"]
        for entry in self.driver.get_log("browser"):
            line = f"{entry['level']} {entry['message']}"
            self.record.console.append(line)
            if entry["level"] == "SEVERE" and NETWORK_CHANGED in entry["message"]:
                self.record.network_changes.append(entry["message"])
            elif entry["level"] == "SEVERE":
                self.record.console_errors.append(entry["message"])
        return self.record

    def retry_on_network_change(self, action, attempts: int = 3):
        """Run ``action()``; when it times out after Chromium dropped requests, run it again.

        Only a drop the machine caused (a container starting) earns a retry; any other
        failure, or a third drop, fails as it came.
        """
        for attempt in range(attempts):
            self.drain()
            self._changes_seen = len(self.record.network_changes)
            try:
                return action()
            except TimeoutError:
                self.drain()
                dropped = len(self.record.network_changes) > self._changes_seen
                if not dropped or attempt == attempts - 1:
                    raise

    def check_network(self) -> None:
        """Raise NetworkChanged if Chromium dropped requests since the current attempt began."""
        self.drain()
        if len(self.record.network_changes) > getattr(self, "_changes_seen", 1 << 30):
            raise NetworkChanged(self.record.network_changes[-1])

    def save(self, stem: Path) -> tuple[Path, Path]:
        """Write a screenshot (``stem.png``) and the console and request log (``stem.log``)."""
        stem.parent.mkdir(parents=True, exist_ok=True)
        png, log = stem.with_suffix(".png"), stem.with_suffix(".log")
        self.driver.save_screenshot(str(png))
        try:
            self.drain()
        except Exception as err:  # a dead browser still leaves what was drained before
            self.record.console.append(f"(the browser's logs could not be read: {err})")
        lines = [f"url: {self.driver.current_url}", "", "== console", *self.record.console]
        lines += ["", "== requests", *self.record.requests]
        log.write_text("\n".join(lines) + "\n")
        return png, log

    # --- finding things on the page -------------------------------------------

    def find(self, css: str, timeout: float = 30.0, visible: bool = True):
        """The first element matching ``css``, waited for up to ``timeout`` seconds."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        def found():
            for element in self.driver.find_elements(By.CSS_SELECTOR, css):
                if not visible or element.is_displayed():
                    return element
            return None

        return wait_until(
            found,
            timeout,
            0.1,
            what=f"{css!r} on {self.driver.current_url}",
            retry_on=(StaleElementReferenceException,),
        )

    def all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text_of(self, css: str) -> list[str]:
        return [element.text for element in self.all(css)]

    # --- the hub ----------------------------------------------------------------

    def log_in(self, base: str, user: str, password: str) -> float:
        """Fill in the hub's login form and click "Sign in"; return the click's monotonic time."""
        self.driver.get(f"{base}/hub/login")
        self.find("#username_input").send_keys(user)
        self.find("#password_input").send_keys(password)
        button = self.find("#login_submit")
        clicked = time.monotonic()
        button.click()
        return clicked

    # --- JupyterLab -------------------------------------------------------------

    def wait_for_lab(self, timeout: float = 120.0) -> None:
        """Until JupyterLab has drawn its file browser (the app has started)."""
        self.find(".jp-DirListing-content", timeout)

    def listing(self) -> set[str]:
        """The names the file browser shows in its current folder."""
        return {name for name in self.text_of(".jp-DirListing-itemName") if name}

    def menu(self, menu: str, command: str, timeout: float = 30.0) -> None:
        """Open ``menu`` in the menu bar and click the item that runs JupyterLab's ``command``."""
        item = wait_until(
            lambda: next((i for i in self.all(".lm-MenuBar-item") if i.text.strip() == menu), None),
            timeout,
            0.2,
            what=f"menu {menu!r} in the menu bar",
        )
        item.click()
        self.find(f'.lm-Menu-item[data-command="{command}"]', timeout).click()

    def open_notebook(self, url: str, kernel: str, timeout: float = 60.0) -> None:
        """Load a notebook's page and wait until its ``kernel`` (display name) is idle.

        The name matters: JupyterLab may start a default kernel first and swap it for the
        notebook's own once the document has loaded; cells run before that are lost.
        """

        def named() -> bool:
            self.check_network()
            return any(kernel in name for name in self.text_of(".jp-Toolbar-kernelName"))

        def load() -> None:
            self.driver.get(url)
            self.find(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout)
            wait_until(named, timeout, 0.25, what=f"the {kernel} kernel chosen")
            self.kernel_idle(timeout)

        self.retry_on_network_change(load)

    def kernel_idle(self, timeout: float = 300.0) -> None:
        """Until the open notebook's kernel is ready and idle with no cell queued."""

        def idle() -> bool:
            self.check_network()
            status = self.all(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator")
            state = status[0].get_attribute("data-status") if status else None
            queued = any("*" in cell["prompt"] for cell in self.code_cells())
            return state == "idle" and not queued

        from selenium.common.exceptions import WebDriverException

        # a drop by the machine ends the wait at once (NetworkChanged is no WebDriverException)
        wait_until(
            idle,
            timeout,
            0.25,
            what="the notebook's kernel idle with no cell queued",
            retry_on=(WebDriverException,),
        )

    def run_all(self, timeout: float = 600.0) -> list[dict]:
        """Run every cell (Run > Run All Cells) and return the code cells once all have run."""
        from selenium.common.exceptions import WebDriverException

        def all_ran() -> list[dict] | None:
            self.check_network()
            cells = self.code_cells()
            done = cells and all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in cells)
            return cells if done else None

        def run() -> list[dict]:
            self.menu("Run", "runmenu:run-all")
            return wait_until(
                all_ran,
                timeout,
                0.25,
                what="every code cell run (a number in [ ])",
                retry_on=(WebDriverException,),
            )

        return self.retry_on_network_change(run)

    def code_cells(self) -> list[dict]:
        """Each code cell of the open notebook: its source, prompt and outputs by MIME type.

        textContent, not innerText: JupyterLab leaves cells outside the window unrendered.
        """
        return self.driver.execute_script(
            """
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            if (!panel) return [];
            return [...panel.querySelectorAll('.jp-CodeCell')].map(cell => ({
                source: (cell.querySelector('.cm-content') || {}).textContent || '',
                prompt: ((cell.querySelector('.jp-InputArea-prompt') || {}).textContent || '')
                    .replace(/\\s/g, ''),
                outputs: [...cell.querySelectorAll('.jp-OutputArea-output')].map(o => ({
                    mime: o.getAttribute('data-mime-type') || '',
                    text: (o.textContent || '').slice(0, 2000),
                })),
            }));
            """
        )

    def take_problems(self) -> tuple[list[str], list[str]]:
        """The console errors and the non-loopback requests seen since the last call."""
        self.drain()
        errors, outside = self.record.console_errors[:], self.record.outside()
        self.record.console_errors.clear()
        self.record.requests[:] = [url for url in self.record.requests if is_loopback(url)]
        return errors, outside
