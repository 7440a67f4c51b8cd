#!/usr/bin/env python3
"""The self-service page for data subjects in a real browser against a real collector.

The console test's harness (Debian's chromium headless through chromium-driver and python3-selenium; a real
ferry-collector over TLS on loopback, here with --public-requests on). The test plays the person in the browser, the
app through the device API (events of its own, then POST /v1/device/verification-code for the code it would show),
and the officer through the admin API. Steps: /self-service/ has a strict Content-Security-Policy; file an access
request on the page (reference and secret shown), type the app's code, the officer approves, download the copy on the
page (the request is then completed, delivered to the person); an erasure request followed to completion; a refused
request whose reason is an XSS payload, looked up by reference and secret, shows it as text; a wrong code is refused
on the page; Chinese; keyboard; a phone-width screen. Screenshots go to SCREENSHOT_DIR.

Usage: selfserve_browser_test.py --collector BIN --ferryctl BIN --chromium BIN --chromedriver BIN --screenshots DIR
"""
import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import console_browser_test  # noqa: E402
from console_browser_test import XSS_PROP, XSS_TRAIT, Browser, Collector, Failure, check  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

APP_ID = "dev-selfserve-phone"


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def app_events(c):
    batch = [{"messageId": "ss-%d" % i, "type": "track", "event": "Opened", "anonymousId": APP_ID,
              "purpose": "analytics", "timestamp": now_iso()} for i in range(3)]
    status, _, _ = c.call("POST", "/v1/batch", c.write_key, {"batch": batch})
    check(status == 200, "the app sent 3 events of its own")


def app_code(c):
    """What the app does for ferry_request_verification_code(): the code bound to the device's own subject."""
    doc = c.api("POST", "/v1/device/verification-code", c.write_key, {"anonymousIds": [APP_ID]}, want=201)
    check(len(doc["code"]) == 8 and doc["code"].isdigit(), "the app got an 8-digit code")
    return doc["code"]


def register(c, ref):
    for r in c.api("GET", "/v1/requests", c.officer)["requests"]:
        if r["id"] == ref:
            return r
    raise Failure("request %s is not in the register" % ref)


def file_on_page(b, kind, contact, identifier):
    Select(b.el("#kind")).select_by_value(kind)
    b.el("#contact").send_keys(contact)
    b.el("#identifier").send_keys(identifier)
    b.clickable("#file").click()
    ref = b.el("#new-reference").text
    secret = b.el("#new-secret").text
    check(ref.startswith("req_") and len(secret) == 32, "the page shows the new %s request's reference and secret" % kind)
    b.text_in("#state", "Received")
    return ref, secret


def verify_on_page(b, code):
    box = b.el("#code")
    box.clear()
    box.send_keys(code)
    b.clickable("#verify").click()


def state_is(b, state):
    b.wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#state").get_attribute("data-state") == state)
    check(True, "the page shows the request %s" % state)


def run(args, work):
    c = Collector(args.collector, args.ferryctl, work, extra_args=("--public-requests", "on"))
    b = None
    try:
        status, headers, _ = c.call("GET", "/self-service/", "")
        csp = headers.get("Content-Security-Policy", "")
        check(status == 200 and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and
              "unsafe-inline" not in csp, "/self-service/ has a strict Content-Security-Policy")
        app_events(c)
        b = Browser(args, c, work)
        d = b.d

        # ---- an access request, to completion ----
        d.get(c.base + "/self-service/?project=shop")
        b.el("#contact")
        b.shot("selfserve-file")
        # Keyboard: the form is reached and filled with Tab alone.
        focused = []
        for _ in range(12):
            ActionChains(d).send_keys(Keys.TAB).perform()
            focused.append(d.switch_to.active_element.get_attribute("id"))
            if focused[-1] == "contact":
                break
        check("contact" in focused, "Tab reaches the form's fields (%s)" % focused)
        ref, secret = file_on_page(b, "access", "person@example.com", XSS_TRAIT)
        check(register(c, ref)["subject"] == "", "the register has the request without a subject")
        b.safe("filed", payloads=[])
        verify_on_page(b, "00000000")
        b.text_in("[role=alert]", "400")
        check(register(c, ref)["subject"] == "", "a wrong code binds nothing")
        # The refused call is in the browser's log as a failed resource load (400): expected, and nothing else.
        logged = [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
        check(all("status of 400" in m for m in logged), "the only error logged is the refused code (%s)" % logged)
        verify_on_page(b, app_code(c))
        state_is(b, "awaiting_verification")
        check(register(c, ref)["subject"] == APP_ID, "the code bound the request to the app's own subject")
        c.api("POST", "/v1/requests/%s/approve" % ref, c.officer, {"verification": {"method": "app-code"}})
        b.clickable("#refresh").click()
        b.clickable("#download").click()
        b.el("#saved-copy")
        state_is(b, "completed")
        r = register(c, ref)
        check(r["state"] == "completed" and r["delivered"]["by"] == "person",
              "the download on the page completed the request, delivered to the person")
        b.shot("selfserve-status")
        b.safe("access completed")

        # ---- an erasure request, to completion ----
        b.clickable("#forget-request").click()
        eref, _ = file_on_page(b, "erasure", "person@example.com", "me")
        verify_on_page(b, app_code(c))
        state_is(b, "awaiting_verification")
        c.api("POST", "/v1/requests/%s/approve" % eref, c.officer, {"verification": {"method": "app-code"}})
        b.clickable("#refresh").click()
        state_is(b, "completed")
        status, _, _ = c.call("GET", "/v1/subjects/%s" % APP_ID, c.officer)
        check(status == 404, "the app's subject is erased")

        # ---- a refused request, looked up by reference and secret: the reason is text ----
        b.clickable("#forget-request").click()
        xref, xsecret = file_on_page(b, "correction", XSS_PROP, XSS_PROP)
        c.api("POST", "/v1/requests/%s/reject" % xref, c.officer, {"reason": XSS_PROP})
        b.clickable("#forget-request").click()
        b.el("#lookup-reference").send_keys(xref)
        b.el("#lookup-secret").send_keys(xsecret)
        b.clickable("#lookup").click()
        state_is(b, "rejected")
        b.text_in("#reason", XSS_PROP)
        b.safe("refused request", payloads=[XSS_PROP])

        # ---- Chinese ----
        b.clickable("#lang-zh").click()
        b.text_in("h1", "您的数据：申请")
        b.text_in("#state", "已拒绝")
        check(d.execute_script("return document.documentElement.lang") == "zh-CN", "the page says it is zh-CN")
        b.shot("selfserve-zh")
        d.refresh()
        b.text_in("h1", "您的数据：申请")
        check(True, "Chinese is kept over a reload")

        # ---- a phone-width screen ----
        d.set_window_size(390, 844)
        d.refresh()
        b.el("#state")
        wide = d.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        check(wide <= 0, "no horizontal scrolling at phone width (%d px over)" % wide)
        b.shot("selfserve-phone")
        b.safe("phone width", payloads=[XSS_PROP])
    except Exception:
        if b is not None:
            b.shot("failure")
        raise
    finally:
        if b is not None:
            b.quit()
        c.stop()


if __name__ == "__main__":
    sys.exit(console_browser_test.main(run, "ferry-selfserve-test-"))
