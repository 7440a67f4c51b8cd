package io.ferry;

/** A call refused by libferry. {@link #getStatus()} says which status; the message says why. */
public class FerryException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** The C ABI's ferry_status values. */
  public enum Status {
    OK(0),
    INVALID_ARGUMENT(1),
    CONSENT_DENIED(2),
    STORAGE(3),
    CLOSED(4),
    TIMEOUT(5),
    NETWORK(6),
    BUFFER_UNREADABLE(7),
    INTERNAL(99);

    public final int code;

    Status(int code) {
      this.code = code;
    }

    /** The status for a code; INTERNAL for an unknown one. */
    public static Status of(int code) {
      for (Status s : values()) {
        if (s.code == code) return s;
      }
      return INTERNAL;
    }
  }

  private final Status status;

  public FerryException(Status status, String message) {
    super(status.name() + ": " + message);
    this.status = status;
  }

  public Status getStatus() {
    return status;
  }

  /** The numeric ferry_status. */
  public int getCode() {
    return status.code;
  }
}
