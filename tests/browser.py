"""The server's web page in a real browser (Debian's chromium and chromium-driver, driven by selenium), for the
page's tests on the tiny model and on the real one. ``page()`` skips a test where the browser is missing."""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import pytest

WIDTHS = (1280, 390)  # a laptop's window and a phone's
TIMEOUT_S = 120


@contextlib.contextmanager
def page(url: str, key: str | None = None):
    """A Page on ``url``, the key typed into its API key box when given; the browser quits afterwards."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    browser, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver_path:
        pytest.skip("Debian's chromium and chromium-driver are missing (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    try:
        driver.set_page_load_timeout(30)
        yield Page(driver, url, key)
    finally:
        driver.quit()


class Page:
    def __init__(self, driver, url: str, key: str | None) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver, self.url, self.key, self.by = driver, url, key, By
        self.wait = WebDriverWait(driver, TIMEOUT_S)
        self.width = WIDTHS[0]

    # -- the window ----------------------------------------------------------------------------------------------

    def load(self, width: int) -> None:
        """The page at ``width`` CSS pixels (below 600 as a phone: its viewport meta applies), ready to use."""
        self.width = width
        self._viewport(900)
        self.driver.get(self.url)
        ready = "body[data-ready='true']"
        if self.key and self.until(f"{ready}, #key-box.needed").tag_name != "body":  # the page asks for its key
            self.one("#key").send_keys(self.key, "\n")
        self.until(ready)

    def _viewport(self, height: int) -> None:
        metrics = {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": self.width < 600}
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)

    def screenshot(self, path: Path) -> Path:
        """The whole page (not only the window) as a PNG."""
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self._viewport(max(900, height))
        self.driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.2)  # one frame at the new size
        self.driver.save_screenshot(str(path))
        self._viewport(900)
        return path

    def overflows(self) -> bool:
        """Whether anything sticks out sideways (a phone would scroll the whole page left and right)."""
        return self.driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth")

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    # -- elements ------------------------------------------------------------------------------------------------

    def one(self, css: str, root=None):
        return (root or self.driver).find_element(self.by.CSS_SELECTOR, css)

    def all(self, css: str, root=None) -> list:
        return (root or self.driver).find_elements(self.by.CSS_SELECTOR, css)

    def until(self, css: str):
        """The first element ``css`` finds, once there is one."""
        return self.wait.until(lambda d: self.all(css))[0]

    def until_class(self, element, name: str):
        """``element`` once it has the class ``name`` (a reply "done" or "stopped")."""
        self.wait.until(lambda d: name in element.get_attribute("class").split())
        return element

    def text(self, element) -> str:
        """What the element holds, as written (not as CSS shows it: upper case, clamped lines)."""
        return self.driver.execute_script("return arguments[0].textContent", element)

    # -- doing things ----------------------------------------------------------------------------------------------

    def tab(self, name: str) -> None:
        self.one(f"#tabs [data-tab='{name}']").click()
        self.wait.until(lambda d: self.one(f"#panel-{name}").is_displayed())

    def fill(self, root, fields: dict) -> None:
        """Type each value into the control of that name; True ticks a checkbox; hidden ones are shown first."""
        for name, value in fields.items():
            control = self.one(f"[name='{name}']", root)
            self.driver.execute_script("let d = arguments[0].closest('details'); if (d) d.open = true", control)
            if value is True:
                if not control.is_selected():
                    control.click()
                continue
            control.clear()
            control.send_keys(str(value))

    def run(self, task: str, fields: dict):
        """Fill the task's form, run it, and give its result once drawn."""
        self.tab(task)
        form = self.one(f"#task-{task}")
        for old in self.all(".result.done", form):  # the result of an earlier run is not this one
            self.driver.execute_script("arguments[0].classList.remove('done')", old)
        self.fill(form, fields)
        self.one("button[type=submit]", form).click()
        return self.until(f"#task-{task} .result.done")

    def say(self, message: str):
        """Send a chat message; the reply's element (still streaming)."""
        self.tab("chat")
        before = len(self.all("#log .msg.assistant"))
        self.one("#message").send_keys(message)
        self.one("#send").click()
        return self.wait.until(lambda d: self.all("#log .msg.assistant")[before:])[0]
