package io.ferry;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
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
    return stat(f.statsJson(), key);
  }

  /** A numeric counter of a stats JSON object (-1 when absent); TransportTest uses it too. */
  static long stat(String s, String key) {
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
        .holdPending("marketing", 24L * 3600 * 1000) // pending marketing is held: opt-in since issue 12
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

    // The buffer with another key: refused with its own status, nothing changed.
    expectStatus(FerryException.Status.BUFFER_UNREADABLE, "wrong key",
        () -> Ferry.open(options(dir).encryptionKey(new byte[32])));
    try (Ferry again = Ferry.open(options(dir))) {
      check(again.exportLocal().contains("promo_seen"), "buffer intact after a wrong key");
    }

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

    // The app's data directory (Android: Context.getNoBackupFilesDir()): the default buffer and its key go below it.
    File data = new File(root, "data");
    try (Ferry d = Ferry.open(new Ferry.Options()
             .dataDir(data.getPath())
             .defaultConsent("analytics", Ferry.Consent.GRANTED)
             .app("java-data-dir", "1.0"))) {
      d.track("under_the_data_dir", Map.of("n", 1));
      check(d.exportLocal().contains("under_the_data_dir"), "event in the data dir's buffer");
    }
    File dataBuffer = new File(data, "ferry/java-data-dir/buffer.db");
    check(dataBuffer.isFile(), "buffer below the data dir: " + dataBuffer);
    check(new File(dataBuffer.getPath() + ".key").isFile(), "its key file beside it");
    FerryException relative = expectStatus(FerryException.Status.INVALID_ARGUMENT, "relative data dir",
        () -> Ferry.open(options(new File(root, "b")).dataDir("relative/dir")));
    check(relative != null && relative.getMessage().contains("dataDir"), "dataDir named");

    callbacks(root);

    // PII rules as a map: masking instead of redaction.
    try (Ferry g = Ferry.open(options(new File(root, "c"))
             .piiRules(Map.of("detectors", Map.of("email", "mask")))
             .durability(Ferry.Durability.SYNC))) {
      g.track("login", Map.of("email", "heidi@example.com"));
      String ex = g.exportLocal();
      check(ex.contains("***@example.com") && !ex.contains("heidi@"), "email masked by rules");
    }
  }

  /**
   * The Java transport and log handler, without a collector: requests reach the transport on Ferry's uploader thread
   * (a native thread attached to the JVM as a daemon, the same one for every request, detached when the client
   * closes); a transport that throws or answers 503 makes Ferry retry (counted in stats "retries") and log why; a log
   * handler that throws disturbs nothing. The transport against a real collector is TransportTest.
   */
  private static void callbacks(File root) throws Exception {
    List<String> lines = Collections.synchronizedList(new ArrayList<>());
    List<Thread> senders = Collections.synchronizedList(new ArrayList<>());
    List<Transport.Request> requests = Collections.synchronizedList(new ArrayList<>());
    AtomicInteger calls = new AtomicInteger();
    Transport failing = req -> {
      senders.add(Thread.currentThread());
      requests.add(req);
      if (calls.incrementAndGet() % 2 == 1) throw new java.io.IOException("no route to the collector (test)");
      return new Transport.Response(503, 0, "{\"error\":\"busy\"}".getBytes(StandardCharsets.UTF_8));
    };
    LogHandler log = (level, message) -> {
      lines.add(level + " " + message);
      throw new IllegalStateException("a log handler that throws must not disturb the library");
    };
    Thread caller = Thread.currentThread();
    Ferry f = Ferry.open(options(new File(root, "callbacks"))
        .endpoint("https://collector.invalid")
        .writeKey("wk_test")
        .transport(failing)
        .log(log)
        .flushIntervalMs(100));
    try {
      f.track("through_java", Map.of("plan", "pro"));
      // Each failed attempt is counted once the transport has returned; wait for two (one throw, one 503).
      long deadline = System.nanoTime() + 60_000_000_000L;
      while (stat(f, "retries") < 2 && System.nanoTime() < deadline) {
        try {
          f.flush(500);
        } catch (FerryException e) {
          check(e.getStatus() == FerryException.Status.TIMEOUT || e.getStatus() == FerryException.Status.NETWORK,
              "flush through a failing transport: " + e.getStatus());
        }
      }
      check(stat(f, "retries") >= 2, "an exception and a 503 from the transport are retried");
      check(stat(f, "sent") == 0, "nothing counted as sent");
    } finally {
      try {
        f.close(0);
      } catch (FerryException e) {
        check(e.getStatus() == FerryException.Status.TIMEOUT, "close(0) with unsent events: " + e.getStatus());
      }
    }
    check(calls.get() >= 2, "transport called, got " + calls.get());
    Transport.Request first = requests.isEmpty() ? null : requests.get(0);
    check(first != null && first.method().equals("POST"), "method POST");
    check(first != null && first.url().startsWith("https://collector.invalid/"), "url under the endpoint");
    check(first != null && "Bearer wk_test".equals(first.header("authorization")), "write key header");
    check(first != null && first.body().length > 0 && first.timeoutMs() > 0, "body and timeout");
    Thread sender = senders.isEmpty() ? null : senders.get(0);
    check(sender != null && sender != caller && sender.isDaemon(), "sent on Ferry's thread, attached as a daemon");
    boolean same = true;
    for (Thread t : senders) same &= t == sender;
    check(same, "one uploader thread, attached once");
    if (sender != null) sender.join(10_000); // detached when the native thread exits (close joined it)
    check(sender != null && !sender.isAlive(), "the uploader thread is detached from the JVM after close");
    boolean failedLine = false;
    for (String l : lines.toArray(new String[0])) failedLine |= l.contains("native transport failed");
    check(failedLine, "log handler received the transport failure: " + lines);
    boolean retryLine = false;
    for (String l : lines.toArray(new String[0])) retryLine |= l.contains("503");
    check(retryLine, "log handler received the 503: " + lines);
  }

  private static void deleteTree(File f) {
    File[] kids = f.listFiles();
    if (kids != null) {
      for (File k : kids) deleteTree(k);
    }
    f.delete();
  }
}
