package io.ferry;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * Ferry for Java: an open client over libferry's C ABI (JNI; libferry_jni loads libferry).
 *
 * <pre>{@code
 * try (Ferry ferry = Ferry.open(new Ferry.Options()
 *         .dataDir(context.getNoBackupFilesDir().getPath())
 *         .defaultConsent("analytics", Ferry.Consent.GRANTED))) {
 *   ferry.track("signup", Map.of("plan", "pro"));
 * }
 * }</pre>
 *
 * <p>Every failure of the library throws {@link FerryException} with its status. Text that cannot cross the C ABI
 * (an embedded NUL, an unpaired surrogate), a null name and properties with no JSON form are refused <em>through the
 * ABI</em> (the library counts them in stats "invalid") and throw FerryException(INVALID_ARGUMENT). A closed client
 * throws FerryException(CLOSED). All methods may be called from any thread; close() waits for calls in progress.
 */
public final class Ferry implements AutoCloseable {
  static {
    System.loadLibrary("ferry_jni");
  }

  /** The consent state of a purpose. */
  public enum Consent {
    PENDING(0),
    GRANTED(1),
    DENIED(2);

    final int code;

    Consent(int code) {
      this.code = code;
    }

    static Consent of(int code) {
      for (Consent c : values()) {
        if (c.code == code) return c;
      }
      return PENDING;
    }
  }

  /** How soon an accepted event is committed to the encrypted buffer. */
  public enum Durability {
    BATCHED,
    SYNC
  }

  /**
   * Client configuration; setters chain. Values are checked by the library when {@link Ferry#open} runs, which
   * throws FerryException naming the first option refused. Not thread-safe.
   */
  public static final class Options {
    private final Map<Integer, String> strings = new LinkedHashMap<>();
    private final Map<Integer, Long> numbers = new LinkedHashMap<>();
    private final Map<String, Consent> consents = new LinkedHashMap<>();
    private final Map<String, Long> holds = new LinkedHashMap<>();
    private byte[] key;
    private String appName;
    private String appVersion;
    private boolean noticeSet;
    private String noticeId;
    private String noticeVersion;
    private Transport transport;
    private LogHandler log;

    public Options endpoint(String url) { strings.put(0, url); return this; }
    public Options writeKey(String key) { strings.put(1, key); return this; }
    public Options storagePath(String path) { strings.put(2, path); return this; }
    public Options caFile(String pemPath) { strings.put(3, pemPath); return this; }
    /** PII rules as JSON text (see docs/PII.md). */
    public Options piiRules(String rulesJson) { strings.put(4, rulesJson); return this; }
    /** PII rules as a map, serialised to JSON. */
    public Options piiRules(Map<String, ?> rules) { strings.put(4, Json.object(rules)); return this; }
    public Options pinnedPublicKey(String pins) { strings.put(5, pins); return this; }
    /**
     * The app's data directory, an absolute path (on Android: {@code Context.getNoBackupFilesDir()}, left out of
     * Auto Backup). The default storage path is {@code <dir>/ferry/<app>/buffer.db}. Unset: the platform's.
     */
    public Options dataDir(String dir) { strings.put(6, dir); return this; }
    public Options flushIntervalMs(long ms) { numbers.put(0, ms); return this; }
    public Options batchSize(long events) { numbers.put(1, events); return this; }
    public Options maxStorageBytes(long bytes) { numbers.put(2, bytes); return this; }
    public Options maxEventAgeMs(long ms) { numbers.put(3, ms); return this; }
    public Options durability(Durability d) { numbers.put(4, (long) d.ordinal()); return this; }
    /** A session ends after this long without events (1 s to 24 h; default 30 minutes). */
    public Options sessionTimeoutMs(long ms) { numbers.put(5, ms); return this; }
    /**
     * A buffer the key cannot read: false (default) makes {@link Ferry#open} throw BUFFER_UNREADABLE and changes
     * nothing; true moves it aside and starts a fresh one (every purpose but "necessary" DENIED until set again).
     */
    public Options resetUnreadableBuffer(boolean reset) { numbers.put(6, reset ? 1L : 0L); return this; }
    /** The privacy notice the app shows (id 1-200 bytes, version 1-64 bytes), named by every consent record. */
    public Options notice(String id, String version) {
      noticeSet = true;
      noticeId = id;
      noticeVersion = version;
      return this;
    }
    /** The language the notice was shown in ("de-CH"), carried by every consent record. Default: the locale. */
    public Options consentLanguage(String language) { strings.put(7, language); return this; }
    /**
     * When the notice version changes, only these purposes are asked again (the others keep their grant). Unset:
     * every purpose granted under another version goes back to PENDING.
     */
    public Options noticeChangedPurposes(String... purposes) {
      strings.put(8, purposes == null ? null : String.join(",", purposes));
      return this;
    }
    /** The buffer's 32-byte key (copied). Unset: the platform keeps one. */
    public Options encryptionKey(byte[] key32) { key = key32 == null ? null : key32.clone(); return this; }
    public Options defaultConsent(String purpose, Consent state) { consents.put(purpose, state); return this; }
    /**
     * Holds a PENDING purpose's events for at most maxMs (1000 to 365 days) and sends them once it is granted
     * (ferry_options_set_hold_pending); never "sensitive". Unset: an event of a pending purpose is refused.
     */
    public Options holdPending(String purpose, long maxMs) { holds.put(purpose, maxMs); return this; }
    public Options app(String name, String version) { appName = name; appVersion = version; return this; }
    /** Uploads through the app's HTTP stack instead of libferry's curl transport (see {@link Transport}). */
    public Options transport(Transport t) { transport = t; return this; }
    /** Receives libferry's log lines (see {@link LogHandler}); null: silent (the default). */
    public Options log(LogHandler handler) { log = handler; return this; }

    private static final String[] STRING_NAMES = {
      "endpoint", "writeKey", "storagePath", "caFile", "piiRules", "pinnedPublicKey", "dataDir", "consentLanguage",
      "noticeChangedPurposes"
    };
    private static final String[] NUMBER_NAMES = {
      "flushIntervalMs", "batchSize", "maxStorageBytes", "maxEventAgeMs", "durability", "sessionTimeoutMs",
      "resetUnreadableBuffer"
    };

    /**
     * Builds the native options; frees them and throws if one is refused. logOut[0] receives the native handle of
     * the log handler (0 for none), which the caller releases once no log line can come any more (after
     * ferry_close, a failed ferry_open or ferry_options_free).
     */
    long build(long[] logOut) {
      long o = nativeOptionsNew();
      if (o == 0) throw new FerryException(FerryException.Status.INTERNAL, "out of memory");
      logOut[0] = 0;
      try {
        // The log handler first, so that the setters below can already report why they refuse a value.
        if (log != null) check(nativeOptionsSetLog(o, log, logOut), "log");
        if (transport != null) check(nativeOptionsSetTransport(o, transport), "transport");
        for (Map.Entry<Integer, String> e : strings.entrySet()) {
          check(nativeOptionsSetString(o, e.getKey(), utf8OrNull(e.getValue())), STRING_NAMES[e.getKey()]);
        }
        for (Map.Entry<Integer, Long> e : numbers.entrySet()) {
          check(nativeOptionsSetNumber(o, e.getKey(), e.getValue()), NUMBER_NAMES[e.getKey()]);
        }
        if (key != null) check(nativeOptionsSetKey(o, key), "encryptionKey");
        for (Map.Entry<String, Consent> e : consents.entrySet()) {
          int state = e.getValue() == null ? -1 : e.getValue().code;
          check(nativeOptionsSetDefaultConsent(o, utf8OrNull(e.getKey()), state),
              "defaultConsent(" + e.getKey() + ")");
        }
        for (Map.Entry<String, Long> e : holds.entrySet()) {
          check(nativeOptionsSetHoldPending(o, utf8OrNull(e.getKey()), e.getValue()),
              "holdPending(" + e.getKey() + ")");
        }
        if (appName != null || appVersion != null) {
          byte[] v = appVersion == null ? null : utf8OrNull(appVersion);
          byte[] n = appVersion != null && v == null ? null : utf8OrNull(appName); // refuse a bad version too
          check(nativeOptionsSetPair(o, 0, n, v), "app");
        }
        if (noticeSet) {
          byte[] v = utf8OrNull(noticeVersion);
          byte[] n = v == null ? null : utf8OrNull(noticeId); // refuse a bad version too
          check(nativeOptionsSetPair(o, 1, n, v), "notice");
        }
      } catch (RuntimeException e) {
        nativeOptionsFree(o); // releases the transport too
        nativeLogRelease(logOut[0]);
        logOut[0] = 0;
        throw e;
      }
      return o;
    }

    private static void check(int st, String option) {
      if (st != 0) {
        throw new FerryException(FerryException.Status.of(st), "option " + option + " refused: " + statusMessage(st));
      }
    }
  }

  /** How long close() (and try-with-resources) waits for a final upload. */
  public static final long DEFAULT_CLOSE_TIMEOUT_MS = 2000;

  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private long handle; // guarded by lock; 0 once closed
  private final long logHandle; // the native log handler (0: none); released after ferry_close

  private Ferry(long handle, long logHandle) {
    this.handle = handle;
    this.logHandle = logHandle;
  }

  /** Opens a client. Throws FerryException for a refused option or an unusable buffer. */
  public static Ferry open(Options options) {
    if (options == null) throw new FerryException(FerryException.Status.INVALID_ARGUMENT, "options is null");
    long[] log = new long[1];
    long o = options.build(log);
    long[] out = new long[1];
    int st = nativeOpen(o, out); // takes ownership of o (and of the transport set in it)
    if (st != 0) {
      nativeLogRelease(log[0]); // no log line comes after a failed open
      throw new FerryException(FerryException.Status.of(st), "open: " + statusMessage(st));
    }
    return new Ferry(out[0], log[0]);
  }

  /** The loaded library's version, "MAJOR.MINOR.PATCH". */
  public static String version() {
    return nativeVersion();
  }

  /** The library's English message for a status code. */
  public static String statusMessage(int status) {
    return nativeStatusStr(status);
  }

  // ---- events ----

  public void track(String event) {
    track(event, null, null);
  }

  public void track(String event, Map<String, ?> properties) {
    track(event, properties, null);
  }

  /** Records an event; purpose null means "analytics". Throws CONSENT_DENIED if the purpose is denied. */
  public void track(String event, Map<String, ?> properties, String purpose) {
    byte[] e;
    byte[] p;
    byte[] u;
    try {
      e = utf8(event, "event");
      p = properties == null ? null : utf8(Json.object(properties), "properties");
      u = purpose == null ? null : utf8(purpose, "purpose");
    } catch (IllegalArgumentException ex) {
      throw refused(h -> nativeTrack(h, null, null, null), "track", ex.getMessage());
    }
    call(h -> nativeTrack(h, e, p, u), "track");
  }

  public void screen(String name) {
    screen(name, null);
  }

  /** Records a screen view (purpose "analytics"). */
  public void screen(String name, Map<String, ?> properties) {
    byte[] n;
    byte[] p;
    try {
      n = utf8(name, "name");
      p = properties == null ? null : utf8(Json.object(properties), "properties");
    } catch (IllegalArgumentException ex) {
      throw refused(h -> nativeScreen(h, null, null), "screen", ex.getMessage());
    }
    call(h -> nativeScreen(h, n, p), "screen");
  }

  public void identify(String userId) {
    identify(userId, null);
  }

  /** Sets the userId and records an identify event with traits. */
  public void identify(String userId, Map<String, ?> traits) {
    byte[] u;
    byte[] t;
    try {
      u = utf8(userId, "userId");
      t = traits == null ? null : utf8(Json.object(traits), "traits");
    } catch (IllegalArgumentException ex) {
      throw refused(h -> nativeIdentify(h, null, null), "identify", ex.getMessage());
    }
    call(h -> nativeIdentify(h, u, t), "identify");
  }

  /** Logout: forgets the userId, rotates the anonymousId and the session. */
  public void reset() {
    call(Ferry::nativeReset, "reset");
  }

  // ---- consent ----

  public void setConsent(String purpose, Consent state) {
    int s = state == null ? -1 : state.code;
    byte[] p;
    try {
      p = utf8(purpose, "purpose");
    } catch (IllegalArgumentException ex) {
      throw refused(h -> nativeSetConsent(h, null, s), "setConsent", ex.getMessage());
    }
    call(h -> nativeSetConsent(h, p, s), "setConsent");
  }

  /** The state of a purpose; PENDING for one never configured or a name the library refuses. */
  public Consent getConsent(String purpose) {
    byte[] p;
    try {
      p = utf8(purpose, "purpose");
    } catch (IllegalArgumentException ex) {
      return Consent.PENDING;
    }
    long h = enter();
    try {
      return Consent.of(nativeGetConsent(h, p));
    } finally {
      leave();
    }
  }

  /**
   * Marks the current user as a minor (true) or lifts the mark (false); persisted and recorded. While marked, only
   * a guardian's grant ({@link #setConsentGuardian}) admits a purpose other than "necessary".
   */
  public void setMinor(boolean minor) {
    call(h -> nativeSetMinor(h, minor ? 1 : 0), "setMinor");
  }

  /** A guardian's choice for a purpose (method "guardian"); "necessary" cannot be denied. */
  public void setConsentGuardian(String purpose, Consent state) {
    int s = state == null ? -1 : state.code;
    byte[] p;
    try {
      p = utf8(purpose, "purpose");
    } catch (IllegalArgumentException ex) {
      throw refused(h -> nativeSetConsentGuardian(h, null, s), "setConsentGuardian", ex.getMessage());
    }
    call(h -> nativeSetConsentGuardian(h, p, s), "setConsentGuardian");
  }

  // ---- requests filed by the person from the device ----

  /** The receipt of a request filed with {@link #request}: what to ask about it with. */
  public static final class RequestReceipt {
    private final Map<String, Object> doc;
    private final String json;

    RequestReceipt(String json) {
      this.json = json;
      this.doc = Json.parseObject(json);
    }

    /** The id to ask about the request with ({@link #requestStatus}, {@link #requestCopy}). */
    public String receipt() { return str(doc, "receipt"); }
    /** "access", "erasure", ... */
    public String kind() { return str(doc, "kind"); }
    /** The collector's request id; null while the request is queued on the device. */
    public String reference() { return str(doc, "reference"); }
    /** "queued", "awaiting_verification", ..., "refused". */
    public String state() { return str(doc, "state"); }
    /** Why it was refused or is still queued; null when none. */
    public String error() { return str(doc, "error"); }
    /** The receipt as the library gave it (JSON). */
    public String json() { return json; }

    @Override
    public String toString() { return json; }
  }

  /** The state of a filed request, as the collector reports it ({@link #requestStatus}). */
  public static final class RequestStatus {
    private final Map<String, Object> doc;
    private final String json;

    RequestStatus(String json) {
      this.json = json;
      this.doc = Json.parseObject(json);
    }

    public String receipt() { return str(doc, "receipt"); }
    public String reference() { return str(doc, "reference"); }
    public String kind() { return str(doc, "kind"); }
    /** "queued", "awaiting_verification", "in_progress", "completed", "refused", ... */
    public String state() { return str(doc, "state"); }
    /** ISO 8601; null while queued. */
    public String receivedAt() { return str(doc, "receivedAt"); }
    /** ISO 8601; null while queued. */
    public String dueAt() { return str(doc, "dueAt"); }
    public String refusalReason() { return str(doc, "refusalReason"); }
    /** True once an approved access request's copy can be fetched with {@link #requestCopy}. */
    public boolean copyReady() { return Boolean.TRUE.equals(doc.get("copyReady")); }
    /** True once the copy was delivered. */
    public boolean delivered() { return Boolean.TRUE.equals(doc.get("delivered")); }
    /** The state as the library gave it (JSON). */
    public String json() { return json; }

    @Override
    public String toString() { return json; }
  }

  /** A short-lived, single-use code for the project's self-service page ({@link #requestVerificationCode}). */
  public static final class VerificationCode {
    private final Map<String, Object> doc;

    VerificationCode(String json) {
      this.doc = Json.parseObject(json);
    }

    /** 8 digits: show it to the user, do not store it. */
    public String code() { return str(doc, "code"); }
    /** ISO 8601. */
    public String expiresAt() { return str(doc, "expiresAt"); }
  }

  /**
   * {@link #request} failed after the request was queued: TIMEOUT (still queued, retried across restarts) or
   * NETWORK (refused, state "refused", or the collector cannot be reached). {@link #getReceipt()} is its receipt.
   */
  public static final class RequestException extends FerryException {
    private static final long serialVersionUID = 1L;
    private final transient RequestReceipt receipt;

    RequestException(Status status, String message, RequestReceipt receipt) {
      super(status, message);
      this.receipt = receipt;
    }

    public RequestReceipt getReceipt() { return receipt; }
  }

  /**
   * Files a request about the user's data ("access", "erasure", "correction", ...) with the collector, waiting up to
   * timeoutMs for it to be registered (awaiting an officer's verification). Throws {@link RequestException} (with
   * the receipt: keep it) on TIMEOUT or NETWORK, and FerryException(INVALID_ARGUMENT) for a malformed kind.
   */
  public RequestReceipt request(String kind, long timeoutMs) {
    byte[] k;
    try {
      k = utf8(kind, "kind");
    } catch (IllegalArgumentException ex) {
      throw refused(h -> nativeRequest(h, 0, null, timeoutMs, null), "request", ex.getMessage());
    }
    Object[] out = new Object[1];
    int st = callRaw(h -> nativeRequest(h, 0, k, timeoutMs, out));
    RequestReceipt receipt = out[0] == null ? null : new RequestReceipt(text(out[0]));
    if (st != 0) {
      if (receipt == null) throw failure(st, "request");
      throw new RequestException(FerryException.Status.of(st), describe(st, "request"), receipt);
    }
    if (receipt == null) throw new FerryException(FerryException.Status.INTERNAL, "request: no receipt");
    return receipt;
  }

  /** The state of a filed request, asked of the collector. INVALID_ARGUMENT for a receipt this buffer never gave. */
  public RequestStatus requestStatus(String receipt, long timeoutMs) {
    return new RequestStatus(requestText(1, receipt, timeoutMs, "requestStatus"));
  }

  public RequestStatus requestStatus(RequestReceipt receipt, long timeoutMs) {
    return requestStatus(receipt == null ? null : receipt.receipt(), timeoutMs);
  }

  /**
   * The copy of an approved access request (JSON, the collector's export format), fetched once through a one-time
   * link, which completes the request; null while the copy is not ready ({@link RequestStatus#copyReady()}).
   */
  public String requestCopy(String receipt, long timeoutMs) {
    return requestText(2, receipt, timeoutMs, "requestCopy");
  }

  public String requestCopy(RequestReceipt receipt, long timeoutMs) {
    return requestCopy(receipt == null ? null : receipt.receipt(), timeoutMs);
  }

  /**
   * A code for the user to type on the project's self-service page, bound to the subject this device uses. Throws
   * NETWORK when the collector refused (no public intake, no event of this device known yet, too many codes).
   */
  public VerificationCode requestVerificationCode(long timeoutMs) {
    String t = requestText(3, null, timeoutMs, "requestVerificationCode");
    if (t == null) throw new FerryException(FerryException.Status.INTERNAL, "requestVerificationCode: no code");
    return new VerificationCode(t);
  }

  private String requestText(int which, String receipt, long timeoutMs, String what) {
    byte[] r = null;
    if (which != 3) {
      try {
        r = utf8(receipt, "receipt");
      } catch (IllegalArgumentException ex) {
        throw refused(h -> nativeRequest(h, which, null, timeoutMs, null), what, ex.getMessage());
      }
    }
    byte[] arg = r;
    Object[] out = new Object[1];
    int st = callRaw(h -> nativeRequest(h, which, arg, timeoutMs, out));
    if (st != 0) throw failure(st, what);
    return out[0] == null ? null : text(out[0]);
  }

  private static String text(Object bytes) {
    return new String((byte[]) bytes, StandardCharsets.UTF_8);
  }

  private static String str(Map<String, Object> doc, String key) {
    Object v = doc.get(key);
    return v == null ? null : v.toString();
  }

  // ---- upload, subject rights, introspection ----

  /** Uploads now; throws TIMEOUT or NETWORK if not everything was accepted. */
  public void flush(long timeoutMs) {
    call(h -> nativeFlush(h, timeoutMs), "flush");
  }

  /** Wipes local data and asks the collector to erase this device's ids (retried until it goes through). */
  public void forget(long timeoutMs) {
    call(h -> nativeForget(h, timeoutMs), "forget");
  }

  /** Everything the buffer holds about the current user, as a JSON document. */
  public String exportLocal() {
    return json(0, "exportLocal");
  }

  /** The counters (queued, pending_consent, sent, dropped_consent, invalid, ...) as a JSON object. */
  public String statsJson() {
    return json(1, "statsJson");
  }

  /** Closes with {@link #DEFAULT_CLOSE_TIMEOUT_MS}; a TIMEOUT (events left in the buffer) is not thrown here. */
  @Override
  public void close() {
    try {
      close(DEFAULT_CLOSE_TIMEOUT_MS);
    } catch (FerryException e) {
      if (e.getStatus() != FerryException.Status.TIMEOUT) throw e;
    }
  }

  /** Flushes for at most timeoutMs and frees the client (closed in every case). Closing twice is a no-op. */
  public void close(long timeoutMs) {
    long h;
    lock.writeLock().lock(); // waits for calls in progress
    try {
      h = handle;
      handle = 0;
    } finally {
      lock.writeLock().unlock();
    }
    if (h == 0) return;
    int st = nativeClose(h, timeoutMs); // Ferry's threads are stopped when it returns
    nativeLogRelease(logHandle);
    if (st != 0) throw new FerryException(FerryException.Status.of(st), "close: " + statusMessage(st));
  }

  public boolean isClosed() {
    lock.readLock().lock();
    try {
      return handle == 0;
    } finally {
      lock.readLock().unlock();
    }
  }

  // ---- plumbing ----

  @FunctionalInterface
  private interface NativeCall {
    int run(long handle);
  }

  private long enter() {
    lock.readLock().lock();
    if (handle == 0) {
      lock.readLock().unlock();
      throw new FerryException(FerryException.Status.CLOSED, "the client is closed");
    }
    return handle;
  }

  private void leave() {
    lock.readLock().unlock();
  }

  private void call(NativeCall c, String what) {
    int st = callRaw(c);
    if (st != 0) throw failure(st, what);
  }

  private int callRaw(NativeCall c) {
    long h = enter();
    try {
      return c.run(h);
    } finally {
      leave();
    }
  }

  private FerryException refused(NativeCall c, String what, String reason) {
    long h = enter();
    int st;
    try {
      st = c.run(h);
    } finally {
      leave();
    }
    if (st == 0) st = FerryException.Status.INVALID_ARGUMENT.code;
    return new FerryException(FerryException.Status.of(st), what + ": " + statusMessage(st) + ": " + reason);
  }

  private FerryException failure(int st, String what) {
    return new FerryException(FerryException.Status.of(st), describe(st, what));
  }

  private String describe(int st, String what) {
    String reason = statusMessage(st);
    if (st == FerryException.Status.INVALID_ARGUMENT.code) {
      // The library records why in stats "last_error" (best effort when several threads fail at once).
      String detail = lastError();
      if (!detail.isEmpty()) reason = reason + ": " + detail;
    }
    return what + ": " + reason;
  }

  private String lastError() {
    try {
      String s = statsJson();
      int i = s.indexOf("\"last_error\":\"");
      if (i < 0) return "";
      StringBuilder sb = new StringBuilder();
      for (int j = i + 14; j < s.length(); j++) {
        char c = s.charAt(j);
        if (c == '\\' && j + 1 < s.length()) {
          sb.append(s.charAt(++j));
        } else if (c == '"') {
          break;
        } else {
          sb.append(c);
        }
      }
      return sb.toString();
    } catch (FerryException e) {
      return "";
    }
  }

  private String json(int which, String what) {
    Object[] out = new Object[1];
    long h = enter();
    int st;
    try {
      st = nativeJson(h, which, out);
    } finally {
      leave();
    }
    if (st != 0) throw new FerryException(FerryException.Status.of(st), what + ": " + statusMessage(st));
    return out[0] == null ? "" : new String((byte[]) out[0], StandardCharsets.UTF_8);
  }

  /** Strict UTF-8 (unpaired surrogates refused), no NUL. IllegalArgumentException says why. */
  private static byte[] utf8(String s, String what) {
    if (s == null) throw new IllegalArgumentException(what + " is null");
    if (s.indexOf('\0') >= 0) throw new IllegalArgumentException(what + " contains a NUL character");
    try {
      ByteBuffer b = StandardCharsets.UTF_8.newEncoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .encode(CharBuffer.wrap(s));
      byte[] out = new byte[b.remaining()];
      b.get(out);
      return out;
    } catch (CharacterCodingException e) {
      throw new IllegalArgumentException(what + " is not valid Unicode text");
    }
  }

  private static byte[] utf8OrNull(String s) {
    try {
      return utf8(s, "value");
    } catch (IllegalArgumentException e) {
      return null; // the C setter refuses NULL
    }
  }

  // ---- called from the native side (ferry_jni.c), on Ferry's threads; nothing may be thrown back ----

  /** One request through the app's transport; null for a network failure (anything thrown included). */
  static Transport.Response dispatchSend(Transport t, byte[] method, byte[] url, byte[] headers, byte[] body,
      int timeoutMs) {
    try {
      Transport.Response r = t.send(Transport.Request.fromNative(method, url, headers, body, timeoutMs));
      if (r == null || r.status < 100 || r.status > 999) return null;
      return r;
    } catch (Throwable e) { // nothing may cross back into C: Ferry counts a network failure and retries later
      return null;
    }
  }

  static void dispatchLog(LogHandler h, int level, byte[] message) {
    try {
      h.log(LogHandler.Level.of(level), new String(message, StandardCharsets.UTF_8));
    } catch (Throwable e) { // a failing log handler must not disturb the library
      // dropped
    }
  }

  private static native String nativeVersion();
  private static native String nativeStatusStr(int status);
  private static native long nativeOptionsNew();
  private static native void nativeOptionsFree(long o);
  private static native int nativeOptionsSetString(long o, int which, byte[] value);
  private static native int nativeOptionsSetNumber(long o, int which, long value);
  private static native int nativeOptionsSetKey(long o, byte[] key);
  private static native int nativeOptionsSetDefaultConsent(long o, byte[] purpose, int state);
  private static native int nativeOptionsSetHoldPending(long o, byte[] purpose, long maxMs);
  private static native int nativeOptionsSetPair(long o, int which, byte[] name, byte[] version);
  private static native int nativeOptionsSetTransport(long o, Transport t);
  private static native int nativeOptionsSetLog(long o, LogHandler h, long[] logOut);
  private static native void nativeLogRelease(long logHandle);
  private static native int nativeOpen(long o, long[] out);
  private static native int nativeClose(long h, long timeoutMs);
  private static native int nativeTrack(long h, byte[] event, byte[] properties, byte[] purpose);
  private static native int nativeScreen(long h, byte[] name, byte[] properties);
  private static native int nativeIdentify(long h, byte[] userId, byte[] traits);
  private static native int nativeReset(long h);
  private static native int nativeSetConsent(long h, byte[] purpose, int state);
  private static native int nativeGetConsent(long h, byte[] purpose);
  private static native int nativeFlush(long h, long timeoutMs);
  private static native int nativeForget(long h, long timeoutMs);
  private static native int nativeJson(long h, int which, Object[] out);
  private static native int nativeSetMinor(long h, int minor);
  private static native int nativeSetConsentGuardian(long h, byte[] purpose, int state);
  private static native int nativeRequest(long h, int which, byte[] arg, long timeoutMs, Object[] out);
}
