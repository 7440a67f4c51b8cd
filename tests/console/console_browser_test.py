#!/usr/bin/env python3
"""The officer's console in a real browser against a real collector.

Debian's chromium, headless, driven through chromium-driver with python3-selenium, against ferry-collector over TLS on
loopback (a certificate made here; chromium trusts only its public key, --ignore-certificate-errors-spki-list) with
data seeded through the real ingest and admin API, XSS payloads included. Steps: a wrong token is refused; log in;
find the overdue request and approve it (its audit rows appear); filter by kind; a subject's identities, link
provenance, consent and traits; confirm a pending link; download the JSON copy; erase a subject after the preview and
the typed confirmation; audit verify with the head hash; switch to Chinese (kept over a reload); the analyst's and
the operator's views (only their pages), the insight tables; keyboard navigation; a phone-width screen. After every
page: the payloads are on the page as text, window.__xss stays undefined, the browser logged no CSP violation.
Screenshots of each page go to SCREENSHOT_DIR.

Usage: console_browser_test.py --collector BIN --ferryctl BIN --chromium BIN --chromedriver BIN --screenshots DIR
Every process it starts is stopped when it ends, however it ends.
"""
import argparse
import base64
import datetime
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import traceback
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

# Stored through ingest; each would set window.__xss if the console ever rendered it as markup.
XSS_EVENT = '<img src=x onerror="window.__xss=1">Signed Up'
XSS_PROP = '<script>window.__xss=2</script>'
XSS_TRAIT = '"><svg onload="window.__xss=3">'
XSS_USER = '<img src=y onerror=window.__xss=4>mallory'
XSS_ANON = '<iframe src="javascript:window.__xss=5"></iframe>'
WAIT_S = 20


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)
    print("ok   -", what, flush=True)


class Collector:
    """ferry-collector on 127.0.0.1:0 with TLS; ready once it prints its console line."""

    def __init__(self, binary, ctl, work, extra_args=()):
        self.ctl, self.work = ctl, work
        self.data = os.path.join(work, "data")
        self.cert, self.key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", self.key, "-out", self.cert],
                       check=True, capture_output=True)
        pub = subprocess.run(["openssl", "x509", "-in", self.cert, "-pubkey", "-noout"], check=True,
                             capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub, check=True,
                             capture_output=True).stdout
        import hashlib
        self.spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
        self.write_key = self.ferryctl("keys", "create-write-key", "--project", "shop")
        self.officer = self.ferryctl("keys", "create-admin-token", "--roles", "compliance,operator", "--name", "olivia")
        self.analyst = self.ferryctl("keys", "create-admin-token", "--roles", "analyst", "--name", "ann")
        self.operator = self.ferryctl("keys", "create-admin-token", "--roles", "operator", "--name", "otto")
        self.temp = self.ferryctl("keys", "create-admin-token", "--roles", "analyst", "--name", "temp")
        insight_config = os.path.join(work, "insight.json")
        with open(insight_config, "w") as f:
            json.dump({"min_cohort_size": 1}, f)  # a handful of seeded people still make tables
        self.log = open(os.path.join(work, "collector.log"), "w")
        # The seeded events carry no consent records (this tests the console, not consent): report-only, so that the
        # collector stores them instead of refusing them (its default is to enforce consent, issue 12).
        self.proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--data-dir", self.data, "--tls-cert",
                                      self.cert, "--tls-key", self.key, "--insight", "embedded", "--insight-config", insight_config,
                                      "--consent-default", "report-only", *extra_args],
                                     stderr=subprocess.PIPE, text=True)
        self.port = None
        for line in self.proc.stderr:  # blocks until the collector says where it listens (or exits)
            self.log.write(line)
            if line.startswith("console at https://127.0.0.1:"):
                self.port = int(line.rsplit(":", 1)[1].split("/")[0])
                break
        if self.port is None:
            raise Failure("the collector did not start: see collector.log")
        self.base = "https://127.0.0.1:%d" % self.port
        self.ctx = ssl.create_default_context(cafile=self.cert)

    def ferryctl(self, *args):
        out = subprocess.run([self.ctl, "--data-dir", self.data, *args], check=True, capture_output=True, text=True)
        return out.stdout.strip().splitlines()[-1].strip()

    def call(self, method, path, token, body=None):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
        headers = {"Authorization": "Bearer " + token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        res = conn.getresponse()
        raw = res.read()
        conn.close()
        return res.status, dict(res.getheaders()), raw

    def api(self, method, path, token, body=None, want=200):
        status, _, raw = self.call(method, path, token, body)
        if status != want:
            raise Failure("%s %s answered %d: %s" % (method, path, status, raw[:300]))
        return json.loads(raw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rest = self.proc.stderr.read() if self.proc.stderr else ""
        self.log.write(rest)
        self.log.close()


def iso(days_ago):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days_ago)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def seed(c):
    ev = []
    n = [0]

    def add(**e):
        n[0] += 1
        e.setdefault("messageId", "m-%d" % n[0])
        e.setdefault("timestamp", iso(1))
        e.setdefault("purpose", "analytics")
        ev.append(e)

    for who, anon in (("u-alice", "dev-alice"), ("u-bob", "dev-bob"), ("u-carol", "dev-carol"), (XSS_USER, XSS_ANON)):
        add(type="track", event="App Opened", anonymousId=anon, timestamp=iso(3))
        add(type="identify", userId=who, anonymousId=anon,
            traits={"plan": "pro", "nickname": XSS_TRAIT if who == XSS_USER else who.upper()})
        add(type="track", event=XSS_EVENT if who == XSS_USER else "Order Completed", userId=who, anonymousId=anon,
            properties={"note": XSS_PROP, "revenue": 12.5})
        add(type="consent", userId=who, anonymousId=anon, properties={"purpose": "marketing", "state": "granted"})
    for i in range(21):  # u-alice gets 25 events: two pages of the console's 20
        add(type="track", event="Viewed Item", userId="u-alice", anonymousId="dev-alice",
            properties={"item": "sku-%02d" % i}, timestamp=iso(2))
    # A write key's alias naming another device: a pending link the officer may confirm.
    add(type="alias", userId="u-alice", previousId="dev-alice-tablet", anonymousId="dev-alice")
    status, _, raw = c.call("POST", "/v1/batch", c.write_key, {"batch": ev})
    check(status == 200 and json.loads(raw)["accepted"] == len(ev), "seeded %d events through ingest" % len(ev))
    c.api("POST", "/v1/requests", c.officer, {"kind": "erasure", "subject": "u-carol", "project": "shop",
                                              "receivedAt": iso(20)}, want=201)
    c.api("POST", "/v1/requests", c.officer, {"kind": "access", "subject": "u-alice", "project": "shop",
                                              "receivedAt": iso(13)}, want=201)
    c.api("POST", "/v1/requests", c.officer, {"kind": "correction", "subject": XSS_USER, "project": "shop"},
          want=201)


class Browser:
    def __init__(self, args, c, work):
        self.c, self.shots = c, args.screenshots
        self.downloads = os.path.join(work, "downloads")
        os.makedirs(self.downloads)
        o = webdriver.ChromeOptions()
        o.binary_location = args.chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--lang=en-US",
                  "--window-size=1280,800", "--user-data-dir=" + os.path.join(work, "profile"),
                  "--ignore-certificate-errors-spki-list=" + c.spki):
            o.add_argument(a)
        o.add_experimental_option("prefs", {"download.default_directory": self.downloads,
                                            "download.prompt_for_download": False})
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.d = webdriver.Chrome(service=Service(executable_path=args.chromedriver,
                                                  log_output=os.path.join(work, "chromedriver.log")), options=o)
        self.d.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": self.downloads})
        self.wait = WebDriverWait(self.d, WAIT_S)

    def quit(self):
        self.d.quit()

    def el(self, css):
        return self.wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))

    def clickable(self, css):
        return self.wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, css)))

    def text_in(self, css, text):
        try:
            self.wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
        except TimeoutException:
            raise Failure("'%s' never showed %r (it shows %r)" % (css, text, self.d.find_element(By.CSS_SELECTOR, css).text))

    def go(self, fragment):
        self.d.get(self.c.base + "/console/" + fragment)

    def shot(self, name):
        path = os.path.join(self.shots, name + ".png")
        self.d.save_screenshot(path)
        print("     screenshot", path, flush=True)

    def safe(self, where, payloads=()):
        """No script ran, the payloads are text on the page, no CSP violation."""
        check(self.d.execute_script("return window.__xss") is None, where + ": window.__xss is undefined")
        body = self.d.find_element(By.TAG_NAME, "body").text
        for p in payloads:
            check(p in body, where + ": shows %r as text" % p)
        check(not self.d.find_elements(By.CSS_SELECTOR, "main img, main svg, main iframe, main script"),
              where + ": no element came out of a payload")
        bad = [e["message"] for e in self.d.get_log("browser") if "Content Security Policy" in e["message"]
               or e["level"] == "SEVERE" and "favicon" not in e["message"]]
        check(not bad, where + ": the browser logged no CSP violation or error %s" % bad)

    def login(self, token):
        self.go("")
        box = self.el("#token")
        box.clear()
        box.send_keys(token)
        self.clickable("#login-submit").click()
        self.el("#who")


def run(args, work):
    c = Collector(args.collector, args.ferryctl, work)
    b = None
    try:
        status, headers, _ = c.call("GET", "/console/", "")
        csp = headers.get("Content-Security-Policy", "")
        check(status == 200 and "default-src 'self'" in csp and "script-src 'self'" in csp and
              "frame-ancestors 'none'" in csp and "base-uri 'none'" in csp and "form-action 'self'" in csp and
              "unsafe-inline" not in csp, "/console/ has a strict Content-Security-Policy")
        check(headers.get("X-Content-Type-Options") == "nosniff" and headers.get("Referrer-Policy") == "no-referrer",
              "/console/ sends nosniff and no-referrer")
        seed(c)
        b = Browser(args, c, work)
        d = b.d

        # ---- log in ----
        b.go("")
        b.el("#token")
        b.shot("login")
        b.el("#token").send_keys("fa_not-a-token")
        b.clickable("#login-submit").click()
        b.text_in("#login-error", "401")
        check("token=" not in d.current_url and "fa_" not in d.current_url, "a token never goes into the URL")
        d.get_log("browser")  # the 401 of the wrong token is logged by chromium as a failed resource: expected
        b.login(c.officer)
        b.text_in("#who", "olivia")
        check(d.execute_script("return document.cookie") == "", "no cookie is set")
        check(d.execute_script("return sessionStorage.getItem('ferry.console.token')") == c.officer,
              "the token is kept in sessionStorage")

        # ---- requests: the overdue one, approved; audit rows ----
        b.clickable("#nav-requests").click()
        row = b.el("#requests-table tr.overdue")
        check("u-carol" in row.text and "Overdue" in row.text, "the overdue request is marked Overdue")
        b.el("#requests-table tr.due-soon")
        check("Due soon" in b.el("#requests-table tr.due-soon").text, "the request due in 2 days is marked Due soon")
        b.safe("requests", [XSS_USER])
        b.shot("requests")
        rid = row.get_attribute("data-request")
        row.find_element(By.CSS_SELECTOR, "button.approve").click()
        b.text_in("#requests-message", "is now completed")
        done = b.el('#requests-table tr[data-request="%s"]' % rid)
        check("completed" in done.text and "olivia" in done.text, "the approved request shows completed, by olivia")
        done.find_element(By.CSS_SELECTOR, "button.show-audit").click()
        b.text_in("ul.audit-rows", "requests.approve")
        check("requests.add" in b.el("ul.audit-rows").text, "its audit rows (add, approve) are shown")
        b.shot("requests-audit")
        check(c.call("GET", "/v1/subjects/u-carol", c.officer)[0] == 404, "approving the erasure request erased u-carol")
        Select(b.el("#filter-kind")).select_by_value("access")
        b.wait.until(lambda _: all("access" in r.text for r in d.find_elements(By.CSS_SELECTOR, "#requests-table tbody tr")))
        check(len(d.find_elements(By.CSS_SELECTOR, "#requests-table tbody tr")) == 1, "the kind filter leaves the access request")
        Select(b.el("#filter-kind")).select_by_value("")

        # ---- subject: identities, links, consent, traits; confirm the pending link; the JSON copy ----
        b.go("#/subject?id=u-alice&project=shop")
        b.text_in("main", "dev-alice-tablet")
        page = b.el("main").text
        check("pending" in page and "write_key" in page, "the alias link shows its state and credential")
        check("marketing" in page and "granted" in page, "consent per purpose is shown")
        check("U-ALICE" in page, "traits are shown")
        b.text_in("#events-table caption", "Events 1–20")
        b.clickable("#events-next").click()
        b.text_in("#events-table caption", "Events 21–26")
        check(not b.el("#events-next").is_enabled(), "the last page of events has no next page")
        b.clickable("#events-prev").click()
        b.text_in("#events-table caption", "Events 1–20")
        b.safe("subject u-alice")
        b.shot("subject")
        b.clickable("button.confirm-link").click()
        b.text_in("#subject-message", "confirmed")
        b.clickable("#export-json").click()
        b.text_in("#subject-message", "lookup (not a request)")
        target = os.path.join(b.downloads, "ferry-export-u-alice.json")
        b.wait.until(lambda _: os.path.exists(target))
        with open(target) as f:
            doc = json.load(f)
        check(doc["format"] == "ferry-subject-export/1" and doc["subject"] == "u-alice" and doc["projects"][0]["events"],
              "the downloaded JSON copy is the subject's export")

        # ---- the XSS subject: every payload as text ----
        b.go("#/subject?" + urllib.parse.urlencode({"id": XSS_USER, "project": "shop"}))
        b.text_in("main", XSS_TRAIT)
        b.text_in("#events-table", XSS_EVENT)
        b.safe("subject with payloads", [XSS_USER, XSS_ANON, XSS_TRAIT, XSS_EVENT])
        b.shot("subject-xss")

        # ---- erase after the preview and the typed confirmation ----
        b.go("#/subject?id=u-bob&project=shop")
        b.clickable("#erase-open").click()
        b.text_in("#erase-preview", "shop: 4 events")
        check(not b.el("#erase-submit").is_enabled(), "erase stays disabled before the id is typed")
        b.el("#erase-confirm").send_keys("u-bo")
        check(not b.el("#erase-submit").is_enabled(), "erase stays disabled for a wrong id")
        b.shot("erase-preview")
        b.el("#erase-confirm").send_keys("b")
        b.clickable("#erase-submit").click()
        b.text_in("#erase-receipt", "events: 4")
        status, _, _ = c.call("GET", "/v1/subjects/u-bob", c.officer)
        check(status == 404, "the erased subject is gone from the store")
        b.shot("erased")

        # ---- audit: verify, head hash ----
        b.clickable("#nav-audit").click()
        b.el("#audit-table")
        b.clickable("#audit-verify").click()
        b.text_in("#verify-result", "intact")
        head = b.el("#audit-head").text
        entries = c.api("GET", "/v1/audit?limit=10000", c.officer)["entries"]
        check(any(e["hash"] in head and "entry %d)" % e["seq"] in head for e in entries),
              "the head hash shown is the hash of the entry it names")
        b.safe("audit")
        b.shot("audit")

        # ---- credentials: revoke a token, give the write key an expiry ----
        b.clickable("#nav-keys").click()
        b.text_in("#admin-tokens", "temp")
        b.safe("credentials")
        b.shot("credentials")
        temp_row = 'tr[data-credential^="admin-tokens-"]'
        rows = [r for r in d.find_elements(By.CSS_SELECTOR, temp_row) if "temp" in r.text]
        rows[0].find_element(By.CSS_SELECTOR, "button.revoke").click()
        b.clickable('#admin-tokens button.confirm-revoke').click()
        b.text_in("#keys-message", "Revoked")
        status, _, _ = c.call("GET", "/v1/whoami", c.temp)
        check(status == 401, "the revoked token is refused at once")
        wk = b.el('#write-keys tr[data-credential^="write-keys-"]')
        when = (datetime.datetime.now() + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
        box = wk.find_element(By.CSS_SELECTOR, "input.expiry")
        d.execute_script("arguments[0].value = arguments[1];"
                         "arguments[0].dispatchEvent(new Event('input', {bubbles: true}))", box, when)
        wk.find_element(By.CSS_SELECTOR, "button.set-expiry").click()
        b.text_in("#keys-message", "set")
        keys = c.api("GET", "/v1/keys", c.officer)
        check(keys["writeKeys"][0]["expiresAt"] is not None, "the write key has the expiry set in the console")
        check(any(t["name"] == "temp" and t["revokedAt"] for t in keys["adminTokens"]), "the API lists temp as revoked")

        # ---- keyboard: reach a page through the navigation with Tab and Enter ----
        b.go("#/requests")
        b.el("#requests-table")
        d.execute_script("document.activeElement && document.activeElement.blur(); document.querySelector('.skip').focus()")
        reached = False
        for _ in range(12):
            d.switch_to.active_element.send_keys(Keys.TAB)
            if d.switch_to.active_element.get_attribute("id") == "nav-audit":
                reached = True
                break
        check(reached, "Tab reaches the navigation")
        d.switch_to.active_element.send_keys(Keys.ENTER)
        b.el("#audit-verify")

        # ---- Chinese, kept over a reload ----
        Select(b.el("#lang")).select_by_value("zh")
        b.text_in("#nav-requests", "请求")
        b.go("#/requests")
        d.refresh()
        b.text_in("#requests-title", "请求收件箱")
        check(d.execute_script("return document.documentElement.lang") == "zh-CN", "html lang follows the language")
        b.text_in("#requests-table tr.due-soon", "即将到期")
        b.safe("requests (zh)", [XSS_USER])
        b.shot("requests-zh")
        b.go("#/subject?id=u-alice&project=shop")
        b.text_in("main", "身份关联及其来源")
        b.shot("subject-zh")
        Select(b.el("#lang")).select_by_value("en")
        b.text_in("#nav-requests", "Requests")

        # ---- phone width ----
        d.set_window_size(390, 844)
        b.go("#/requests")
        b.el("#requests-table")
        check(d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"),
              "390 px wide: the page does not scroll sideways (tables scroll in their frame)")
        b.shot("requests-phone")
        d.set_window_size(1280, 800)

        # ---- the analyst: subjects (read only) and insight ----
        b.clickable("#signout").click()
        b.el("#token")
        check(d.execute_script("return sessionStorage.getItem('ferry.console.token')") is None, "sign out forgets the token")
        b.login(c.analyst)
        navs = sorted(e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, "nav.pages a"))
        check(navs == ["nav-insight", "nav-stats", "nav-subject"],
              "the analyst sees Subjects, Insight and Consent statistics only (%s)" % navs)
        b.go("#/subject?id=u-alice&project=shop")
        b.text_in("main", "dev-alice")
        check(not d.find_elements(By.CSS_SELECTOR, "#export-json, #erase-open, button.confirm-link"),
              "the analyst gets no export, erase or confirm")
        b.clickable("#nav-insight").click()
        b.el("#insight-project").send_keys("shop")
        Select(b.el("#insight-report")).select_by_value("profile")
        b.el("#insight-person").send_keys(XSS_USER)
        b.clickable("#insight-run").click()
        b.el("#insight-result")
        b.safe("insight profile", [XSS_USER])
        Select(b.el("#insight-report")).select_by_value("retention")
        b.clickable("#insight-run").click()
        b.el("#insight-result table")
        b.safe("insight retention")
        b.shot("insight")

        # ---- the operator: the audit log only ----
        b.clickable("#signout").click()
        b.login(c.operator)
        navs = sorted(e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, "nav.pages a"))
        check(navs == ["nav-audit", "nav-keys", "nav-outbox", "nav-registry"],
              "the operator sees the audit log, credentials, the outbox and the registry only (%s)" % navs)
        b.el("#audit-table")
        b.safe("audit (operator)")
    except Exception:
        show_failure(b, os.path.join(args.screenshots, "failure.png"))
        raise
    finally:
        if b is not None:
            b.quit()
        c.stop()


def show_failure(b, shot):
    """What the page showed when a test failed: a screenshot and the page's text."""
    if b is not None:
        b.d.save_screenshot(shot)
        print("the page said:\n" + b.d.find_element(By.TAG_NAME, "body").text[:3000], flush=True)


def main(run_test=None, prefix="ferry-console-test-"):
    """Parses the command line, runs run_test(args, work) (default: this file's run) in a fresh work folder and
    removes it; on a failure prints the ends of the logs. 0 when it passed, 1 otherwise."""
    p = argparse.ArgumentParser()
    for a in ("--collector", "--ferryctl", "--chromium", "--chromedriver", "--screenshots"):
        p.add_argument(a, required=True)
    args = p.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    stale = os.path.join(args.screenshots, "failure.png")
    if os.path.exists(stale):
        os.remove(stale)
    work = tempfile.mkdtemp(prefix=prefix)
    ok = False
    try:
        (run_test or run)(args, work)
        ok = True
    except Failure as e:
        print("FAIL -", e, flush=True)
    except Exception:
        traceback.print_exc()
        print("FAIL - the test stopped on an exception", flush=True)
    finally:
        if not ok:
            for f in ("collector.log", "chromedriver.log"):
                path = os.path.join(work, f)
                if os.path.exists(path):
                    print("------", f, flush=True)
                    with open(path, errors="replace") as fh:
                        print(fh.read()[-4000:], flush=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
