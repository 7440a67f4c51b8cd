package io.ferry;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * The app's own HTTP stack for uploads (OkHttp, HttpURLConnection, java.net.http), instead of the curl transport
 * inside libferry. Set it with {@link Ferry.Options#transport(Transport)}.
 *
 * <p>{@link #send} is called on Ferry's uploader thread (a native thread attached to the JVM as a daemon thread),
 * one request at a time per client. It blocks until the server answered or the request failed, within
 * {@link Request#timeoutMs}. Return the answer whatever its HTTP status: Ferry reacts to the status itself (2xx
 * accepted; 5xx, 429 and network failures retried with backoff, honouring Retry-After; 401 stops uploads). Throw (any
 * exception) or return null when no HTTP answer arrived: Ferry counts a network failure and retries later. Nothing
 * thrown here reaches the native side. TLS verification is the transport's job ({@link Ferry.Options#caFile} and
 * {@link Ferry.Options#pinnedPublicKey} apply to the curl transport only). send must not call back into the client
 * that calls it.
 */
@FunctionalInterface
public interface Transport {
  Response send(Request request) throws Exception;

  /** One upload request. Owned by the caller of send; the body is a private copy. */
  final class Request {
    private final String method;
    private final String url;
    private final List<String> headers;
    private final byte[] body;
    private final int timeoutMs;

    Request(String method, String url, List<String> headers, byte[] body, int timeoutMs) {
      this.method = method;
      this.url = url;
      this.headers = Collections.unmodifiableList(new ArrayList<>(headers));
      this.body = body;
      this.timeoutMs = timeoutMs;
    }

    /** "POST". */
    public String method() {
      return method;
    }

    /** The full URL, e.g. "https://collect.example.com/v1/batch". */
    public String url() {
      return url;
    }

    /** The headers to send, each "Name: value" (Authorization, Content-Type, Content-Encoding, ...). */
    public List<String> headers() {
      return headers;
    }

    /** The value of the first header of that name (case-insensitive), or null. */
    public String header(String name) {
      String want = name.toLowerCase(Locale.ROOT);
      for (String h : headers) {
        int colon = h.indexOf(':');
        if (colon > 0 && h.substring(0, colon).trim().toLowerCase(Locale.ROOT).equals(want)) {
          return h.substring(colon + 1).trim();
        }
      }
      return null;
    }

    /** The request body, as is (already compressed when a Content-Encoding header says so). */
    public byte[] body() {
      return body;
    }

    /** The whole request must finish within this many milliseconds. */
    public int timeoutMs() {
      return timeoutMs;
    }

    /** Built from the UTF-8 parts the native side hands over; headers are separated by NUL bytes. */
    static Request fromNative(byte[] method, byte[] url, byte[] headers, byte[] body, int timeoutMs) {
      List<String> hs = new ArrayList<>();
      int start = 0;
      for (int i = 0; i <= headers.length; i++) {
        if (i == headers.length || headers[i] == 0) {
          if (i > start) hs.add(new String(headers, start, i - start, StandardCharsets.UTF_8));
          start = i + 1;
        }
      }
      return new Request(new String(method, StandardCharsets.UTF_8), new String(url, StandardCharsets.UTF_8), hs,
          body, timeoutMs);
    }
  }

  /** The server's answer. */
  final class Response {
    final int status;
    final long retryAfterSeconds;
    final byte[] body;

    /**
     * @param status the HTTP status code (100-999; anything else counts as a network failure)
     * @param retryAfterSeconds the Retry-After header in seconds, 0 when absent
     * @param body the response body (Ferry reads the collector's JSON answer), null for none
     */
    public Response(int status, long retryAfterSeconds, byte[] body) {
      this.status = status;
      this.retryAfterSeconds = Math.max(0, retryAfterSeconds);
      this.body = body;
    }

    public int status() {
      return status;
    }

    public long retryAfterSeconds() {
      return retryAfterSeconds;
    }

    public byte[] body() {
      return body;
    }
  }
}
