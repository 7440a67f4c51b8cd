#!/usr/bin/env python3
"""The console's request actions, subject rights, registry and audit anchors in a real browser (issue 14).

The harness of console_browser_test.py (the same collector over TLS, seeded data with XSS payloads, chromium headless),
here with a webhook destination: a loopback HTTP server this test runs, so that the outbox's deliveries are real.
Steps: the consent statistics (table against the API's answer, day and week buckets, SVG bars); verify a request with
evidence and approve it, deliver its copy, download the HTML, CSV and JSON copies; reject
a request with a reason; extend a request's due date with a reason, the due-within filter; file a restriction for one purpose from the subject page, put it in force, see its webhook
delivery, lift it; the consent timeline; the erasure's dry run, then the erasure; the purpose registry (add, edit),
the records of processing (shown, HTML downloaded), the restriction mode; an audit anchor downloaded and checked, a
forged one refused; Chinese; the analyst does not get the registry (but gets the consent statistics), the operator
reads the registry without editing and has no consent statistics. After
every page the payloads are text, no script ran, no CSP violation. Screenshots go to SCREENSHOT_DIR.

Usage: console_pages_test.py --collector BIN --ferryctl BIN --chromium BIN --chromedriver BIN --screenshots DIR
"""
import glob
import http.server
import json
import os
import sys
import threading

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

import console_browser_test as base
from console_browser_test import XSS_PROP, XSS_TRAIT, check

XSS_REF = '<img src=z onerror="window.__xss=6">ticket-42'
XSS_REASON = '<script>window.__xss=7</script>no longer needed'
XSS_EXTEND = '<img src=z onerror="window.__xss=8">waiting for the CRM export'


class Hook(http.server.BaseHTTPRequestHandler):
    """The downstream system: takes every outbox delivery (200) and keeps its body."""

    received = []
    arrived = threading.Event()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Hook.received.append(json.loads(body or b"{}"))
        Hook.arrived.set()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def downloaded(b, pattern):
    """Waits for a finished download matching pattern; its path."""
    found = []

    def ready(_):
        found[:] = [f for f in glob.glob(os.path.join(b.downloads, pattern)) if not f.endswith(".crdownload")]
        return bool(found)

    b.wait.until(ready)
    return found[0]


def seed_consent(c):
    """Consent records through ingest over several days, purposes and notice versions (opt-ins and opt-outs)."""
    # Subjects of their own: the other steps' counts (u-bob's erasure, u-alice's timeline) stay as they were.
    recs = [("u-dan", "analytics", "granted", "v1", 9), ("u-erin", "analytics", "denied", "v1", 9),
            ("u-fay", "analytics", "granted", "v1", 8), ("u-dan", "analytics", "granted", "v2", 2),
            ("u-erin", "analytics", "granted", "v2", 2), ("u-fay", "analytics", "denied", "v2", 2),
            ("u-fay", "personalization", "pending", "v2", 2), ("u-erin", "personalization", "denied", "v2", 1)]
    batch = [{"type": "consent", "messageId": "stats-%d" % i, "userId": who, "anonymousId": "dev-" + who, "timestamp": base.iso(ago),
              "purpose": "analytics", "properties": {"purpose": purpose, "state": state, "method": "explicit",
                                                      "noticeId": "privacy", "noticeVersion": version}}
             for i, (who, purpose, state, version, ago) in enumerate(recs)]
    status, _, raw = c.call("POST", "/v1/batch", c.write_key, {"batch": batch})
    check(status == 200 and json.loads(raw)["accepted"] == len(batch), "seeded %d consent records through ingest" % len(batch))


def check_stats_page(b, c, bucket):
    """Shows the consent statistics with these buckets; the table's figures are the API's, one SVG bar per figure."""
    Select(b.el("#stats-bucket")).select_by_value(bucket)
    b.clickable("#stats-show").click()
    b.text_in("#stats-table caption", "by " + ("weeks" if bucket == "week" else "days"))
    frm, to = b.el("#stats-from").get_attribute("value"), b.el("#stats-to").get_attribute("value")
    api = c.api("GET", "/v1/projects/shop/consent/stats?bucket=%s&from=%s&to=%s" % (bucket, frm, to), c.officer)["rows"]
    trs = b.d.find_elements(By.CSS_SELECTOR, "#stats-table tr.stats-row")
    check(len(api) >= 3 and len(trs) == len(api), "%s buckets: the table has the API's %d rows (%d)" % (bucket, len(api), len(trs)))
    for row in api:
        tr = b.el('#stats-table tr.stats-row[data-bucket="%s"][data-purpose="%s"][data-version="%s"]'
                  % (row["bucket"], row["purpose"], row["noticeVersion"] or ""))
        cell = lambda cls: tr.find_element(By.CSS_SELECTOR, "td." + cls).text
        got = [int(cell(k).replace(",", "")) for k in ("subjects", "granted", "denied", "pending")]
        want = [row[k] for k in ("subjects", "granted", "denied", "pending")]
        check(got == want, "%s %s %s: the table shows %s, the API %s" % (row["bucket"], row["purpose"], row["noticeVersion"], got, want))
        for cls, key in (("opt-in", "optInRate"), ("opt-out", "optOutRate")):
            check(abs(float(cell(cls).rstrip("%")) - row[key] * 100) <= 0.051, "%s of %s is the API's %s" % (key, row["bucket"], row[key]))
    series = {(r["purpose"], r["noticeVersion"]) for r in api}
    charts = b.d.find_elements(By.CSS_SELECTOR, "#stats-charts svg")
    check(len(charts) == len(series), "one chart per purpose and notice version (%d)" % len(series))
    bars_in = len(b.d.find_elements(By.CSS_SELECTOR, "#stats-charts rect.bar-in"))
    bars_out = len(b.d.find_elements(By.CSS_SELECTOR, "#stats-charts rect.bar-out"))
    check(bars_in == sum(1 for r in api if r["granted"]) and bars_out == sum(1 for r in api if r["denied"]),
          "a bar for every opt-in (%d) and opt-out (%d) figure" % (bars_in, bars_out))
    check(not b.d.find_elements(By.CSS_SELECTOR, "main [style], main script, main img, main iframe"),
          "the charts need no style attribute and no script")
    check(b.d.execute_script("return window.__xss") is None, "stats: window.__xss is undefined")
    bad = [e["message"] for e in b.d.get_log("browser") if "Content Security Policy" in e["message"]
           or e["level"] == "SEVERE" and "favicon" not in e["message"]]
    check(not bad, "stats: the browser logged no CSP violation or error %s" % bad)
    return api


def request_of(c, rid):
    return next(r for r in c.api("GET", "/v1/requests", c.officer)["requests"] if r["id"] == rid)


def run(args, work):
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    c = base.Collector(args.collector, args.ferryctl, work,
                       extra_args=("--webhook", "crm=http://127.0.0.1:%d/hook" % hook.server_address[1]))
    b = None
    try:
        base.seed(c)
        seed_consent(c)
        fix = c.api("POST", "/v1/requests", c.officer, {"kind": "correction", "subject": "u-alice", "project": "shop"},
                    want=201)
        b = base.Browser(args, c, work)
        d = b.d
        b.login(c.officer)

        # ---- consent statistics: day and week buckets, the table against the API's answer ----
        b.clickable("#nav-stats").click()
        box = b.el("#stats-project")
        box.clear()
        box.send_keys("shop")
        days = check_stats_page(b, c, "day")
        check(any(r["noticeVersion"] == "v2" and r["purpose"] == "analytics" and r["granted"] == 2 and r["denied"] == 1
                  for r in days), "the day of the v2 notice has two opt-ins and one opt-out of analytics")
        b.shot("consent-stats")
        check_stats_page(b, c, "week")
        b.shot("consent-stats-week")

        # ---- requests: verify with evidence and approve; deliver the copy; the HTML, CSV and JSON copies ----
        b.clickable("#nav-requests").click()
        access = next(r for r in c.api("GET", "/v1/requests", c.officer)["requests"] if r["kind"] == "access")
        rid = access["id"]
        row_css = '#requests-table tr[data-request="%s"]' % rid
        b.el(row_css).find_element(By.CSS_SELECTOR, "button.verify").click()
        b.el(".verify-method").send_keys("email_code")
        b.el(".verify-reference").send_keys(XSS_REF)
        b.shot("requests-verify")
        b.clickable("button.verify-approve").click()
        b.text_in("#requests-message", "is now in_progress")
        b.text_in(row_css, "verified: email_code")
        r = request_of(c, rid)
        check(r["state"] == "in_progress" and r["verification"]["method"] == "email_code" and
              r["verification"]["reference"] == XSS_REF and r["verification"]["by"] == "olivia",
              "the approval recorded the evidence typed in the console")
        b.safe("requests after verify", [XSS_REF])
        b.el(row_css).find_element(By.CSS_SELECTOR, "button.show-audit").click()
        b.text_in("ul.audit-rows", "requests.approve")
        b.clickable(row_css + " button.deliver-copy").click()
        b.text_in("#requests-message", "delivered")
        with open(downloaded(b, "ferry-copy-*.json")) as f:
            copy = json.load(f)
        check(copy["format"] == "ferry-subject-export/1" and copy["subject"] == "u-alice",
              "the delivered copy is the subject's export document")
        check(request_of(c, rid)["state"] == "completed", "delivering the copy completed the access request")
        b.text_in(row_css, "copy delivered")
        for fmt, needle in (("html", "u-alice"), ("csv", "Viewed Item"), ("json", '"u-alice"')):
            b.clickable(row_css + " button.copy-" + fmt).click()
            path = downloaded(b, "ferry-copy-*." + fmt)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            check(needle in text, "the %s copy of the completed request was downloaded (%d bytes)" % (fmt.upper(), len(text)))
            if fmt == "html":
                check("<html" in text.lower() and "<script" not in text.lower(), "the HTML copy is a page without script")
            os.remove(path)
        b.safe("requests after the copies")
        b.shot("requests-copy")

        # ---- reject with a reason ----
        corr = next(r for r in c.api("GET", "/v1/requests", c.officer)["requests"] if r["kind"] == "correction")
        corr_css = '#requests-table tr[data-request="%s"]' % corr["id"]
        b.el(corr_css).find_element(By.CSS_SELECTOR, "button.reject").click()
        b.el("#reason-" + corr["id"]).send_keys(XSS_REASON)
        b.clickable(corr_css + " + tr.detail-row button[type=submit]").click()
        b.text_in("#requests-message", "was rejected")
        b.text_in(corr_css, "refused: " + XSS_REASON)
        check(request_of(c, corr["id"])["refusalReason"] == XSS_REASON, "the API holds the refusal reason typed")
        b.safe("requests after reject", [XSS_REASON])

        # ---- a correction approved, then completed by hand with a note ----
        fix_css = '#requests-table tr[data-request="%s"]' % fix["id"]
        b.el(fix_css).find_element(By.CSS_SELECTOR, "button.approve").click()
        b.text_in("#requests-message", "is now in_progress")

        # ---- extend its due date with a reason ----
        before = request_of(c, fix["id"])
        b.clickable(fix_css + " button.extend").click()
        b.el(fix_css + " + tr.detail-row .extend-days").send_keys("14")
        b.el(fix_css + " + tr.detail-row .extend-reason").send_keys(XSS_EXTEND)
        b.shot("requests-extend")
        b.clickable(fix_css + " + tr.detail-row .extend-submit").click()
        b.text_in("#requests-message", "extended, now due")
        b.text_in(fix_css, "extended by 14 days")
        b.text_in(fix_css, XSS_EXTEND)
        ext = request_of(c, fix["id"])
        check(ext["state"] == "extended" and ext["extension"]["days"] == 14 and ext["extension"]["reason"] == XSS_EXTEND and
              ext["extension"]["by"] == "olivia" and ext["extension"]["previousDue"] == before["dueAt"] and
              ext["dueAt"] != before["dueAt"], "the API shows the request extended as typed (%s)" % ext["extension"])
        check(not b.d.find_elements(By.CSS_SELECTOR, fix_css + " button.extend"), "an extended request is not offered again")
        b.safe("requests after extend", [XSS_EXTEND])
        b.shot("requests-extended")

        # ---- due within 7 days: the collector's list ----
        b.clickable("#filter-due").click()
        due = [r["id"] for r in c.api("GET", "/v1/requests/due?within=7d", c.officer)["requests"]]
        # The ids read in one script: the table may be drawn again between finding its rows and reading them.
        b.wait.until(lambda d: sorted(d.execute_script(
            "return Array.from(document.querySelectorAll('#requests-table tr[data-request]'), "
            "e => e.getAttribute('data-request'))")) == sorted(due))
        check(due and fix["id"] not in due, "the due filter shows the API's %d requests due within 7 days" % len(due))
        b.clickable("#filter-due").click()
        b.el(fix_css)

        b.clickable(fix_css + " button.complete").click()
        b.el(fix_css + " + tr.detail-row .complete-note").send_keys("plan corrected in the CRM")
        b.clickable(fix_css + " + tr.detail-row .complete-submit").click()
        b.text_in("#requests-message", "is now completed")
        done = request_of(c, fix["id"])
        check(done["state"] == "completed" and "plan corrected in the CRM" in json.dumps(done["result"]),
              "the correction was completed by hand with the note typed")

        # ---- subject: a restriction for marketing, in force, delivered downstream, lifted ----
        b.go("#/subject?id=u-alice&project=shop")
        b.clickable("#restrict-open").click()
        Select(b.el("#restrict-kind")).select_by_value("restriction")
        b.clickable("#restrict-all").click()
        b.clickable('input.restrict-purpose[value="marketing"]').click()
        b.shot("subject-restrict")
        b.clickable("#restrict-file").click()
        b.text_in("#subject-message", "Filed restriction request")
        b.text_in("#subject-rights", "awaiting_verification")
        b.text_in("#subject-rights", "purposes: marketing")
        b.clickable("#subject-rights button.approve-rights").click()
        b.text_in("#subject-message", "is now completed")
        b.text_in("#subject-rights", "In force")
        rr = next(r for r in c.api("GET", "/v1/requests", c.officer)["requests"] if r["kind"] == "restriction")
        check(rr["state"] == "completed" and rr["inForce"] and rr["purposes"] == ["marketing"],
              "the restriction filed from the page is in force for marketing")
        check(Hook.arrived.wait(30), "the restriction went downstream to the webhook")
        check(any(e.get("kind") == "restriction" and e.get("requestId") == rr["id"] for e in Hook.received),
              "the webhook got the restriction's outbox entry")
        b.clickable("#subject-rights button.lift").click()
        b.el("#subject-rights .lift-reason").send_keys(XSS_REASON)
        b.clickable("#subject-rights .lift-submit").click()
        b.text_in("#subject-message", "lifted")
        b.text_in("#subject-rights", "lifted")
        check(request_of(c, rr["id"])["lifted"]["reason"] == XSS_REASON, "the API shows the restriction lifted")
        b.safe("subject rights", [XSS_REASON])
        b.shot("subject-rights")

        # ---- the consent timeline ----
        b.clickable("#timeline-load").click()
        b.text_in("#consent-timeline", "shop · marketing")
        rows = d.find_elements(By.CSS_SELECTOR, "#consent-timeline tr.consent-record")
        check(rows and "granted" in rows[0].text, "the consent timeline lists the marketing grant")
        b.safe("consent timeline")
        b.shot("subject-timeline")

        # ---- the restriction's deliveries in the inbox ----
        b.go("#/requests")
        rr_css = '#requests-table tr[data-request="%s"]' % rr["id"]
        b.el(rr_css).find_element(By.CSS_SELECTOR, "button.show-deliveries").click()
        b.text_in(rr_css + " + tr.detail-row", "crm")
        api_del = c.api("GET", "/v1/requests/%s/deliveries" % rr["id"], c.officer)["deliveries"]
        shown = b.el(rr_css + " + tr.detail-row").text
        check(api_del and all(x["destination"] in shown and x["state"] in shown for x in api_del),
              "the deliveries shown are the API's (%s)" % [(x["destination"], x["state"]) for x in api_del])
        b.shot("requests-deliveries")

        # ---- erasure: the dry run first, nothing changed; then the erasure ----
        b.go("#/subject?id=u-bob&project=shop")
        b.clickable("#erase-open").click()
        b.text_in("#erase-dryrun", "events: 4")
        check(c.call("GET", "/v1/subjects/u-bob", c.officer)[0] == 200, "the dry run erased nothing")
        b.shot("erase-dryrun")
        b.el("#erase-confirm").send_keys("u-bob")
        b.clickable("#erase-submit").click()
        b.text_in("#erase-receipt", "events: 4")
        check(c.call("GET", "/v1/subjects/u-bob", c.officer)[0] == 404, "the erasure after the dry run erased u-bob")

        # ---- the purpose registry: add, edit; records of processing; restriction mode ----
        b.clickable("#nav-registry").click()
        b.el("#registry-project").send_keys("shop")
        b.clickable("#registry-show").click()
        b.el("#purposes-table")
        b.clickable("#purpose-add").click()
        b.el("#purpose-id").send_keys("support")
        b.el("#purpose-name").send_keys("Customer support")
        b.el("#purpose-description").send_keys(XSS_PROP)
        Select(b.el("#purpose-legalBasis")).select_by_value("contract")
        b.el("#purpose-dataCategories").send_keys("contact details, " + XSS_TRAIT)
        b.el("#purpose-retentionDays").send_keys("30")
        b.el("#purpose-recipients").send_keys("Helpdesk Ltd")
        b.el("#purpose-transfers").send_keys("US | SCCs")
        b.shot("registry-edit")
        b.clickable("#purpose-save").click()
        b.text_in("#registry-message", "support saved")
        reg = c.api("GET", "/v1/projects/shop/registry", c.officer)["registry"]
        sup = next(p for p in reg["purposes"] if p["id"] == "support")
        check(sup["legalBasis"] == "contract" and sup["retentionDays"] == 30 and sup["description"] == XSS_PROP and
              sup["dataCategories"] == ["contact details", XSS_TRAIT] and
              sup["transfers"] == [{"destination": "US", "safeguard": "SCCs"}],
              "the purpose added in the console is in the registry as typed")
        b.text_in("#records-table", "30 days")
        b.clickable('tr[data-purpose="support"] button.edit-purpose').click()
        box = b.el("#purpose-retentionDays")
        box.clear()
        box.send_keys("45")
        b.clickable("#purpose-save").click()
        b.text_in("#records-table", "45 days")
        reg = c.api("GET", "/v1/projects/shop/registry", c.officer)["registry"]
        check(next(p for p in reg["purposes"] if p["id"] == "support")["retentionDays"] == 45,
              "editing the purpose changed its retention")
        b.clickable("#records-html").click()
        with open(downloaded(b, "ferry-records-shop.html"), encoding="utf-8") as f:
            records = f.read()
        check("support" in records and "Helpdesk Ltd" in records, "the records of processing (HTML) name the purpose")
        Select(b.el("#restriction-mode")).select_by_value("refuse")
        b.text_in("#restriction-mode-saved", "refuse")
        check(c.api("GET", "/v1/projects/shop/restriction-mode", c.officer)["mode"] == "refuse",
              "the restriction mode set in the console is the project's")
        b.safe("registry", [XSS_PROP, XSS_TRAIT])
        b.shot("registry")

        # ---- audit: an anchor downloaded, checked; a forged one refused ----
        b.clickable("#nav-audit").click()
        b.clickable("#audit-verify").click()
        b.text_in("#verify-result", "intact")
        b.clickable("#anchor-download").click()
        anchor_path = downloaded(b, "ferry-audit-anchor-*.json")
        with open(anchor_path) as f:
            anchor = json.load(f)
        verify = c.api("GET", "/v1/audit/verify", c.officer)
        at = c.api("GET", "/v1/audit?after=%d&limit=1" % (anchor["headSeq"] - 1), c.officer)["entries"][0]
        check(anchor["format"] == "ferry-audit-anchor/1" and at["hash"] == anchor["headHash"] and
              anchor["headSeq"] <= verify["headSeq"], "the anchor holds the head the verification named")
        b.el("#anchor-file").send_keys(anchor_path)
        b.text_in("#anchor-result", "The anchor holds")
        forged = os.path.join(work, "forged-anchor.json")
        with open(forged, "w") as f:
            json.dump(dict(anchor, headHash="0" * 64), f)
        b.el("#anchor-file").send_keys(forged)
        b.text_in("#anchor-result", "rewritten")
        b.safe("audit anchor")
        b.shot("audit-anchor")

        # ---- the outbox feed and its signing key ----
        b.clickable("#nav-outbox").click()
        b.text_in("#outbox-table", "u-bob")  # the last entry: the erasure
        feed = c.api("GET", "/v1/outbox", c.officer)["entries"]
        shown = b.el("#outbox-table").text
        check(feed and all(e["kind"] in shown and e["requestId"] in shown for e in feed),
              "the outbox page lists the feed's entries (%s)" % [e["kind"] for e in feed])
        key = c.api("GET", "/v1/outbox/public-key", c.officer)["publicKey"]
        b.text_in("#outbox-key", key)
        b.safe("outbox")
        b.shot("outbox")

        # ---- Chinese ----
        Select(b.el("#lang")).select_by_value("zh")
        b.text_in("#nav-registry", "登记册")
        b.clickable("#nav-registry").click()
        b.text_in("#registry-title", "目的登记册")
        b.clickable("#registry-show").click()
        b.text_in("#records-table", "45 天")
        b.safe("registry (zh)", [XSS_PROP])
        b.shot("registry-zh")
        b.clickable("#nav-stats").click()
        b.text_in("#stats-title", "同意统计")
        b.clickable("#stats-show").click()
        b.text_in("#stats-table caption", "shop 的同意情况")
        b.shot("consent-stats-zh")
        Select(b.el("#lang")).select_by_value("en")
        b.text_in("#nav-registry", "Registry")

        # ---- roles: the analyst gets no registry; the operator reads it, without editing ----
        b.clickable("#signout").click()
        b.login(c.analyst)
        navs = sorted(e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, "nav.pages a"))
        check("nav-registry" not in navs, "the analyst has no registry page (%s)" % navs)
        check("nav-stats" in navs, "the analyst has the consent statistics")
        b.go("#/registry")
        b.el("main h1")
        check(not d.find_elements(By.ID, "registry-title"), "#/registry does not open the registry for the analyst")
        check(c.call("GET", "/v1/projects/shop/registry", c.analyst)[0] == 403, "the API refuses the analyst too")
        b.clickable("#signout").click()
        b.login(c.operator)
        navs = sorted(e.get_attribute("id") for e in d.find_elements(By.CSS_SELECTOR, "nav.pages a"))
        check("nav-stats" not in navs, "the operator has no consent statistics (%s)" % navs)
        check(c.call("GET", "/v1/projects/shop/consent/stats", c.operator)[0] == 403, "the API refuses the operator too")
        b.clickable("#nav-registry").click()
        box = b.el("#registry-project")
        box.clear()
        box.send_keys("shop")
        b.clickable("#registry-show").click()
        b.text_in("#purposes-table", "support")
        check(not d.find_elements(By.CSS_SELECTOR, "#purpose-add, button.edit-purpose, #restriction-mode"),
              "the operator reads the registry without edit controls")
        b.safe("registry (operator)", [XSS_PROP])
    except Exception:
        base.show_failure(b, os.path.join(args.screenshots, "failure-pages.png"))
        raise
    finally:
        if b is not None:
            b.quit()
        c.stop()
        hook.shutdown()


if __name__ == "__main__":
    sys.exit(base.main(run, prefix="ferry-console-pages-test-"))
