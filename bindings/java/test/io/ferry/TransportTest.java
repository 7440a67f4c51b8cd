package io.ferry;

import java.io.ByteArrayInputStream;
import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * The Java transport against a real ferry-collector over TLS (started by java_transport_collector_test, which checks
 * afterwards what the collector stored). Usage: TransportTest URL WRITE_KEY CA_FILE SCRATCH_DIR EVENTS.
 *
 * <p>The transport is java.net.http.HttpClient trusting only the collector's test CA. The collector runs with a fault
 * plan whose first answers are 503 and 500: Ferry must retry them through the Java transport, then the batches are
 * accepted (2xx). Prints every failed check and exits 1 if any failed.
 */
public final class TransportTest {
  private static int checks = 0;
  private static int failed = 0;

  private static void check(boolean ok, String what) {
    checks++;
    if (!ok) {
      failed++;
      System.err.println("FAILED: " + what);
    }
  }

  /** Headers java.net.http sets itself and refuses from the caller. */
  private static final Set<String> RESTRICTED = Set.of("connection", "content-length", "expect", "host", "upgrade");

  /** An HttpClient that trusts exactly the certificates of a PEM file. */
  static HttpClient clientTrusting(File pem) throws Exception {
    KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
    ks.load(null, null);
    int i = 0;
    CertificateFactory cf = CertificateFactory.getInstance("X.509");
    for (Certificate c : cf.generateCertificates(new ByteArrayInputStream(Files.readAllBytes(pem.toPath())))) {
      ks.setCertificateEntry("ca" + i++, c);
    }
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(ks);
    SSLContext ssl = SSLContext.getInstance("TLS");
    ssl.init(null, tmf.getTrustManagers(), null);
    return HttpClient.newBuilder()
        .version(HttpClient.Version.HTTP_1_1)
        .sslContext(ssl)
        .connectTimeout(Duration.ofSeconds(10))
        .build();
  }

  /** The transport: one HTTPS POST per request, the answer handed back whatever its status. */
  static final class JdkTransport implements Transport {
    final HttpClient http;
    final List<Integer> statuses = Collections.synchronizedList(new ArrayList<>());
    final List<Thread> threads = Collections.synchronizedList(new ArrayList<>());

    JdkTransport(HttpClient http) {
      this.http = http;
    }

    @Override
    public Response send(Request req) throws Exception {
      threads.add(Thread.currentThread());
      HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(req.url()))
          .timeout(Duration.ofMillis(Math.max(1, req.timeoutMs())))
          .method(req.method(), HttpRequest.BodyPublishers.ofByteArray(req.body()));
      for (String h : req.headers()) {
        int colon = h.indexOf(':');
        if (colon <= 0) continue;
        String name = h.substring(0, colon).trim();
        if (RESTRICTED.contains(name.toLowerCase(Locale.ROOT))) continue;
        b.header(name, h.substring(colon + 1).trim());
      }
      HttpResponse<byte[]> r = http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
      statuses.add(r.statusCode());
      long retryAfter = 0;
      String ra = r.headers().firstValue("Retry-After").orElse("");
      if (ra.matches("\\d{1,9}")) retryAfter = Long.parseLong(ra);
      return new Response(r.statusCode(), retryAfter, r.body());
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println("usage: TransportTest URL WRITE_KEY CA_FILE SCRATCH_DIR EVENTS");
      System.exit(2);
    }
    String url = args[0];
    int events = Integer.parseInt(args[4]);
    JdkTransport transport = new JdkTransport(clientTrusting(new File(args[2])));
    List<String> lines = Collections.synchronizedList(new ArrayList<>());
    File dir = Files.createTempDirectory(new File(args[3]).toPath(), "ferry_java_transport").toFile();
    byte[] key = new byte[32];
    for (int i = 0; i < key.length; i++) key[i] = (byte) (i * 3 + 5);
    String stats;
    try (Ferry f = Ferry.open(new Ferry.Options()
             .endpoint(url)
             .writeKey(args[1])
             .storagePath(new File(dir, "buffer.db").getPath())
             .encryptionKey(key)
             .defaultConsent("analytics", Ferry.Consent.GRANTED)
             .app("java-transport-test", "1.0")
             .batchSize(10)
             .transport(transport)
             .log((level, message) -> lines.add(level + " " + message)))) {
      f.track("java_transport_order", Map.of("email", "ada@example.com", "total", 42));
      for (int i = 1; i < events; i++) f.track("java_transport_tick", Map.of("seq", i));
      f.flush(60_000); // throws if not everything was accepted in time
      stats = f.statsJson();
    }
    System.out.println("statuses seen by the Java transport: " + transport.statuses);
    System.out.println("stats: " + stats);
    // And the consent record of the default (analytics granted), recorded at open (issue 12).
    check(FerryTest.stat(stats, "sent") == events + 1, "sent == " + (events + 1) + ": " + stats);
    check(FerryTest.stat(stats, "retries") >= 2, "the 503 and the 500 were retried: " + stats);
    List<Integer> seen = new ArrayList<>(transport.statuses);
    check(seen.size() >= 2 && seen.get(0) == 503 && seen.get(1) == 500, "503 then 500 first: " + seen);
    boolean ok2xx = false;
    for (int s : seen) ok2xx |= s >= 200 && s < 300;
    check(ok2xx, "batches accepted with a 2xx: " + seen);
    boolean daemon = !transport.threads.isEmpty();
    for (Thread t : transport.threads) daemon &= t.isDaemon();
    check(daemon, "sent on Ferry's daemon-attached thread");
    boolean retryLogged = false;
    for (String l : lines.toArray(new String[0])) retryLogged |= l.contains("retrying");
    check(retryLogged, "the log handler received the retries: " + lines);
    System.out.println("TransportTest: " + checks + " checks, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
