"""The lab's Share entry in a real browser: teammates only, who has access, and a guest typing live."""

from __future__ import annotations

import contextlib

import pytest

from ..support.browser import Browser
from ..support.chromium import chromium_available, start_chromium
from ..support.hubconfig import PASSWORD, configured_config
from ..support.waiting import wait_until


@contextlib.contextmanager
def chromium():
    """The suite's one Chromium (tests/support/chromium.py): loopback only, no Selenium Manager."""
    missing = chromium_available()
    if missing:
        pytest.fail(f"{missing}; tests/run.sh installs them")
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


def _shown(driver, css: str) -> list:
    from selenium.webdriver.common.by import By

    return [e for e in driver.find_elements(By.CSS_SELECTOR, css) if e.is_displayed()]


def _log_in(driver, base: str, user: str, next_path: str = "") -> None:
    driver.get(f"{base}/hub/login" + (f"?next={next_path}" if next_path else ""))
    wait_until(lambda: _shown(driver, "#username_input"), 30, 0.1, what="the login form")
    _shown(driver, "#username_input")[0].send_keys(user)
    _shown(driver, "#password_input")[0].send_keys(PASSWORD)
    _shown(driver, "#login_submit")[0].click()
    wait_until(lambda: "/hub/login" not in driver.current_url, 30, 0.1, what=f"{user} signed in")


def _cell_text(driver) -> str:
    return driver.execute_script(
        "const e = document.querySelector('.jp-NotebookPanel .jp-Cell .cm-content');"
        "return e ? e.textContent : '';"
    )


def test_share_entry_lists_teammates_and_the_guest_edits_live(
    hub_factory, lab_image, lab_root, lab_prefix, tmp_path
):
    hub = hub_factory(configured_config(lab_image, lab_root, lab_prefix))
    for name in ("alice", "bob", "carol"):
        hub.create_user(name)
    for group, members in {"finance": ["alice", "bob"], "clinical": ["carol"]}.items():
        assert hub.api("POST", f"/groups/{group}", json={"users": members}).status_code == 201
    owner = Browser(hub.url)
    assert owner.login("alice", PASSWORD).status_code == 302
    owner.start_lab()

    cell = {
        "cell_type": "code",
        "metadata": {},
        "source": "plan",
        "id": "c1",
        "outputs": [],
        "execution_count": None,
    }
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {
        "cells": [cell],
        "metadata": {"kernelspec": kernel},  # no kernel dialog in front of the editor
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    put = owner.contents(
        "PUT", "work/plan.ipynb", json={"type": "notebook", "format": "json", "content": notebook}
    )
    assert put.status_code == 201, put.text

    with chromium() as driver, chromium() as guest:
        try:
            _log_in(driver, hub.url, "alice")
            driver.get(f"{hub.url}/user/alice/lab")
            share = '[data-command="collaboration:shared-link"]'
            wait_until(lambda: _shown(driver, share), 120, 0.2, what="the lab's Share entry")
            _shown(driver, share)[0].click()

            # the dialog lists bob (alice's team), never carol, nor alice herself
            people = ".jp-ManageSharesBody-user-item"
            wait_until(lambda: _shown(driver, people), 30, 0.2, what="teammates in the dialog")
            assert [e.text for e in _shown(driver, people)] == ["bob"]
            _shown(driver, people)[0].click()

            # shared: the hub has the share, and the dialog shows who has access
            def shared_with() -> list[str]:
                items = hub.api("GET", "/shares/alice/").json()["items"]
                return [item["user"]["name"] for item in items if item["user"]]

            wait_until(
                lambda: shared_with() == ["bob"], 30, 0.2, what="alice's lab shared with bob"
            )
            table = ".jp-ManageSharesBody-selected-users"
            wait_until(
                lambda: any("bob" in e.text for e in _shown(driver, table)),
                30,
                0.2,
                what="bob listed under 'Shared with'",
            )

            # live: bob types into alice's notebook at alice's URL, and alice's page shows it
            notebook_url = f"{hub.url}/user/alice/lab/tree/work/plan.ipynb"
            driver.get(notebook_url)
            wait_until(lambda: _cell_text(driver) == "plan", 120, 0.2, what="alice's notebook")
            # straight to alice's notebook: bob's own lab is not started
            _log_in(guest, hub.url, "bob", "/user/alice/lab/tree/work/plan.ipynb")
            authorize = "form button[type=submit]"  # the hub asks bob once to let alice's lab in
            wait_until(
                lambda: _shown(guest, authorize) or _cell_text(guest),
                60,
                0.2,
                what="the hub's access form or the notebook for bob",
            )
            if _shown(guest, authorize):
                _shown(guest, authorize)[0].click()
            wait_until(lambda: _cell_text(guest) == "plan", 120, 0.2, what="bob sees the notebook")
            from selenium.webdriver.common.keys import Keys

            _shown(guest, ".jp-NotebookPanel .jp-Cell .cm-content")[0].click()
            guest.switch_to.active_element.send_keys(Keys.END, " and bob")
            wait_until(
                lambda: _cell_text(driver) == "plan and bob",
                30,
                0.1,
                what="bob's typing in alice's page",
            )
        except Exception:
            driver.save_screenshot(str(tmp_path / "share-owner.png"))
            guest.save_screenshot(str(tmp_path / "share-guest.png"))
            (tmp_path / "share-guest.html").write_text(guest.current_url + "\n" + guest.page_source)
            (tmp_path / "share-guest.log").write_text(
                "\n".join(str(e) for e in guest.get_log("browser"))
            )
            raise
