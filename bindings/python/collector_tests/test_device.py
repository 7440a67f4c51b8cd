"""The Python binding against a real ferry-collector over TLS, started by bindings/test/bindings_collector_test.cc
(bindings.collector.Python), which passes its address, write key, CA, an officer's token and ferryctl in FERRY_TEST_*
and afterwards checks what the collector holds (the consent records name the notice and its language; the minor's
mark and the guardian's grant are on record; the access request was delivered)."""

import json
import os
import subprocess

import pytest

import ferry

ENV = {k: os.environ.get("FERRY_TEST_" + k) for k in ("URL", "WRITE_KEY", "CA", "TOKEN", "FERRYCTL", "DIR", "USER")}
pytestmark = pytest.mark.skipif(not all(ENV.values()), reason="run by bindings.collector.Python (needs a collector)")


def device(**kw):
    opts = dict(endpoint=ENV["URL"], write_key=ENV["WRITE_KEY"], ca_file=ENV["CA"], flush_interval_ms=3600000,
                data_dir=os.path.join(ENV["DIR"], "py-data"), app_name="bindings-test", app_version="1.0",
                default_consent={"analytics": ferry.Consent.GRANTED}, session_timeout_ms=60000,
                reset_unreadable_buffer=False)
    opts.update(kw)
    return ferry.Client(**opts)


def officer(*args):
    out = subprocess.run([ENV["FERRYCTL"], "--url", ENV["URL"], "--token", ENV["TOKEN"], "--ca-file", ENV["CA"],
                          "--json", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def test_1_notice_minor_guardian_and_a_request_filed_from_the_device():
    with device(notice=("privacy-notice", "2026-11"), consent_language="de-CH",
                notice_changed_purposes=["marketing"]) as c:
        assert os.path.exists(os.path.join(ENV["DIR"], "py-data", "ferry", "bindings-test", "buffer.db"))
        c.identify(ENV["USER"])
        c.set_consent("marketing", ferry.Consent.GRANTED)
        assert c.get_consent("marketing") is ferry.Consent.GRANTED
        assert c.stats()["minor"] is False
        c.set_minor(True)
        assert c.stats()["minor"] is True
        assert c.get_consent("marketing") is ferry.Consent.PENDING  # a minor's own grant admits nothing
        with pytest.raises(ferry.ConsentDeniedError):
            c.track("Viewed", purpose="marketing")
        c.set_consent_guardian("marketing", ferry.Consent.GRANTED)
        assert c.get_consent("marketing") is ferry.Consent.GRANTED
        with pytest.raises(ferry.InvalidArgumentError):
            c.set_consent_guardian("necessary", ferry.Consent.DENIED)
        with pytest.raises(ferry.InvalidArgumentError):
            c.set_consent_guardian("mark\0eting", ferry.Consent.GRANTED)
        with pytest.raises(TypeError):
            c.set_minor(1)
        c.track("Viewed", purpose="marketing")
        c.flush(20000)

        receipt = c.request("access", 20000)
        assert isinstance(receipt, dict)
        assert receipt["kind"] == "access" and receipt["state"] == "awaiting_verification"
        assert isinstance(receipt["reference"], str)
        status = c.request_status(receipt)
        assert status["state"] == "awaiting_verification" and status["copyReady"] is False
        assert c.request_copy(receipt["receipt"]) is None  # not approved yet

        officer("requests", "approve", receipt["reference"], "--method", "app-login")
        assert c.request_status(receipt["receipt"])["copyReady"] is True
        copy = c.request_copy(receipt)
        assert copy["format"] == "ferry-subject-export/1"
        done = c.request_status(receipt)
        assert done["state"] == "completed" and done["delivered"] is True

        code = c.request_verification_code(20000)
        assert len(code["code"]) == 8 and code["code"].isdigit() and code["expiresAt"]

        with pytest.raises(ferry.InvalidArgumentError):
            c.request("Not A Kind", 1000)
        with pytest.raises(ferry.InvalidArgumentError):
            c.request_status("no-such-receipt", 1000)
        with pytest.raises(TypeError):
            c.request_status(42)
    with pytest.raises(ferry.ClientClosedError):
        c.set_minor(False)
    with pytest.raises(ferry.ClientClosedError):
        c.request("access")


def test_2_a_notice_change_narrowed_to_analytics_keeps_the_marketing_grant():
    with device(notice=("privacy-notice", "2026-12"), consent_language="de-CH",
                notice_changed_purposes="analytics") as c:
        assert c.get_consent("marketing") is ferry.Consent.GRANTED
        assert c.stats()["minor"] is True  # persisted
    with pytest.raises(ferry.InvalidArgumentError):
        device(notice_changed_purposes=[])
    with pytest.raises(ferry.InvalidArgumentError):
        device(notice=("privacy-notice", "bad\x01version"))
    with pytest.raises(TypeError):
        device(notice="privacy-notice")
    with pytest.raises(ferry.InvalidArgumentError):
        device(data_dir="relative/dir")


def test_3_the_receipt_is_kept_when_the_collector_cannot_be_reached(tmp_path):
    with ferry.Client(endpoint="http://127.0.0.1:1", write_key="fw_unreachable", flush_interval_ms=3600000,
                      storage_path=str(tmp_path / "offline.db")) as c:
        with pytest.raises((ferry.FerryTimeoutError, ferry.NetworkError)) as ei:
            c.request("access", 2000)
        receipt = ei.value.receipt
        assert receipt["state"] == "queued" and receipt["reference"] is None
        assert c.request_status(receipt, 2000)["state"] == "queued"


def test_4_an_unreadable_buffer_is_refused_unless_reset_is_chosen():
    wrong = bytes([7]) + bytes(31)
    with pytest.raises(ferry.FerryError) as ei:
        device(encryption_key=wrong)
    assert ei.value.status is ferry.Status.BUFFER_UNREADABLE
    with device(encryption_key=wrong, reset_unreadable_buffer=True) as c:
        assert c.stats()["buffer_resets"] == 1
        assert c.get_consent("marketing") is ferry.Consent.DENIED
