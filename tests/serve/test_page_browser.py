"""The page at ``GET /``, in a real headless browser (Debian's Chromium through Selenium): pick a user, read the
top-10, open an explanation, search, click an item and watch the list change. Saves a screenshot."""

import os
import shutil
from pathlib import Path

import pytest

from graphrec.serve.process import ServerProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    if not CHROMIUM or not DRIVER:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver (.ci/run does)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def test_the_page_recommends_explains_searches_and_records_clicks(served, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser()
    run = served("lightgcn")
    try:
        with ServerProcess(run) as server:
            driver.get(server.url + "/")
            wait = WebDriverWait(driver, 30)
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recs li button.item")) == 10)
            user = driver.find_element(By.ID, "user").get_attribute("value")
            titles = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "#recs li button.item")]
            assert all(t.startswith("Product") for t in titles)

            # the explanation picture of the first item
            driver.find_element(By.CSS_SELECTOR, "#recs li details summary").click()
            img = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#recs li details img")))
            wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) > 100)

            # search, blended with the user's scores
            driver.find_element(By.ID, "q").send_keys("a red thing")
            driver.find_element(By.CSS_SELECTOR, "#searchform button").click()
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results li")) > 0)

            # a click records an interaction; the list changes and leaves the item out
            first = driver.find_element(By.CSS_SELECTOR, "#recs li button.item")
            clicked = first.get_attribute("data-item")
            first.click()
            wait.until(lambda d: "recorded" in d.find_element(By.ID, "status").text)
            wait.until(lambda d: clicked not in [b.get_attribute("data-item")
                                                 for b in d.find_elements(By.CSS_SELECTOR, "#recs li button.item")])
            shot = Path(os.environ.get("GRAPHREC_ARTIFACTS", tmp_path)) / "serve-page.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(shot))
            assert shot.stat().st_size > 10_000
            import httpx

            health = httpx.get(server.url + "/health").json()
            assert health["events"] == 1
            listed = httpx.get(server.url + "/recommend", params={"user": user, "k": 24}).json()["items"]
            assert clicked not in [x["item"] for x in listed]
    finally:
        driver.quit()
