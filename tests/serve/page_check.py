#!/usr/bin/env python3
"""Drive the `medai serve` web page (GET /) in headless Chromium.

usage: python3 tests/serve/page_check.py URL TOKEN IMAGE
       python3 tests/serve/page_check.py URL TOKEN text:DOCUMENT   (first model a text model)
       PAGE_SCREENSHOT=shot.png saves a screenshot of the rendered result.
needs: pip install selenium; apt-get install chromium chromium-driver

Checks: a wrong token shows an error in #error; the right token fills select#model; the model
card appears in pre#card; uploading IMAGE through input#file renders a result
(#result[data-state=done]) whose #label is a class name, with one .bar per class in #probs and
a decoded Grad-CAM overlay (img#overlay naturalWidth > 0). With text:DOCUMENT the document is
typed into textarea#text instead and submitted with button#analyse; the result must show the
label and bars, and #highlight must reproduce the document with at least one shaded <mark>
token. Exit status 0 on success, 1 on failure (with the reason).
"""
import json
import os
import sys
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def wait(driver, seconds, what, cond):
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda d: cond(d))
    except TimeoutException:
        raise CheckFailed(f"timed out after {seconds} s waiting for {what}") from None


def models_of(url, token):
    req = urllib.request.Request(url.rstrip("/") + "/v1/models",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return {m["name"]: m for m in json.load(r)["models"]}


def run(driver, url, token, image):
    driver.get(url)
    for id_ in ("token", "login", "model", "file", "drop", "result", "label", "probs", "overlay", "card"):
        check(driver.find_elements(By.ID, id_), f"the page has no #{id_}")
    body = driver.find_element(By.TAG_NAME, "body").text.lower()
    check("not a diagnosis" in body or "decision support" in body,
          "the page does not say the result is decision support, not a diagnosis")

    # A wrong token must be refused with a visible error, and the app must stay hidden.
    tok = driver.find_element(By.ID, "token")
    tok.clear()
    tok.send_keys("mdai_" + "x" * 43)
    driver.find_element(By.ID, "login").click()
    err = wait(driver, 10, "an error in #error after a wrong token",
               lambda d: d.find_element(By.ID, "error").text.strip() or None)
    check(not driver.find_element(By.ID, "model").is_displayed(),
          f"the model picker is shown after a wrong token (error: {err!r})")

    # The right token fills the model picker and shows the first model's card.
    tok = driver.find_element(By.ID, "token")
    tok.clear()
    tok.send_keys(token)
    driver.find_element(By.ID, "login").click()
    wait(driver, 10, "select#model to be filled (or an error)",
         lambda d: d.execute_script("return document.getElementById('model').options.length") > 0
         or d.find_element(By.ID, "error").text.strip())
    err = driver.find_element(By.ID, "error").text.strip()
    check(err == "", f"signing in with TOKEN failed: the page shows {err!r}")
    name = driver.execute_script("return document.getElementById('model').value")
    models = models_of(url, token)
    check(name in models, f"select#model value {name!r} is not a served model {sorted(models)}")
    classes = models[name]["classes"]
    wait(driver, 10, "the model card in pre#card",
         lambda d: (lambda t: t and not t.startswith("Loading") and not t.startswith("Choose"))(
             d.find_element(By.ID, "card").text.strip()))
    check(len(driver.find_element(By.ID, "card").text.strip()) > 20, "pre#card is (nearly) empty")

    doc = image[len("text:"):] if image.startswith("text:") else None
    if doc is not None:
        area = driver.find_element(By.ID, "text")
        check(area.is_displayed(), "textarea#text is not shown for a text model")
        check(not driver.find_element(By.ID, "drop").is_displayed(),
              "the image drop zone is shown for a text model")
        area.send_keys(doc)
        driver.find_element(By.ID, "analyse").click()
    else:
        # Upload the image and wait for the rendered prediction.
        driver.find_element(By.ID, "file").send_keys(os.path.abspath(image))
    state = wait(driver, 30, "#result[data-state=done]",
                 lambda d: (lambda s: s if s in ("done", "error") else None)(
                     d.find_element(By.ID, "result").get_attribute("data-state")))
    if state == "error":
        raise CheckFailed("the page reported an error: " + driver.find_element(By.ID, "error").text)
    label = driver.find_element(By.ID, "label").text.strip()
    check(label in classes, f"#label {label!r} is not one of the classes {classes}")
    bars = driver.find_elements(By.CSS_SELECTOR, "#probs .bar")
    check(len(bars) == len(classes), f"#probs has {len(bars)} .bar, expected {len(classes)}")
    for c in classes:
        check(any(c in b.text and "%" in b.text for b in bars), f"no bar shows class {c!r} with a percentage")
    decision = driver.find_element(By.ID, "decision").text.strip()
    if doc is not None:
        shown = driver.find_element(By.ID, "highlight").text
        check(" ".join(shown.split()) == " ".join(doc.split()),
              f"#highlight shows {shown!r}, not the document")
        marks = [m.text for m in driver.find_elements(By.CSS_SELECTOR, "#highlight mark")]
        check(marks, "#highlight has no shaded token")
        return {"model": name, "label": label, "decision": decision or None,
                "bars": [b.text.replace("\n", " ") for b in bars], "marked": marks}
    width = driver.execute_script("const i = document.getElementById('overlay');"
                                  "return i.complete ? i.naturalWidth : 0")
    check(width > 0, "img#overlay is not a decoded image (naturalWidth 0)")
    decision = driver.find_element(By.ID, "decision").text.strip()
    return {"model": name, "label": label, "decision": decision or None,
            "bars": [b.text.replace("\n", " ") for b in bars], "overlay_width": width}


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: python3 tests/serve/page_check.py URL TOKEN IMAGE")
    url, token, image = sys.argv[1:]
    if not image.startswith("text:") and not os.path.isfile(image):
        sys.exit(f"page_check: FAILED: no such image file {image}")
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,1100"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")),
                                  options=opts)
    except WebDriverException as e:
        sys.exit(f"page_check: FAILED: cannot start headless Chromium: {e.msg}")
    rc = 0
    try:
        out = run(driver, url, token, image)
        print(json.dumps(out))
    except (CheckFailed, WebDriverException) as e:
        msg = e.msg if isinstance(e, WebDriverException) else str(e)
        print(f"page_check: FAILED: {msg}", file=sys.stderr)
        try:
            for entry in driver.get_log("browser"):
                if entry.get("level") in ("SEVERE", "WARNING"):
                    print(f"  browser console: {entry.get('message')}", file=sys.stderr)
        except WebDriverException:
            pass
        rc = 1
    finally:
        shot = os.environ.get("PAGE_SCREENSHOT")
        if shot:
            try:
                driver.save_screenshot(shot)
            except WebDriverException as e:
                print(f"page_check: could not save screenshot {shot}: {e.msg}", file=sys.stderr)
        driver.quit()
    sys.exit(rc)


if __name__ == "__main__":
    main()
