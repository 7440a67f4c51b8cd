package io.ferry;

/**
 * Receives libferry's log lines. Set it with {@link Ferry.Options#log(LogHandler)}.
 *
 * <p>Called from any of Ferry's threads (native threads attached to the JVM as daemon threads) and from the thread
 * that calls into the client; keep it short and thread-safe, and do not call back into the client. An exception
 * thrown here is dropped (it never reaches the native side).
 */
@FunctionalInterface
public interface LogHandler {
  /** The level of a log line (FERRY_LOG_* of ferry.h). */
  enum Level {
    DEBUG,
    INFO,
    WARN,
    ERROR;

    static Level of(int code) {
      Level[] all = values();
      return code >= 0 && code < all.length ? all[code] : ERROR;
    }
  }

  void log(Level level, String message);
}
