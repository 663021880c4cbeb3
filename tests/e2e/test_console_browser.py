"""End to end in a real browser: ``connector serve`` and its console, driven by Selenium in Debian's
headless Chromium (``/usr/bin/chromium`` + ``/usr/bin/chromedriver``; ``make browser-deps`` installs them).

An admin opens the console URL ``connector serve`` prints (token in the fragment), sets up the Exact
Online company entity through every setup step (Exact's OAuth consent in a pop-up window, integration
details, VAT-code links, ledger accounts per VAT rate, discount accounts), starts a sync over the sample
e-invoices, sees the buttons disabled while it runs and the run end in Warning with its skipped
document, opens "View details", and checks every booking number the console shows against the entries
in the Exact sandbox (read with Exact's own API). One screenshot per step goes to
``out/console-screenshots/`` (``CONSOLE_SCREENSHOTS`` to change); with ``UPDATE_SCREENSHOTS=1`` the ones
the README shows are copied to ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from connector.local.stack import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS") or PROJECT_ROOT / "out" / "console-screenshots")
README_SHOTS = ("05-console-after-sync.png", "06-view-details.png")
DOCS_SHOTS = PROJECT_ROOT / "docs" / "screenshots"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,1000",
)
SKIPPED_DOCUMENT = "V01/15000019"  # its line amounts have 3 decimals, EN 16931 BR-DEC-23 allows 2 (sample_data/ubl)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="Debian's Chromium is not installed (/usr/bin/chromium, /usr/bin/chromedriver): run `make browser-deps` "
        "or `apt-get install -y chromium chromium-driver`",
    ),
]


def read_env(path: Path) -> dict[str, str]:
    """The ``export NAME=value`` lines of an env file as a dict."""
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = shlex.split(value)[0] if value else ""
    return values


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[dict[str, str]]:
    """``connector serve`` as a user runs it (its own process, any free port); stopped with Ctrl-C."""
    folder = tmp_path_factory.mktemp("serve")
    env_file = folder / "serve.env"
    log = (folder / "serve.log").open("w+")
    command = [str(Path(sys.executable).parent / "connector"), "serve", "--port", "0", "--env-file", str(env_file)]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not env_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"connector serve did not start:\n{log.read()}")
            time.sleep(0.2)
        yield read_env(env_file)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        log.seek(0)
        output = log.read()
        log.close()
    assert code == 0, f"connector serve did not stop cleanly on Ctrl-C (exit {code}):\n{output}"
    assert "stopped" in output


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium through chromedriver, both Debian's (nothing is downloaded)."""
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


class Shots:
    """Screenshots of the steps: the viewport, or one element of the page (clipped, scrolled into view)."""

    def __init__(self, driver: object, folder: Path) -> None:
        self.driver = driver
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        self.taken: list[Path] = []

    def __call__(self, name: str, element: object | None = None, until: object | None = None) -> Path:
        """Save ``name``: the viewport, or ``element`` (down to the bottom of ``until`` when given)."""
        import base64

        path = self.folder / name
        if element is None:
            self.driver.save_screenshot(str(path))
        else:
            box = (
                "const r = arguments[0].getBoundingClientRect(); const e = (arguments[1] || arguments[0]).getBoundingClientRect();"
                "return {x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: e.bottom - r.top};"
            )
            rect = self.driver.execute_script(box, element, until)
            pad = 8
            clip = {"x": max(rect["x"] - pad, 0), "y": max(rect["y"] - pad, 0), "width": rect["width"] + 2 * pad, "height": rect["height"] + 2 * pad, "scale": 1}
            data = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "clip": clip, "captureBeyondViewport": True})
            path.write_bytes(base64.b64decode(data["data"]))
        self.taken.append(path)
        return path


def exact_entries(env: dict[str, str]) -> dict[tuple[str, int], str]:
    """(YourRef, Type) -> EntryNumber of every sales entry in the Exact sandbox, read as a third-party
    client would (OAuth code flow, OData with ``__next`` paging)."""
    exact, client_id, secret = env["EXACT"], env["EXACT_CLIENT_ID"], env["EXACT_CLIENT_SECRET"]
    redirect = "https://test.example/callback"
    consent = httpx.get(f"{exact}/api/oauth2/auth", params={"client_id": client_id, "redirect_uri": redirect, "response_type": "code"})
    code = parse_qs(urlparse(consent.headers["Location"]).query)["code"][0]
    token = httpx.post(f"{exact}/api/oauth2/token", data={"grant_type": "authorization_code", "client_id": client_id, "client_secret": secret, "code": code, "redirect_uri": redirect}).json()["access_token"]
    url: str | None = f"{exact}/api/v1/{env['EXACT_DIVISION']}/salesentry/SalesEntries"
    params: dict[str, str] | None = {"$select": "EntryNumber,YourRef,Type,Journal"}
    entries = {}
    while url:
        page = httpx.get(url, params=params, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
        assert page.status_code == 200, page.text
        body = page.json()["d"]
        entries.update({(row["YourRef"].strip(), int(row["Type"])): str(row["EntryNumber"]) for row in body["results"]})
        url, params = body.get("__next"), None
    return entries


def test_console_sets_up_exact_syncs_and_shows_the_details(served, browser):
    try:
        _walk_through_the_console(served, browser)
    except BaseException:
        # For the post-mortem: what the page showed, its DOM and the browser's console.
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / "failure.png"))
        (SHOTS / "failure.html").write_text(browser.page_source)
        (SHOTS / "failure-console.log").write_text("\n".join(str(entry) for entry in browser.get_log("browser")))
        raise


def _walk_through_the_console(served: dict[str, str], browser: object) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = browser
    # the console re-renders a panel after each answer: an element found just before is then gone, and
    # the condition is checked again rather than failing (Selenium's documented remedy)
    wait = WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,))
    shot = Shots(driver, SHOTS)

    def status_of_entity() -> str:
        return driver.find_element(By.CSS_SELECTOR, "#entity-title .badge").text

    def step_done(key: str) -> bool:
        return bool(driver.find_elements(By.CSS_SELECTOR, f"#step-{key} .step-state.done"))

    def ready_step(key: str) -> object:
        """The step's form once the panel shows it open and enabled (after the re-render of a save)."""
        return wait.until(lambda d: next((f for f in d.find_elements(By.CSS_SELECTOR, f"#step-{key}[open] #{key}-form fieldset:enabled") if f.is_displayed()), False))

    def save_step(key: str) -> None:
        form = ready_step(key)
        form.find_element(By.XPATH, ".//button[starts-with(normalize-space(), 'Fill in the sandbox')]").click()
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda d: step_done(key))

    # 1. The console URL carries the token in its fragment; the page keeps it in memory only.
    driver.get(served["CONSOLE_URL"])
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#entities tbody tr")) == 3)
    assert "token" not in driver.current_url and urlparse(driver.current_url).fragment == ""
    assert driver.execute_script("return window.localStorage.length + window.sessionStorage.length") == 0
    statuses = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#entities tbody .badge")]
    assert statuses == ["Not connected"] * 3
    assert not driver.find_element(By.ID, "sync-all").is_enabled()
    shot("01-entities.png")

    # 2. Connect Exact Online: its consent runs in a pop-up window that hands the code back and closes.
    driver.find_element(By.CSS_SELECTOR, "button[aria-label='Open Demo Exact Online BV']").click()
    form = wait.until(ec.visibility_of_element_located((By.ID, "connect-form")))
    assert Select(driver.find_element(By.ID, "connect-tool")).first_selected_option.get_attribute("value") == "exact"
    form.find_element(By.XPATH, ".//button[starts-with(normalize-space(), 'Fill in the sandbox')]").click()
    assert driver.find_element(By.ID, "connect-division").get_attribute("value") == "1"
    main_window = driver.current_window_handle
    driver.find_element(By.ID, "connect-submit").click()
    wait.until(lambda d: status_of_entity() == "Configuration needed")
    assert driver.window_handles == [main_window]  # the pop-up closed itself
    shot("02-connected.png", driver.find_element(By.ID, "entity-panel"))

    # 3. Details: start date and journals (the wizard offers only journals of an accepted type).
    ready_step("details")
    assert driver.find_element(By.ID, "details-start").get_attribute("value") == "2007-01-01"
    invoices = Select(driver.find_element(By.ID, "journal-outgoing_invoices"))
    assert [o.get_attribute("value") for o in invoices.options] == ["", "70"]
    credit_notes = Select(driver.find_element(By.ID, "journal-outgoing_credit_notes"))
    assert credit_notes.first_selected_option.get_attribute("value") == "71"
    driver.find_element(By.CSS_SELECTOR, "#details-form button[type=submit]").click()
    wait.until(lambda d: status_of_entity() == "Connected" and step_done("details"))
    save_step("vat")
    save_step("ledger")
    save_step("discounts")
    assert [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#entities tbody .badge")][0] == "Connected"
    shot("03-setup-done.png", driver.find_element(By.ID, "entity-panel"))

    # 4. Sync: the buttons are disabled while it runs; it ends in Warning (one document skipped).
    sync_one = driver.find_element(By.ID, "sync-one")
    assert sync_one.is_enabled()
    sync_one.click()
    wait.until(lambda d: not d.find_element(By.ID, "sync-all").is_enabled() and not d.find_element(By.ID, "sync-one").is_enabled())
    row_sync = driver.find_element(By.CSS_SELECTOR, "button[aria-label='Sync Demo Exact Online BV']")
    assert not row_sync.is_enabled()
    shot("04-sync-running.png")
    # the badge is re-rendered while the run goes on: a reference can go stale between find and read
    WebDriverWait(driver, 45, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#run-title .badge") and d.find_element(By.CSS_SELECTOR, "#run-title .badge").text != "Running"
    )
    assert driver.find_element(By.CSS_SELECTOR, "#run-title .badge").text == "Warning"
    wait.until(lambda d: d.find_element(By.ID, "sync-one").is_enabled() and d.find_element(By.ID, "sync-all").is_enabled())
    history = driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert len(history) == 1 and "Warning" in history[0].text
    components = {r.find_element(By.TAG_NAME, "th").text: r.find_elements(By.TAG_NAME, "td")[0].text for r in driver.find_elements(By.CSS_SELECTOR, "table.components tbody tr")}
    assert components["Outgoing invoices"] == "Warning" and components["Ledger accounts"] == "Success"
    wait.until(lambda d: "Accounting sync finished: Warning" in d.find_element(By.ID, "notifications").text)
    driver.execute_script("window.scrollTo(0, 0)")
    shot("05-console-after-sync.png")

    # 5. View details: the skipped document with its reason, fix hint and id; booking numbers as in Exact.
    rows = driver.find_elements(By.CSS_SELECTOR, "table.details tr.detail-row")
    skipped = [r for r in rows if r.get_attribute("data-outcome") == "skipped"]
    assert [r.find_element(By.TAG_NAME, "th").text for r in skipped] == [SKIPPED_DOCUMENT]
    button = skipped[0].find_element(By.CSS_SELECTOR, "button[aria-expanded]")
    button.click()
    panel = driver.find_element(By.ID, button.get_attribute("aria-controls"))
    assert panel.is_displayed() and button.get_attribute("aria-expanded") == "true"
    text = panel.text
    assert "Reason" in text and "BR-DEC-23" in text and "9.4650" in text
    assert "How to fix" in text and "Round the document's amounts to the cent" in text
    assert "invoice " in text  # the host object to open: "invoice <id>"

    entries = exact_entries(served)
    checked = 0
    for row in rows:
        cells = row.find_elements(By.TAG_NAME, "td")
        component, booking = cells[0].text, cells[2].text
        if row.get_attribute("data-outcome") == "skipped" or component not in ("Outgoing invoices", "Outgoing credit notes"):
            assert booking == "—"
            continue
        number = row.find_element(By.TAG_NAME, "th").text
        entry_type = 20 if component == "Outgoing invoices" else 21
        assert booking != "—", (
            f"{number}: no booking number shown; the console shows details[].booking_number of GET /v1/syncs/{{run_id}} "
            "(DocumentDetail.booking_number, filled by connector.api.activity.run_details)"
        )
        assert booking == entries[(number, entry_type)], f"{number}: the console shows {booking!r}, Exact has {entries.get((number, entry_type))!r}"
        checked += 1
    assert checked >= 5, "too few booked documents flagged to compare booking numbers"
    flagged = next(r for r in rows if r.get_attribute("data-outcome") == "synced" and r.find_elements(By.TAG_NAME, "td")[0].text == "Outgoing invoices")
    flagged_button = flagged.find_element(By.CSS_SELECTOR, "button[aria-expanded]")
    flagged_button.click()
    flagged_panel = driver.find_element(By.ID, flagged_button.get_attribute("aria-controls"))
    assert "Booking number" in flagged_panel.text
    shot("06-view-details.png", driver.find_element(By.ID, "run-title"), until=flagged_panel)

    # 6. Keyboard: the details toggle works with Enter; the starter's notification says Warning.
    from selenium.webdriver.common.keys import Keys

    button.send_keys(Keys.ENTER)
    assert button.get_attribute("aria-expanded") == "false" and not panel.is_displayed()
    notification = driver.find_element(By.CSS_SELECTOR, "#notifications li")
    assert "Outgoing invoices: 16 synced, 1 skipped" in notification.text
    shot("07-notifications.png", notification)

    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        for name in README_SHOTS:
            shutil.copyfile(SHOTS / name, DOCS_SHOTS / name)
