package io.ferry;

import java.io.File;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Tests of the Java binding on the host JVM against the real libferry.so. Usage: FerryTest <scratch dir>.
 * Prints every failed check and exits 1 if any failed.
 */
public final class FerryTest {
  private static int checks = 0;
  private static final List<String> failures = new ArrayList<>();

  private static void check(boolean ok, String what) {
    checks++;
    if (!ok) {
      failures.add(what);
      System.err.println("FAILED: " + what);
    }
  }

  interface Body {
    void run() throws Exception;
  }

  /** Runs body and checks it throws FerryException with the given status; returns the exception or null. */
  private static FerryException expectStatus(FerryException.Status want, String what, Body body) {
    try {
      body.run();
      check(false, what + ": no exception, want " + want);
    } catch (FerryException e) {
      check(e.getStatus() == want, what + ": got " + e.getStatus() + " (" + e.getMessage() + "), want " + want);
      check(e.getCode() == want.code, what + ": code");
      return e;
    } catch (Exception e) {
      check(false, what + ": unexpected " + e);
    }
    return null;
  }

  private static long stat(Ferry f, String key) {
    String s = f.statsJson();
    String needle = "\"" + key + "\":";
    int i = s.indexOf(needle);
    if (i < 0) return -1;
    int j = i + needle.length();
    int k = j;
    while (k < s.length() && (Character.isDigit(s.charAt(k)) || s.charAt(k) == '-')) k++;
    return Long.parseLong(s.substring(j, k));
  }

  private static byte[] key() {
    byte[] k = new byte[32];
    for (int i = 0; i < k.length; i++) k[i] = (byte) (i * 7 + 1);
    return k;
  }

  private static Ferry.Options options(File dir) {
    return new Ferry.Options()
        .storagePath(new File(dir, "buffer.db").getPath())
        .encryptionKey(key())
        .defaultConsent("analytics", Ferry.Consent.GRANTED)
        .defaultConsent("personalization", Ferry.Consent.DENIED)
        .app("java-test", "1.0");
  }

  public static void main(String[] args) throws Exception {
    File root = Files.createTempDirectory(new File(args.length > 0 ? args[0] : "/tmp").toPath(), "ferry_java").toFile();
    try {
      run(root);
    } finally {
      deleteTree(root);
    }
    System.out.println("FerryTest: " + checks + " checks, " + failures.size() + " failed");
    System.exit(failures.isEmpty() ? 0 : 1);
  }

  private static void run(File root) throws Exception {
    check(Ferry.version().matches("\\d+\\.\\d+\\.\\d+"), "version format");
    check(Ferry.statusMessage(2).startsWith("consent denied"), "status message");

    File dir = new File(root, "a");
    try (Ferry f = Ferry.open(options(dir))) {
      Map<String, Object> props = new LinkedHashMap<>();
      props.put("email", "grace@example.com");
      props.put("mobile", "13712345678");
      props.put("password", "pa55");
      props.put("plan", "pro");
      props.put("price", 9.5);
      props.put("count", 3);
      props.put("tags", Arrays.asList("a", "b"));
      props.put("ids", new int[] {1, 2});
      props.put("quote", "say \"hi\"\n\u4e2d\u6587 \ud83d\ude00");
      Map<String, Object> nested = new HashMap<>();
      nested.put("ip", "192.0.2.44");
      props.put("nested", nested);
      props.put("nothing", null);
      f.track("signup", props);
      f.track("promo_seen", null, "marketing");
      f.screen("Home");
      f.identify("user-5", Map.of("tier", "gold"));
      check(f.getConsent("analytics") == Ferry.Consent.GRANTED, "analytics granted");
      check(f.getConsent("marketing") == Ferry.Consent.PENDING, "marketing pending");
      check(f.getConsent("personalization") == Ferry.Consent.DENIED, "personalization denied");

      String exported = f.exportLocal();
      check(exported.contains("\"[email]\""), "email redacted");
      check(exported.contains("\"[phone]\""), "phone redacted");
      check(exported.contains("\"[ip]\""), "ip redacted");
      check(!exported.contains("grace@example.com"), "raw email absent");
      check(!exported.contains("13712345678"), "raw phone absent");
      check(!exported.contains("pa55"), "password dropped");
      check(exported.contains("\"plan\": \"pro\""), "plain property kept");
      check(exported.contains("\"price\": 9.5"), "double kept");
      check(exported.contains("\u4e2d\u6587 \ud83d\ude00"), "non-BMP text round-trips as UTF-8");
      check(exported.contains("user-5"), "userId");
      check(stat(f, "pending_consent") == 1, "pending_consent == 1");

      FerryException denied = expectStatus(FerryException.Status.CONSENT_DENIED, "denied purpose",
          () -> f.track("recs", null, "personalization"));
      check(denied != null && denied.getMessage().startsWith("CONSENT_DENIED"), "status name in message");
      check(stat(f, "dropped_consent") == 1, "dropped_consent == 1");

      // Invalid input: through the ABI, counted.
      FerryException empty = expectStatus(FerryException.Status.INVALID_ARGUMENT, "empty event", () -> f.track(""));
      check(empty != null && empty.getMessage().contains("1-200 bytes"), "library's reason in message");
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "null event", () -> f.track(null));
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "NUL in event", () -> f.track("a\0b"));
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "lone surrogate", () -> f.track("x\ud800"));
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "NaN property",
          () -> f.track("x", Map.of("v", Double.NaN)));
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "unserialisable property",
          () -> f.track("x", Map.of("v", new Object())));
      Map<String, Object> cyclic = new HashMap<>();
      cyclic.put("self", cyclic);
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "cyclic map", () -> f.track("x", cyclic));
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "bad purpose", () -> f.track("x", null, "Bad Purpose"));
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "null screen", () -> f.screen(null));
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "null userId", () -> f.identify(null));
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "null consent state",
          () -> f.setConsent("marketing", null));
      expectStatus(FerryException.Status.INVALID_ARGUMENT, "necessary cannot be denied",
          () -> f.setConsent("necessary", Ferry.Consent.DENIED));
      check(stat(f, "invalid") == 12, "invalid == 12, got " + stat(f, "invalid"));
      check(f.getConsent(null) == Ferry.Consent.PENDING, "getConsent(null)");

      f.setConsent("marketing", Ferry.Consent.GRANTED);
      check(f.getConsent("marketing") == Ferry.Consent.GRANTED, "marketing granted");
      check(stat(f, "pending_consent") == 0, "pending released");
      expectStatus(FerryException.Status.NETWORK, "flush without endpoint", () -> f.flush(200));
      f.reset();
      check(f.exportLocal().contains("\"userId\": null"), "reset forgets userId");

      // Threads share one client.
      AtomicInteger errors = new AtomicInteger();
      Thread[] ts = new Thread[4];
      for (int i = 0; i < ts.length; i++) {
        final int t = i;
        ts[i] = new Thread(() -> {
          for (int j = 0; j < 50; j++) {
            try {
              f.track("tick", Map.of("t", t, "j", j));
            } catch (RuntimeException e) {
              errors.incrementAndGet();
            }
          }
        });
        ts[i].start();
      }
      for (Thread t : ts) t.join();
      check(errors.get() == 0, "no errors from threads");
      f.exportLocal(); // waits for the writer
      check(stat(f, "tracked") >= 200, "tracked >= 200");
    }

    // Closed client; reopen keeps data and consent.
    Ferry f = Ferry.open(options(dir));
    check(f.getConsent("marketing") == Ferry.Consent.GRANTED, "consent persisted");
    check(f.exportLocal().contains("promo_seen"), "events persisted");
    f.close(100);
    f.close(100); // no-op
    check(f.isClosed(), "isClosed");
    expectStatus(FerryException.Status.CLOSED, "track after close", () -> f.track("x"));
    expectStatus(FerryException.Status.CLOSED, "stats after close", f::statsJson);
    expectStatus(FerryException.Status.CLOSED, "consent after close", () -> f.getConsent("analytics"));

    // Options refused by the library, named in the message.
    FerryException bad = expectStatus(FerryException.Status.INVALID_ARGUMENT, "batchSize 0",
        () -> Ferry.open(options(new File(root, "b")).batchSize(0)));
    check(bad != null && bad.getMessage().contains("batchSize"), "option named");
    expectStatus(FerryException.Status.INVALID_ARGUMENT, "negative interval",
        () -> Ferry.open(options(new File(root, "b")).flushIntervalMs(-5)));
    expectStatus(FerryException.Status.INVALID_ARGUMENT, "short key",
        () -> Ferry.open(options(new File(root, "b")).encryptionKey(new byte[5])));
    expectStatus(FerryException.Status.INVALID_ARGUMENT, "http endpoint",
        () -> Ferry.open(options(new File(root, "b")).endpoint("http://collector.example.com")));
    expectStatus(FerryException.Status.INVALID_ARGUMENT, "NUL in app version",
        () -> Ferry.open(options(new File(root, "b")).app("app", "1\0")));
    expectStatus(FerryException.Status.INVALID_ARGUMENT, "bad pii rules",
        () -> Ferry.open(options(new File(root, "b")).piiRules(Map.of("detectors", Map.of("email", "explode")))));
    expectStatus(FerryException.Status.INVALID_ARGUMENT, "null options", () -> Ferry.open(null));
    File plain = new File(root, "plain");
    Files.write(plain.toPath(), new byte[] {1});
    expectStatus(FerryException.Status.STORAGE, "unusable storage path",
        () -> Ferry.open(options(new File(plain, "sub"))));

    // PII rules as a map: masking instead of redaction.
    try (Ferry g = Ferry.open(options(new File(root, "c"))
             .piiRules(Map.of("detectors", Map.of("email", "mask")))
             .durability(Ferry.Durability.SYNC))) {
      g.track("login", Map.of("email", "heidi@example.com"));
      String ex = g.exportLocal();
      check(ex.contains("***@example.com") && !ex.contains("heidi@"), "email masked by rules");
    }
  }

  private static void deleteTree(File f) {
    File[] kids = f.listFiles();
    if (kids != null) {
      for (File k : kids) deleteTree(k);
    }
    f.delete();
  }
}
