#!/usr/bin/env python3
"""A person's copy in a real browser: the HTML copy of a subject with 10,000 events opens in Debian's chromium.

A real ferry-collector over TLS on loopback (the console test's Collector: a certificate made here) gets a processing
registry through the admin API and 10,000 events of one person through ingest, one of them an XSS payload; the real
ferryctl writes the person's HTML copy in English and in Simplified Chinese to files; headless chromium (through
chromium-driver and python3-selenium) opens each file and must show the cover page with the art. 15(1) information
from the registry, every event as a table row, the payload as text (no script ran, no element came from it) and no
Content-Security-Policy violation (the copy fetches nothing). Screenshots go to SCREENSHOT_DIR.

Usage: copy_browser_test.py --collector BIN --ferryctl BIN --chromium BIN --chromedriver BIN --screenshots DIR
"""
import datetime
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "console"))
import console_browser_test  # noqa: E402
from console_browser_test import XSS_EVENT, Browser, Collector, check  # noqa: E402


EVENTS = 10000
REGISTRY = {
    "controller": {"name": "Shop GmbH", "contact": "privacy@shop.example"},
    "source": "the Shop app on your phone",
    "purposes": [
        {"id": "analytics", "name": "Product analytics", "description": "Counting how the app is used",
         "legalBasis": "legitimate_interests", "dataCategories": ["usage events"], "retentionDays": 90,
         "recipients": ["Hosting provider"]},
    ],
}


def seed(c):
    t0 = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)
    batch = []
    for i in range(EVENTS):
        ts = (t0 + datetime.timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        batch.append({"messageId": "c-%d" % i, "type": "track", "userId": "u-copy", "anonymousId": "dev-copy",
                      "event": XSS_EVENT if i == 7 else "Viewed Item", "purpose": "analytics", "timestamp": ts,
                      "properties": {"item": "sku-%05d" % i}})
        if len(batch) == 1000:
            c.api("POST", "/v1/batch", c.write_key, {"batch": batch})
            batch = []
    check(True, "seeded %d events of u-copy through ingest" % EVENTS)


def export(args, c, work, lang):
    path = os.path.join(work, "copy-%s.html" % lang)
    subprocess.run([args.ferryctl, "--url", c.base, "--token", c.officer, "--ca-file", c.cert, "subject", "export",
                    "u-copy", "--format", "html", "--lang", lang, "-o", path], check=True, capture_output=True)
    check(os.path.getsize(path) > 0, "ferryctl wrote the %s copy (%d bytes)" % (lang, os.path.getsize(path)))
    return path


def run(args, work):
    c = Collector(args.collector, args.ferryctl, work)
    b = None
    try:
        c.api("PUT", "/v1/projects/shop/registry", c.officer, REGISTRY)
        seed(c)
        en, zh = export(args, c, work, "en"), export(args, c, work, "zh-CN")
        b = Browser(args, c, work)
        for path, lang, cover, title in (
                (en, "en", "What we do with your data", "A copy of your personal data"),
                (zh, "zh-CN", "我们如何处理您的个人信息", "您的个人信息副本")):
            b.d.get("file://" + path)
            b.text_in("#title", title)
            b.text_in("#cover", cover)
            text = b.el("#cover").text
            for want in ("Product analytics", "Counting how the app is used", "Hosting provider",
                         "the Shop app on your phone", "analytics: 90"):
                check(want in text, "%s cover shows %r" % (lang, want))
            rows = b.d.execute_script("return document.querySelectorAll('table.events tbody tr').length")
            check(rows == EVENTS, "%s copy: %d event rows" % (lang, rows))
            check(b.d.execute_script("return document.documentElement.lang") == lang, "%s copy: lang=%s" % (lang, lang))
            check(b.d.execute_script("return document.scripts.length") == 0, "%s copy: no script element" % lang)
            check(b.d.execute_script("return document.images.length") == 0, "%s copy: no image element" % lang)
            b.safe(lang + " copy", payloads=[XSS_EVENT])
            b.shot("copy-cover-" + lang)
    except Exception:
        if b is not None:
            b.shot("failure")
        raise
    finally:
        if b is not None:
            b.quit()
        c.stop()


if __name__ == "__main__":
    sys.exit(console_browser_test.main(run, "ferry-copy-test-"))
