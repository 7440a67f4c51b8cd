// Ferry from Java (bindings/java): consent, on-device PII masking, local export, stats, optional upload.
//
//   java -Djava.library.path=build/bindings/java -cp build/bindings/java/ferry.jar:. Quickstart \
//        [ENDPOINT WRITE_KEY [CA_FILE]]      (or FERRY_ENDPOINT, FERRY_WRITE_KEY, FERRY_CA_FILE)
import io.ferry.Ferry;
import io.ferry.FerryException;
import java.io.File;
import java.nio.file.Files;
import java.util.Map;

public final class Quickstart {
  private static String arg(String[] args, int i, String env) {
    String v = i < args.length ? args[i] : System.getenv(env);
    return v == null || v.isEmpty() ? null : v;
  }

  public static void main(String[] args) throws Exception {
    String endpoint = arg(args, 0, "FERRY_ENDPOINT");
    String writeKey = arg(args, 1, "FERRY_WRITE_KEY");
    String caFile = arg(args, 2, "FERRY_CA_FILE");
    File dir = Files.createTempDirectory("ferry_quickstart_java").toFile();
    Ferry.Options options = new Ferry.Options()
        .storagePath(new File(dir, "buffer.db").getPath())
        .app("Quickstart.java", Ferry.version())
        .defaultConsent("analytics", Ferry.Consent.GRANTED)
        .defaultConsent("personalization", Ferry.Consent.DENIED)
        .piiRules(Map.of("detectors", Map.of("phone", "mask")));
    if (endpoint != null) {
      options.endpoint(endpoint);
      if (writeKey != null) options.writeKey(writeKey);
      if (caFile != null) options.caFile(caFile);
    }
    int rc = 0;
    try (Ferry ferry = Ferry.open(options)) {
      System.out.println("Ferry " + Ferry.version() + " quickstart (Java)\n");
      ferry.identify("user-4004", Map.of("plan", "pro"));
      ferry.track("order_completed", Map.of("email", "chen.jie@example.com", "mobile", "13612345678",
          "password", "hunter2", "amount", 42.5));
      try { // marketing is pending and not held (the C quickstart shows the hold): dropped, not kept
        ferry.track("newsletter_prompt", Map.of("placement", "footer"), "marketing");
        rc = 1;
      } catch (FerryException e) {
        System.out.println("marketing (pending, not held): " + e.getMessage());
      }
      System.out.println("marketing consent: " + ferry.getConsent("marketing"));
      try {
        ferry.track("recommendation_shown", Map.of("item", "sku-9"), "personalization");
        rc = 1;
      } catch (FerryException e) {
        System.out.println("personalization: " + e.getMessage());
      }
      String exported = ferry.exportLocal();
      System.out.println("\nlocal export:\n" + exported);
      if (exported.contains("chen.jie@example.com") || exported.contains("hunter2")) rc = 1;
      if (endpoint != null) {
        try {
          ferry.flush(10000);
          System.out.println("flush: ok");
        } catch (FerryException e) {
          System.out.println("flush: " + e.getMessage());
          rc = 1;
        }
      }
      System.out.println("\nstats: " + ferry.statsJson());
    } finally {
      File[] files = dir.listFiles();
      if (files != null) for (File f : files) f.delete();
      dir.delete();
    }
    System.exit(rc);
  }
}
