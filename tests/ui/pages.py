"""Click-by-click helpers over the UI's visible words (labels and button texts, as seed 004 names them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.ui.browser import wait_for

SCREENSHOTS = os.environ.get("PICKET_UI_SCREENSHOTS")  # a folder (docs/ui) to write the README's screenshots into


def _quote(text: str) -> str:
    return f'"{text}"' if "'" in text else f"'{text}'"


class Page:
    def __init__(self, driver: Any, url: str) -> None:
        self.d = driver
        self.url = url

    def open(self, fragment: str = "#/policies") -> None:
        self.d.get("about:blank")
        self.d.get(self.url + fragment)
        wait_for(lambda: self.d.find_element(By.CSS_SELECTOR, "main h1"), what="the page")

    def scope(self, within: WebElement | str | None) -> Any:
        if within is None:
            return self.d
        if isinstance(within, str):
            return self.d.find_element(By.CSS_SELECTOR, within)
        return within

    def button(self, text: str, within: WebElement | str | None = None, last: bool = False) -> WebElement:
        def find() -> WebElement | None:
            found = [b for b in self.scope(within).find_elements(
                By.XPATH, f".//button[normalize-space()={_quote(text)}]") if b.is_displayed()]
            return (found[-1] if last else found[0]) if found else None
        return wait_for(find, what=f"button {text!r}")

    def click(self, text: str, within: WebElement | str | None = None, last: bool = False) -> None:
        element = self.button(text, within, last)
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def field(self, label: str, within: WebElement | str | None = None, last: bool = True) -> WebElement:
        """The input, select or textarea a visible label names (the newest one, by default)."""
        def find() -> WebElement | None:
            labels = self.scope(within).find_elements(By.XPATH, ".//label")
            hits = [lab for lab in labels if lab.is_displayed() and lab.text.strip().split("\n")[0].strip() == label]
            if not hits:
                return None
            lab = hits[-1] if last else hits[0]
            return self.d.find_element(By.ID, lab.get_attribute("for"))
        return wait_for(find, what=f"field {label!r}")

    def type(self, label: str, text: str, within: WebElement | str | None = None) -> None:
        element = self.field(label, within)
        element.clear()
        element.send_keys(text)

    def choose(self, label: str, option: str, within: WebElement | str | None = None) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.field(label, within)).select_by_visible_text(option)

    def checkbox(self, label: str, within: WebElement | str | None = None) -> WebElement:
        return self.field(label, within)

    def text(self, css: str) -> str:
        """The element's text; the preview re-renders while we read, so a stale element is read again."""
        from selenium.common.exceptions import StaleElementReferenceException

        for _ in range(20):
            try:
                return str(self.d.find_element(By.CSS_SELECTOR, css).text)
            except StaleElementReferenceException:
                continue
        return str(self.d.find_element(By.CSS_SELECTOR, css).text)

    def wait_text(self, css: str, needle: str, timeout: float = 10.0) -> str:
        return str(wait_for(lambda: needle in self.text(css) and self.text(css), timeout,
                            what=f"{needle!r} in {css}"))

    def row(self, name: str) -> WebElement:
        return wait_for(lambda: self.d.find_element(By.XPATH, f"//table[@id='policies']//tr[th[normalize-space()="
                                                               f"{_quote(name)}]]"), what=f"row {name}")

    def screenshot(self, name: str) -> None:
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            self.d.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))
