"""Tests of the Python binding against the real libferry.so (FERRY_LIBRARY) and real encrypted buffers."""

import os
import threading
import time

import pytest

import ferry

KEY = bytes(range(32))


def open_client(tmp_path, **kw):
    opts = dict(storage_path=str(tmp_path / "buffer.db"), encryption_key=KEY,
                default_consent={"analytics": ferry.Consent.GRANTED})
    opts.update(kw)
    return ferry.Client(**opts)


def test_library_loaded_from_env_or_wheel_and_version_matches():
    path = ferry.library_path()
    if os.environ.get("FERRY_TEST_BUNDLED") == "1":
        # The wheel test (python.wheel): the library bundled in the installed package, nothing else.
        assert not os.environ.get("FERRY_LIBRARY")
        assert path == os.path.join(os.path.dirname(os.path.realpath(ferry.__file__)), "libferry.so")
    else:
        assert os.environ.get("FERRY_LIBRARY"), "the ctest registration sets FERRY_LIBRARY"
        assert path == os.path.realpath(os.environ["FERRY_LIBRARY"])
    v = ferry.library_version()
    assert v.count(".") == 2 and all(p.isdigit() for p in v.split("."))
    assert v == ferry.__version__
    assert ferry.status_message(ferry.Status.CONSENT_DENIED).startswith("consent denied")


def test_track_masks_pii_and_export_and_stats(tmp_path):
    # marketing stays pending: its event is kept only because the client holds it (issue 12).
    with open_client(tmp_path, hold_pending={"marketing": 86400000}) as c:
        c.track("signup", {"email": "erin@example.com", "mobile": "13912345678", "password": "s3cret",
                           "plan": "pro", "nested": {"ip": "198.51.100.7"}, "n": 3, "ok": True})
        c.screen("Home", {"tab": "feed"})
        c.identify("user-99", {"tier": "gold"})
        c.track("promo_seen", {"campaign": "spring"}, purpose="marketing")
        exported = c.export_local()
        stats = c.stats()
    assert exported["userId"] == "user-99"
    names = [e.get("event") or e.get("name") for e in exported["events"]]
    assert "signup" in names and "Home" in names and "promo_seen" in names
    signup = next(e for e in exported["events"] if e.get("event") == "signup")
    props = signup["properties"]
    assert props["email"] == "[email]"
    assert props["mobile"] == "[phone]"
    assert "password" not in props
    assert props["nested"]["ip"] == "[ip]"
    assert props["plan"] == "pro" and props["n"] == 3 and props["ok"] is True
    assert stats["pending_consent"] == 1
    assert stats["invalid"] == 0
    assert stats["sent"] == 0


def test_consent_enum_and_denied_error(tmp_path):
    with open_client(tmp_path, default_consent={"analytics": ferry.Consent.GRANTED,
                                                "personalization": ferry.Consent.DENIED}) as c:
        assert c.get_consent("analytics") is ferry.Consent.GRANTED
        assert c.get_consent("marketing") is ferry.Consent.PENDING
        assert c.get_consent("personalization") is ferry.Consent.DENIED
        with pytest.raises(ferry.ConsentDeniedError) as ei:
            c.track("recs", {"item": 1}, purpose="personalization")
        assert ei.value.status is ferry.Status.CONSENT_DENIED
        assert ei.value.status_name == "CONSENT_DENIED"
        assert "consent denied" in ei.value.message
        assert isinstance(ei.value, ferry.FerryError)
        c.set_consent("marketing", ferry.Consent.GRANTED)
        assert c.get_consent("marketing") == ferry.Consent.GRANTED
        c.set_consent("marketing", ferry.Consent.DENIED)
        with pytest.raises(ferry.ConsentDeniedError):
            c.track("promo", purpose="marketing")
        with pytest.raises(ferry.InvalidArgumentError):
            c.set_consent("necessary", ferry.Consent.DENIED)
        with pytest.raises(TypeError):
            c.set_consent("marketing", "granted")
        assert c.stats()["dropped_consent"] == 2


def test_invalid_input_raises_with_reason_and_is_counted(tmp_path):
    with open_client(tmp_path) as c:
        with pytest.raises(ferry.InvalidArgumentError) as ei:
            c.track("")
        assert ei.value.status_name == "INVALID_ARGUMENT"
        assert "1-200 bytes" in ei.value.message  # the library's reason, from stats()["last_error"]
        with pytest.raises(ferry.InvalidArgumentError):
            c.track(None)
        with pytest.raises(ferry.InvalidArgumentError) as ei:
            c.track("evil\0event")
        assert "NUL" in ei.value.message
        with pytest.raises(ferry.InvalidArgumentError):
            c.track("surrogate\ud800")
        with pytest.raises(ferry.InvalidArgumentError):
            c.track("x", {"nan": float("nan")})
        with pytest.raises(ferry.InvalidArgumentError):
            c.track("x", {"obj": object()})
        with pytest.raises(ferry.InvalidArgumentError):
            c.track("x", purpose="Not A Purpose")
        with pytest.raises(ferry.InvalidArgumentError):
            c.screen(None)
        with pytest.raises(ferry.InvalidArgumentError):
            c.identify("a\0b")
        with pytest.raises(ferry.InvalidArgumentError):
            c.set_consent(None, ferry.Consent.GRANTED)
        assert c.stats()["invalid"] == 10
        # Wrong Python types are programming errors: TypeError, not sent to the library, not counted.
        with pytest.raises(TypeError):
            c.track(123)
        with pytest.raises(TypeError):
            c.track("x", ["not", "a", "dict"])
        with pytest.raises(TypeError):
            c.track("x", '{"json": "text"}')
        with pytest.raises(TypeError):
            c.identify(b"bytes-id")
        with pytest.raises(TypeError):
            c.flush("soon")
        assert c.stats()["invalid"] == 10
        assert c.get_consent("a\0b") is ferry.Consent.PENDING
        # Nothing but the consent record of the default (analytics granted), recorded at open (issue 12).
        assert [e["type"] for e in c.export_local()["events"]] == ["consent"]


def test_closed_client_raises_and_close_is_idempotent(tmp_path):
    c = open_client(tmp_path)
    c.track("one")
    c.close()
    assert c.closed
    c.close()
    for call in (lambda: c.track("x"), lambda: c.screen("x"), lambda: c.identify("u"), c.reset, c.stats,
                 c.export_local, lambda: c.flush(10), lambda: c.forget(10),
                 lambda: c.set_consent("marketing", ferry.Consent.GRANTED), lambda: c.get_consent("analytics")):
        with pytest.raises(ferry.ClientClosedError) as ei:
            call()
        assert ei.value.status is ferry.Status.CLOSED
    with open_client(tmp_path) as again:  # the buffer was released and keeps the event
        assert any(e.get("event") == "one" for e in again.export_local()["events"])


def test_options_errors(tmp_path):
    with pytest.raises(TypeError):
        open_client(tmp_path, no_such_option=1)
    with pytest.raises(ferry.InvalidArgumentError) as ei:
        open_client(tmp_path, batch_size=0)
    assert "batch_size" in ei.value.message
    with pytest.raises(ferry.InvalidArgumentError):
        open_client(tmp_path, batch_size=2**40)
    with pytest.raises(TypeError):
        open_client(tmp_path, batch_size="10")
    with pytest.raises(ferry.InvalidArgumentError) as ei:
        open_client(tmp_path, encryption_key=b"short")
    assert "encryption_key" in ei.value.message
    with pytest.raises(TypeError):
        open_client(tmp_path, encryption_key="not bytes")
    with pytest.raises(ferry.InvalidArgumentError):
        open_client(tmp_path, endpoint="http://collector.example.com")
    with pytest.raises(ferry.InvalidArgumentError):
        open_client(tmp_path, storage_path="a\0b")
    with pytest.raises(ferry.InvalidArgumentError):
        open_client(tmp_path, pii_rules={"detectors": {"email": "explode"}})
    with pytest.raises(ferry.InvalidArgumentError):
        open_client(tmp_path, default_consent={"necessary": ferry.Consent.DENIED})
    with pytest.raises(TypeError):
        open_client(tmp_path, log="not callable")
    with pytest.raises(ferry.StorageError):
        (tmp_path / "file").write_text("x")
        open_client(tmp_path, storage_path=str(tmp_path / "file" / "buffer.db"))


def test_pii_rules_dict_log_callback_and_durability(tmp_path):
    lines = []
    with open_client(tmp_path, pii_rules={"detectors": {"email": "mask"}, "paths": {"*.pin": "drop"}},
                     log=lambda level, msg: lines.append((level, msg)), durability=ferry.Durability.SYNC,
                     app_name="pytest", app_version="1.0", flush_interval_ms=1000, batch_size=50,
                     max_storage_bytes=1 << 20) as c:
        c.track("login", {"email": "frank@example.com", "pin": "1234"})
        with pytest.raises(ferry.InvalidArgumentError):
            c.track("bad", {"a": float("inf")})
        with pytest.raises(ferry.InvalidArgumentError):
            c.track("")
        props = next(e for e in c.export_local()["events"] if e.get("event") == "login")["properties"]
    assert props["email"].endswith("***@example.com") and "frank" not in props["email"]
    assert "pin" not in props
    assert any(level == ferry.LogLevel.WARN and "1-200" in msg for level, msg in lines)


def test_flush_without_endpoint_reset_forget_and_persistence(tmp_path):
    with open_client(tmp_path) as c:
        c.identify("user-1")
        c.track("kept")
        with pytest.raises(ferry.NetworkError) as ei:
            c.flush(200)
        assert ei.value.status_name == "NETWORK"
        c.set_consent("marketing", ferry.Consent.GRANTED)
        c.reset()
        assert c.export_local()["userId"] is None
    with open_client(tmp_path) as c:
        assert c.get_consent("marketing") is ferry.Consent.GRANTED
        assert any(e.get("event") == "kept" for e in c.export_local()["events"])
        with pytest.raises((ferry.FerryTimeoutError, ferry.NetworkError)):
            c.forget(200)
        assert not any(e.get("event") == "kept" for e in c.export_local()["events"])


def test_threads_share_one_client(tmp_path):
    n_threads, per = 4, 50
    with open_client(tmp_path) as c:
        errors = []

        def work(i):
            try:
                for j in range(per):
                    c.track("tick", {"thread": i, "j": j})
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        ts = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == []
        ticks = [e for e in c.export_local()["events"] if e.get("event") == "tick"]
        assert len(ticks) == n_threads * per
        assert c.stats()["tracked"] == n_threads * per


def test_close_waits_for_calls_in_progress(tmp_path):
    c = open_client(tmp_path)
    stop = threading.Event()
    outcomes = {"ok": 0, "closed": 0, "other": []}

    def hammer():
        while not stop.is_set():
            try:
                c.track("busy")
                outcomes["ok"] += 1
            except ferry.ClientClosedError:
                outcomes["closed"] += 1
                return
            except Exception as e:  # pragma: no cover
                outcomes["other"].append(e)
                return

    ts = [threading.Thread(target=hammer) for _ in range(3)]
    for t in ts:
        t.start()
    deadline = time.monotonic() + 30
    while outcomes["ok"] < 30 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert outcomes["ok"] >= 30
    try:
        c.close(100)
    except ferry.FerryTimeoutError:
        pass  # unsent events stay buffered; the client is closed either way
    stop.set()
    for t in ts:
        t.join()
    assert outcomes["other"] == []
    assert outcomes["closed"] == 3


def test_none_means_unset(tmp_path):
    # endpoint=None is "no collector", exactly as leaving the option out: the client opens, buffers and cannot flush.
    with open_client(tmp_path, endpoint=None, write_key=None, ca_file=None, pii_rules=None, log=None,
                     app_name=None, session_timeout_ms=None) as c:
        c.track("buffered")
        with pytest.raises(ferry.NetworkError):
            c.flush(200)
        assert any(e.get("event") == "buffered" for e in c.export_local()["events"])
        assert c.stats()["sent"] == 0


def test_session_timeout_option(tmp_path):
    with pytest.raises(ferry.InvalidArgumentError) as ei:
        open_client(tmp_path, session_timeout_ms=10)  # below the 1 s minimum
    assert "session_timeout_ms" in ei.value.message
    with open_client(tmp_path, session_timeout_ms=60000) as c:
        c.track("in_session")
        events = [e for e in c.export_local()["events"] if e.get("event") == "in_session"]
    assert events and events[0]["context"]["sessionId"]


def test_every_public_name_and_option_is_documented():
    import inspect
    undocumented = []
    for name in ferry.__all__:
        obj = getattr(ferry, name)
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not inspect.getdoc(obj):
            undocumented.append(name)
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                fn = member.fget if isinstance(member, property) else member
                if not attr.startswith("_") and inspect.isfunction(fn) and not inspect.getdoc(fn):
                    undocumented.append(f"{name}.{attr}")
    assert undocumented == []
    doc = inspect.getdoc(ferry.Client)
    for option in ferry._OPTION_NAMES:
        assert option in doc, f"option {option} is missing from Client's docstring"


def test_a_pending_purpose_is_dropped_unless_held(tmp_path):
    with open_client(tmp_path) as c:
        with pytest.raises(ferry.ConsentDeniedError):
            c.track("promo_seen", purpose="marketing")
        assert c.stats()["dropped_pending"] == 1
        assert not any(e.get("event") == "promo_seen" for e in c.export_local()["events"])
    for bad in ({"sensitive": 86400000}, {"necessary": 86400000}, {"marketing": 999}):
        with pytest.raises(ferry.InvalidArgumentError):
            open_client(tmp_path, hold_pending=bad)
    with open_client(tmp_path, hold_pending={"marketing": 86400000}) as c:
        c.track("promo_seen", purpose="marketing")
        assert any(e.get("event") == "promo_seen" for e in c.export_local()["events"])  # waits for the commit
        assert c.stats()["pending_consent"] == 1
