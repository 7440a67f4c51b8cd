package io.ferry;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * The Java binding's later options and calls against a real ferry-collector over TLS, started by
 * bindings/test/bindings_collector_test.cc (bindings.collector.Java), which passes its address, write key, CA, an
 * officer's token and ferryctl in FERRY_TEST_* and afterwards checks what the collector holds (the consent records
 * name the notice and its language; the minor's mark and the guardian's grant are on record; the access request was
 * delivered). Prints every failed check and exits 1 if any failed.
 */
public final class DeviceTest {
  private static int checks = 0;
  private static int failed = 0;

  private static void check(boolean ok, String what) {
    checks++;
    if (!ok) {
      failed++;
      System.err.println("FAILED: " + what);
    }
  }

  private static String env(String name) {
    String v = System.getenv("FERRY_TEST_" + name);
    if (v == null || v.isEmpty()) {
      System.err.println("FERRY_TEST_" + name + " is not set (run by bindings.collector.Java)");
      System.exit(2);
    }
    return v;
  }

  private static final String URL = env("URL");
  private static final String DIR = env("DIR");

  private static Ferry.Options device() {
    return new Ferry.Options()
        .endpoint(URL)
        .writeKey(env("WRITE_KEY"))
        .caFile(env("CA"))
        .flushIntervalMs(3600000)
        .dataDir(DIR + "/java-data")
        .app("bindings-test", "1.0")
        .defaultConsent("analytics", Ferry.Consent.GRANTED)
        .sessionTimeoutMs(60000)
        .resetUnreadableBuffer(false);
  }

  /** The status of what a call threw, or null when it threw nothing. */
  private static FerryException.Status thrown(Runnable r) {
    try {
      r.run();
      return null;
    } catch (FerryException e) {
      return e.getStatus();
    }
  }

  private static Map<String, Object> stats(Ferry f) {
    return Json.parseObject(f.statsJson());
  }

  /** ferryctl as the officer; its --json answer. */
  private static String officer(String... args) throws IOException, InterruptedException {
    String[] cmd = new String[8 + args.length];
    String[] head = {env("FERRYCTL"), "--url", URL, "--token", env("TOKEN"), "--ca-file", env("CA"), "--json"};
    System.arraycopy(head, 0, cmd, 0, head.length);
    System.arraycopy(args, 0, cmd, head.length, args.length);
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    check(p.waitFor() == 0, "ferryctl " + String.join(" ", args) + ": " + out);
    return out;
  }

  public static void main(String[] args) throws Exception {
    String user = env("USER");
    try (Ferry f = Ferry.open(device()
        .notice("privacy-notice", "2026-11")
        .consentLanguage("de-CH")
        .noticeChangedPurposes("marketing"))) {
      check(new File(DIR + "/java-data/ferry/bindings-test/buffer.db").exists(), "buffer in the data directory");
      f.identify(user);
      f.setConsent("marketing", Ferry.Consent.GRANTED);
      check(f.getConsent("marketing") == Ferry.Consent.GRANTED, "granted");
      check(Boolean.FALSE.equals(stats(f).get("minor")), "not a minor yet");
      f.setMinor(true);
      check(Boolean.TRUE.equals(stats(f).get("minor")), "marked as a minor");
      check(f.getConsent("marketing") == Ferry.Consent.PENDING, "a minor's own grant admits nothing");
      check(thrown(() -> f.track("Viewed", null, "marketing")) == FerryException.Status.CONSENT_DENIED,
          "pending while a minor");
      f.setConsentGuardian("marketing", Ferry.Consent.GRANTED);
      check(f.getConsent("marketing") == Ferry.Consent.GRANTED, "the guardian's grant admits");
      check(thrown(() -> f.setConsentGuardian("necessary", Ferry.Consent.DENIED))
          == FerryException.Status.INVALID_ARGUMENT, "necessary cannot be denied");
      check(thrown(() -> f.setConsentGuardian("mark\0eting", Ferry.Consent.GRANTED))
          == FerryException.Status.INVALID_ARGUMENT, "a NUL is refused through the ABI");
      f.track("Viewed", null, "marketing");
      f.flush(20000);

      Ferry.RequestReceipt receipt = f.request("access", 20000);
      check("access".equals(receipt.kind()), "kind: " + receipt);
      check("awaiting_verification".equals(receipt.state()), "state: " + receipt);
      check(receipt.reference() != null && !receipt.reference().isEmpty(), "reference: " + receipt);
      Ferry.RequestStatus status = f.requestStatus(receipt, 20000);
      check("awaiting_verification".equals(status.state()) && !status.copyReady(), "status: " + status);
      check(f.requestCopy(receipt, 20000) == null, "no copy before approval");

      officer("requests", "approve", receipt.reference(), "--method", "app-login");
      check(f.requestStatus(receipt.receipt(), 20000).copyReady(), "copy ready after approval");
      String copy = f.requestCopy(receipt.receipt(), 20000);
      check(copy != null && "ferry-subject-export/1".equals(Json.parseObject(copy).get("format")), "copy: " + copy);
      status = f.requestStatus(receipt, 20000);
      check("completed".equals(status.state()) && status.delivered(), "completed: " + status);

      Ferry.VerificationCode code = f.requestVerificationCode(20000);
      check(code.code() != null && code.code().matches("[0-9]{8}"), "code: " + code.code());
      check(code.expiresAt() != null && !code.expiresAt().isEmpty(), "expiresAt");

      check(thrown(() -> f.request("Not A Kind", 1000)) == FerryException.Status.INVALID_ARGUMENT, "bad kind");
      check(thrown(() -> f.requestStatus("no-such-receipt", 1000)) == FerryException.Status.INVALID_ARGUMENT,
          "unknown receipt");
      check(thrown(() -> f.requestStatus((String) null, 1000)) == FerryException.Status.INVALID_ARGUMENT,
          "null receipt");
      f.close(20000);
      check(thrown(() -> f.setMinor(false)) == FerryException.Status.CLOSED, "closed");
      check(thrown(() -> f.request("access", 1000)) == FerryException.Status.CLOSED, "closed");
    }

    // A new notice version whose changes concern analytics only: the guardian's marketing grant stands.
    try (Ferry f = Ferry.open(device().notice("privacy-notice", "2026-12").consentLanguage("de-CH")
        .noticeChangedPurposes("analytics"))) {
      check(f.getConsent("marketing") == Ferry.Consent.GRANTED, "grant kept under the new notice");
      check(Boolean.TRUE.equals(stats(f).get("minor")), "the mark persists");
    }
    check(thrown(() -> Ferry.open(device().noticeChangedPurposes())) == FerryException.Status.INVALID_ARGUMENT,
        "empty list of changed purposes");
    check(thrown(() -> Ferry.open(device().notice("privacy-notice", "bad\u0001version")))
        == FerryException.Status.INVALID_ARGUMENT, "control character in the version");
    check(thrown(() -> Ferry.open(device().sessionTimeoutMs(10))) == FerryException.Status.INVALID_ARGUMENT,
        "session timeout below 1 s");
    check(thrown(() -> Ferry.open(device().consentLanguage(""))) == FerryException.Status.INVALID_ARGUMENT,
        "empty language");

    // The collector cannot be reached: the request stays queued, and the exception carries its receipt.
    File offline = new File(DIR, "java-offline.db");
    try (Ferry f = Ferry.open(new Ferry.Options().endpoint("http://127.0.0.1:1").writeKey("fw_unreachable")
        .storagePath(offline.getPath()).flushIntervalMs(3600000))) {
      try {
        f.request("access", 2000);
        check(false, "an unreachable collector registered the request");
      } catch (Ferry.RequestException e) {
        check(e.getStatus() == FerryException.Status.TIMEOUT || e.getStatus() == FerryException.Status.NETWORK,
            "status " + e.getStatus());
        Ferry.RequestReceipt r = e.getReceipt();
        check("queued".equals(r.state()) && r.reference() == null, "queued receipt: " + r);
        check("queued".equals(f.requestStatus(r, 2000).state()), "queued status");
      }
      f.close(0);
    } catch (FerryException e) {
      if (e.getStatus() != FerryException.Status.TIMEOUT) throw e;
    }

    // A key that cannot read the buffer: refused by default, reset on request.
    byte[] wrong = new byte[32];
    wrong[0] = 7;
    check(thrown(() -> Ferry.open(device().encryptionKey(wrong))) == FerryException.Status.BUFFER_UNREADABLE,
        "unreadable buffer refused");
    try (Ferry f = Ferry.open(device().encryptionKey(wrong).resetUnreadableBuffer(true))) {
      check(Long.valueOf(1).equals(stats(f).get("buffer_resets")), "buffer reset: " + f.statsJson());
      check(f.getConsent("marketing") == Ferry.Consent.DENIED, "consent reset");
    }

    System.out.println("DeviceTest: " + checks + " checks, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
