"""Ferry for Python: a thin ctypes layer over libferry's C ABI (ferry.h).

    import ferry

    with ferry.Client(storage_path="/var/lib/myapp/ferry.db",
                      default_consent={"analytics": ferry.Consent.GRANTED}) as client:
        client.track("signup", {"plan": "pro", "email": "a@example.com"})   # the e-mail is masked on the device
        print(client.stats())

The shared library is found, in this order: the FERRY_LIBRARY environment variable (a path, for development), the
libferry bundled in this package (the platform wheel carries it: ferry/libferry.so), then the system's library
path (libferry from `cmake --install` or a distribution package). It is loaded on first use, so importing never
fails; library_path() says which file was loaded.

Errors: every failure of the library raises a FerryError (or one of its subclasses, one per status) whose
``status`` is a Status (``status.name`` e.g. "CONSENT_DENIED") and whose ``message`` says why. Arguments of the
wrong Python type raise TypeError. Text that cannot cross the C ABI (an embedded NUL, lone surrogates) and None
where a name is required are refused *through the ABI*, so the library counts them in stats()["invalid"] like any
other invalid input. Nothing here can crash the interpreter: a closed client raises ClientClosedError.

Threads: a Client may be used from several threads at once (ctypes releases the GIL during each call); close()
waits for calls in progress.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
import json
import os
import threading
from collections.abc import Mapping
from typing import Any, Callable, List, Optional, Tuple, Union

__all__ = [
    "Client",
    "Consent",
    "Durability",
    "LogLevel",
    "Status",
    "FerryError",
    "InvalidArgumentError",
    "ConsentDeniedError",
    "StorageError",
    "ClientClosedError",
    "FerryTimeoutError",
    "NetworkError",
    "InternalError",
    "LibraryNotFoundError",
    "library_path",
    "library_version",
    "status_message",
]

__version__ = "0.1.0"


class Status(enum.IntEnum):
    """ferry_status."""

    OK = 0
    INVALID_ARGUMENT = 1
    CONSENT_DENIED = 2
    STORAGE = 3
    CLOSED = 4
    TIMEOUT = 5
    NETWORK = 6
    INTERNAL = 99
    BUFFER_UNREADABLE = 7


class Consent(enum.IntEnum):
    """ferry_consent: the state of a purpose."""

    PENDING = 0  # not answered yet: its events are refused (ConsentDeniedError) unless held (hold_pending)
    GRANTED = 1  # stored and sent
    DENIED = 2  # never stored; pending events of that purpose are purged


class Durability(enum.IntEnum):
    """ferry_durability."""

    BATCHED = 0
    SYNC = 1


class LogLevel(enum.IntEnum):
    """The level of a line passed to the ``log`` option's callable (FERRY_LOG_* of ferry.h)."""

    DEBUG = 0
    INFO = 1
    WARN = 2
    ERROR = 3


class LibraryNotFoundError(OSError):
    """libferry could not be loaded."""


class FerryError(Exception):
    """A call refused by the library. ``status`` is a Status, ``message`` the reason; ``receipt`` is the request's
    receipt (a dict) when Client.request() failed after queueing it (TIMEOUT, NETWORK), else None."""

    def __init__(self, status: Union[Status, int], message: str = "") -> None:
        try:
            status = Status(status)
        except ValueError:
            status = Status.INTERNAL
        self.status = status
        self.message = message or status_message(status)
        self.receipt: Optional[dict] = None
        super().__init__(f"{status.name}: {self.message}")

    @property
    def status_name(self) -> str:
        """The status's name, e.g. "CONSENT_DENIED"."""
        return self.status.name


class InvalidArgumentError(FerryError):
    """INVALID_ARGUMENT: a value the library refused (bad JSON, a name too long, an option out of range)."""


class ConsentDeniedError(FerryError):
    """CONSENT_DENIED: the event's purpose is denied on this device; nothing was stored."""


class StorageError(FerryError):
    """STORAGE: the encrypted buffer cannot be created or written (directory, permissions, disk full)."""


class ClientClosedError(FerryError):
    """CLOSED: the client is closed."""


class FerryTimeoutError(FerryError):
    """TIMEOUT: flush, forget or close did not finish in time; the work goes on (nothing is lost)."""


class NetworkError(FerryError):
    """NETWORK: no endpoint is set, the collector cannot be reached, or it refused the write key (401)."""


class InternalError(FerryError):
    """INTERNAL: a bug in the library, or out of memory."""


_ERROR_CLASSES = {
    Status.INVALID_ARGUMENT: InvalidArgumentError,
    Status.CONSENT_DENIED: ConsentDeniedError,
    Status.STORAGE: StorageError,
    Status.CLOSED: ClientClosedError,
    Status.TIMEOUT: FerryTimeoutError,
    Status.NETWORK: NetworkError,
    Status.INTERNAL: InternalError,
}


def _error(status: int, message: str = "") -> FerryError:
    try:
        st = Status(status)
    except ValueError:
        st = Status.INTERNAL
    return _ERROR_CLASSES.get(st, FerryError)(st, message)


# ---- loading the library ---------------------------------------------------------------------------------------

_LOG_CB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_lib_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None

# The names of the bundled library inside the package directory, per platform.
_BUNDLED_NAMES = ("libferry.so", "libferry.dylib", "ferry.dll")


def _candidates() -> List[str]:
    env = os.environ.get("FERRY_LIBRARY")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    # The bundled copy first (an absolute path: the dynamic loader does not search for it), then the system's.
    found = [os.path.join(here, n) for n in _BUNDLED_NAMES if os.path.exists(os.path.join(here, n))]
    system = ctypes.util.find_library("ferry")
    if system:
        found.append(system)
    found.append("libferry.so.0")
    return found


def _declare(lib: ctypes.CDLL) -> None:
    c_char_p, c_void_p, c_int, u32, u64 = (ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32,
                                           ctypes.c_uint64)
    pp = ctypes.POINTER(ctypes.c_void_p)
    sigs = {
        "ferry_version": (c_char_p, []),
        "ferry_status_str": (c_char_p, [c_int]),
        "ferry_free": (None, [c_void_p]),
        "ferry_options_new": (c_void_p, []),
        "ferry_options_free": (None, [c_void_p]),
        "ferry_options_set_endpoint": (c_int, [c_void_p, c_char_p]),
        "ferry_options_set_write_key": (c_int, [c_void_p, c_char_p]),
        "ferry_options_set_storage_path": (c_int, [c_void_p, c_char_p]),
        "ferry_options_set_encryption_key": (c_int, [c_void_p, c_char_p, ctypes.c_size_t]),
        "ferry_options_set_ca_file": (c_int, [c_void_p, c_char_p]),
        "ferry_options_set_default_consent": (c_int, [c_void_p, c_char_p, c_int]),
        "ferry_options_set_flush_interval_ms": (c_int, [c_void_p, u32]),
        "ferry_options_set_batch_size": (c_int, [c_void_p, u32]),
        "ferry_options_set_max_storage_bytes": (c_int, [c_void_p, u64]),
        "ferry_options_set_max_event_age_ms": (c_int, [c_void_p, u64]),
        "ferry_options_set_pii_rules": (c_int, [c_void_p, c_char_p]),
        "ferry_options_set_log_callback": (c_int, [c_void_p, _LOG_CB, c_void_p]),
        "ferry_options_set_durability": (c_int, [c_void_p, c_int]),
        "ferry_options_set_app": (c_int, [c_void_p, c_char_p, c_char_p]),
        "ferry_options_set_pinned_public_key": (c_int, [c_void_p, c_char_p]),
        "ferry_options_set_session_timeout_ms": (c_int, [c_void_p, u32]),
        "ferry_options_set_hold_pending": (c_int, [c_void_p, c_char_p, u64]),
        "ferry_options_set_reset_unreadable_buffer": (c_int, [c_void_p, c_int]),
        "ferry_options_set_data_dir": (c_int, [c_void_p, c_char_p]),
        "ferry_options_set_notice": (c_int, [c_void_p, c_char_p, c_char_p]),
        "ferry_options_set_consent_language": (c_int, [c_void_p, c_char_p]),
        "ferry_options_set_notice_changed_purposes": (c_int, [c_void_p, c_char_p]),
        "ferry_open": (c_int, [c_void_p, pp]),
        "ferry_close": (c_int, [c_void_p, u32]),
        "ferry_track": (c_int, [c_void_p, c_char_p, c_char_p, c_char_p]),
        "ferry_screen": (c_int, [c_void_p, c_char_p, c_char_p]),
        "ferry_identify": (c_int, [c_void_p, c_char_p, c_char_p]),
        "ferry_reset": (c_int, [c_void_p]),
        "ferry_set_consent": (c_int, [c_void_p, c_char_p, c_int]),
        "ferry_get_consent": (c_int, [c_void_p, c_char_p]),
        "ferry_flush": (c_int, [c_void_p, u32]),
        "ferry_forget": (c_int, [c_void_p, u32]),
        "ferry_export_local": (c_int, [c_void_p, pp]),
        "ferry_stats_json": (c_int, [c_void_p, pp]),
        "ferry_set_minor": (c_int, [c_void_p, c_int]),
        "ferry_set_consent_guardian": (c_int, [c_void_p, c_char_p, c_int]),
        "ferry_request": (c_int, [c_void_p, c_char_p, u32, pp]),
        "ferry_request_status": (c_int, [c_void_p, c_char_p, u32, pp]),
        "ferry_request_copy": (c_int, [c_void_p, c_char_p, u32, pp]),
        "ferry_request_verification_code": (c_int, [c_void_p, u32, pp]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


def _library() -> ctypes.CDLL:
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lib_lock:
        if _lib is None:
            errors = []
            for path in _candidates():
                try:
                    lib = ctypes.CDLL(path)
                    _declare(lib)
                except (OSError, AttributeError) as e:
                    errors.append(f"{path}: {e}")
                    continue
                _lib = lib
                _lib_path = _loaded_path(path)
                break
            else:
                raise LibraryNotFoundError(
                    "libferry not found (set FERRY_LIBRARY to the path of libferry.so): " + "; ".join(errors))
    return _lib


def _loaded_path(name: str) -> str:
    """The file the dynamic loader mapped for ``name`` (a bare name is resolved through /proc/self/maps on Linux)."""
    if os.path.isabs(name):
        return os.path.realpath(name)
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if os.path.basename(path).startswith("libferry."):
                    return path
    except OSError:
        pass
    return name


def library_path() -> str:
    """The path of the libferry that was loaded (loading it if needed)."""
    _library()
    assert _lib_path is not None
    return _lib_path


def library_version() -> str:
    """The version of the loaded libferry, "MAJOR.MINOR.PATCH"."""
    return _library().ferry_version().decode("ascii")


def status_message(status: Union[Status, int]) -> str:
    """The library's static English message for a status."""
    try:
        return _library().ferry_status_str(int(status)).decode("utf-8", "replace")
    except LibraryNotFoundError:
        return Status(status).name.lower().replace("_", " ") if status in Status._value2member_map_ else "unknown"


# ---- argument conversion ---------------------------------------------------------------------------------------

class _Refused(Exception):
    """A value that cannot cross the C ABI (None where required, NUL, unencodable text, unserialisable JSON)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _text(value: Any, what: str, optional: bool = False) -> Optional[bytes]:
    """UTF-8 bytes for the ABI; None for an omitted optional value. Raises TypeError or _Refused."""
    if value is None:
        if optional:
            return None
        raise _Refused(f"{what} is None")
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise _Refused(f"{what} contains a NUL character")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _Refused(f"{what} is not valid Unicode text: {e.reason}") from None


def _json(value: Any, what: str) -> Optional[bytes]:
    """A Mapping serialised as a JSON object (UTF-8); None for None."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be a dict (or another Mapping), not {type(value).__name__}")
    try:
        text = json.dumps(dict(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise _Refused(f"{what} cannot be serialised to JSON: {e}") from None
    if "\0" in text:
        raise _Refused(f"{what} contains a NUL character")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise _Refused(f"{what} is not valid Unicode text: {e.reason}") from None


def _consent(state: Any) -> int:
    if isinstance(state, bool) or not isinstance(state, int):
        raise TypeError(f"consent state must be a ferry.Consent, not {type(state).__name__}")
    return int(state)


def _take_string(lib: ctypes.CDLL, ptr: ctypes.c_void_p) -> str:
    try:
        return ctypes.string_at(ptr.value).decode("utf-8", "replace") if ptr.value else ""
    finally:
        lib.ferry_free(ptr)


# ---- the client ------------------------------------------------------------------------------------------------

_OPTION_NAMES = (
    "storage_path", "encryption_key", "endpoint", "write_key", "ca_file", "default_consent", "flush_interval_ms",
    "batch_size", "max_storage_bytes", "max_event_age_ms", "pii_rules", "durability", "app_name", "app_version",
    "pinned_public_key", "session_timeout_ms", "log", "hold_pending", "reset_unreadable_buffer", "data_dir", "notice",
    "consent_language", "notice_changed_purposes",
)


class Client:
    """An open Ferry client (one encrypted buffer). Use as a context manager, or call close().

    Every option is a keyword argument and optional. An option left out, or given as None, is not set: the
    library's default applies (``endpoint=None`` means "no collector": events are buffered, never uploaded).
    The options and their C counterparts (sdk/include/ferry/ferry.h has the limits):

      storage_path (str)          the buffer's database file (ferry_options_set_storage_path); default: the
                                  platform's app data directory
      encryption_key (bytes)      the buffer's 32-byte key; default: a random key kept beside the buffer
      endpoint (str)              the collector's base URL, https:// (http:// only for loopback); default: none
      write_key (str)             the project's write key (``fw_...``, from ``ferryctl keys create-write-key``)
      ca_file (str)               a PEM file of extra trust anchors for the collector's certificate
      pinned_public_key (str)     ``sha256//<base64>`` pins of the collector's key, joined with ';'
      default_consent (dict)      {purpose: Consent}: the state a purpose starts with on a new device; a purpose
                                  never given a state stays PENDING (its events are refused: ConsentDeniedError)
      hold_pending (dict)         {purpose: max_ms}: hold that purpose's events while it is PENDING, for at most
                                  max_ms (1000 to 365 days), and send them once it is granted
                                  (ferry_options_set_hold_pending); never "sensitive". Default: nothing held
      flush_interval_ms (int)     how often the uploader sends; default 10000 (100 ms to 24 h)
      batch_size (int)            events per upload; default 100 (1 to 1000)
      max_storage_bytes (int)     the buffer's size limit; default 10 MiB (at least 64 KiB)
      max_event_age_ms (int)      the oldest a buffered event may get; default 30 days (at least 1 s)
      session_timeout_ms (int)    idle time after which the next event starts a new session; default 30 minutes
                                  (1 s to 24 h)
      pii_rules (dict or str)     PII masking rules (docs/PII.md)
      durability (Durability)     BATCHED (default) or SYNC
      app_name, app_version (str) sent in context.app; default: the executable's name, version ""
      data_dir (str)              the app's data directory (absolute), in place of the platform's; the default
                                  storage path is <data_dir>/ferry/<app>/buffer.db (ferry_options_set_data_dir)
      reset_unreadable_buffer (bool)  True: a buffer the key cannot read is moved aside and a fresh one started
                                  (every purpose but "necessary" DENIED until set again); False (default): opening
                                  raises a FerryError of status BUFFER_UNREADABLE and changes nothing
      notice (tuple)              (notice_id, version) of the privacy notice the app shows, named by every
                                  consent record (ferry_options_set_notice); default: none (null)
      consent_language (str)      the language the notice was shown in ("de-CH"), carried by every consent record;
                                  default: the device's locale
      notice_changed_purposes (list or str)  only these purposes are asked again when the notice version changes
                                  (["marketing"] or "marketing,analytics"); default: every granted purpose
      log (callable)              log(level: LogLevel, message: str), called from Ferry's threads; must not call
                                  the client. Default: none (Ferry is silent: give one while you integrate)

    A value the library refuses raises a FerryError (InvalidArgumentError) naming the option; an unknown option
    name raises TypeError; opening a buffer that cannot be created raises StorageError.
    """

    DEFAULT_CLOSE_TIMEOUT_MS = 2000

    def __init__(self, **options: Any) -> None:
        self._handle: Optional[int] = None
        self._cond = threading.Condition()
        self._inflight = 0
        self._log_cb = None  # keeps the ctypes callback alive as long as the client
        unknown = sorted(set(options) - set(_OPTION_NAMES))
        if unknown:
            raise TypeError(f"unknown Ferry option(s): {', '.join(unknown)}")
        lib = _library()
        self._lib = lib
        o = lib.ferry_options_new()
        if not o:
            raise InternalError(Status.INTERNAL, "out of memory")
        try:
            self._configure(lib, o, options)
        except BaseException:
            lib.ferry_options_free(o)
            raise
        out = ctypes.c_void_p()
        st = lib.ferry_open(o, ctypes.byref(out))  # takes ownership of o, also on failure
        if st != Status.OK:
            raise _error(st, f"cannot open the client: {status_message(st)}")
        self._handle = out.value

    # -- configuration --

    def _configure(self, lib: ctypes.CDLL, o: int, options: Mapping) -> None:
        options = {k: v for k, v in options.items() if v is not None}  # None: not set, the default applies
        def check(name: str, st: int) -> None:
            if st != Status.OK:
                raise _error(st, f"option {name!r} refused: {status_message(st)}")

        def text(name: str) -> bytes:
            try:
                b = _text(options[name], name)
            except _Refused as r:
                raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"option {name!r} refused: {r.reason}") from None
            return b

        def integer(name: str) -> int:
            v = options[name]
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"option {name!r} must be an int, not {type(v).__name__}")
            if v < 0:
                raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"option {name!r} refused: negative")
            return v

        setters = {
            "storage_path": lib.ferry_options_set_storage_path,
            "endpoint": lib.ferry_options_set_endpoint,
            "write_key": lib.ferry_options_set_write_key,
            "ca_file": lib.ferry_options_set_ca_file,
            "pinned_public_key": lib.ferry_options_set_pinned_public_key,
            "data_dir": lib.ferry_options_set_data_dir,
            "consent_language": lib.ferry_options_set_consent_language,
        }
        for name, fn in setters.items():
            if name in options:
                check(name, fn(o, text(name)))
        int_setters = {
            "flush_interval_ms": (lib.ferry_options_set_flush_interval_ms, 2**32 - 1),
            "batch_size": (lib.ferry_options_set_batch_size, 2**32 - 1),
            "max_storage_bytes": (lib.ferry_options_set_max_storage_bytes, 2**64 - 1),
            "max_event_age_ms": (lib.ferry_options_set_max_event_age_ms, 2**64 - 1),
            "session_timeout_ms": (lib.ferry_options_set_session_timeout_ms, 2**32 - 1),
        }
        for name, (fn, top) in int_setters.items():
            if name in options:
                v = integer(name)
                check(name, fn(o, v) if v <= top else Status.INVALID_ARGUMENT)
        if "encryption_key" in options:
            key = options["encryption_key"]
            if not isinstance(key, (bytes, bytearray, memoryview)):
                raise TypeError(f"option 'encryption_key' must be bytes, not {type(key).__name__}")
            key = bytes(key)
            check("encryption_key", lib.ferry_options_set_encryption_key(o, key, len(key)))
        def per_purpose(name: str, what: str) -> List[Tuple[Any, bytes, Any]]:
            """(purpose, its bytes, value) of a {purpose: value} option; none when the option is absent or None."""
            given = options.get(name)
            if given is None:
                return []
            if not isinstance(given, Mapping):
                raise TypeError(f"option '{name}' must be a dict {{purpose: {what}}}")
            out = []
            for purpose, value in given.items():
                try:
                    out.append((purpose, _text(purpose, "purpose"), value))
                except _Refused as r:
                    raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"option '{name}' refused: {r.reason}") from None
            return out

        for purpose, p, state in per_purpose("default_consent", "Consent"):
            check(f"default_consent[{purpose!r}]", lib.ferry_options_set_default_consent(o, p, _consent(state)))
        for purpose, p, max_ms in per_purpose("hold_pending", "max_ms"):
            if isinstance(max_ms, bool) or not isinstance(max_ms, int) or not 0 <= max_ms < 2**64:
                raise InvalidArgumentError(Status.INVALID_ARGUMENT,
                                           f"option 'hold_pending[{purpose!r}]' refused: a whole number of ms")
            check(f"hold_pending[{purpose!r}]", lib.ferry_options_set_hold_pending(o, p, max_ms))
        if "pii_rules" in options:
            rules = options["pii_rules"]
            try:
                b = _json(rules, "pii_rules") if not isinstance(rules, str) else _text(rules, "pii_rules")
            except _Refused as r:
                raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"option 'pii_rules' refused: {r.reason}") from None
            if b is None:
                raise InvalidArgumentError(Status.INVALID_ARGUMENT, "option 'pii_rules' refused: None")
            check("pii_rules", lib.ferry_options_set_pii_rules(o, b))
        if "notice" in options:
            notice = options["notice"]
            if not isinstance(notice, tuple) or len(notice) != 2:
                raise TypeError("option 'notice' must be a tuple (notice_id, version)")
            try:
                nid, nver = _text(notice[0], "notice id"), _text(notice[1], "notice version")
            except _Refused as r:
                raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"option 'notice' refused: {r.reason}") from None
            check("notice", lib.ferry_options_set_notice(o, nid, nver))
        if "notice_changed_purposes" in options:
            changed = options["notice_changed_purposes"]
            if not isinstance(changed, str):
                if isinstance(changed, (bytes, Mapping)) or not hasattr(changed, "__iter__"):
                    raise TypeError("option 'notice_changed_purposes' must be a list of purposes (or a str)")
                changed = list(changed)
                if not all(isinstance(x, str) for x in changed):
                    raise TypeError("option 'notice_changed_purposes' must be a list of str")
                changed = ",".join(changed)
            options["notice_changed_purposes"] = changed
            check("notice_changed_purposes", lib.ferry_options_set_notice_changed_purposes(o, text("notice_changed_purposes")))
        if "reset_unreadable_buffer" in options:
            reset = options["reset_unreadable_buffer"]
            if not isinstance(reset, bool):
                raise TypeError("option 'reset_unreadable_buffer' must be a bool")
            check("reset_unreadable_buffer", lib.ferry_options_set_reset_unreadable_buffer(o, 1 if reset else 0))
        if "durability" in options:
            d = options["durability"]
            if isinstance(d, bool) or not isinstance(d, int):
                raise TypeError("option 'durability' must be a ferry.Durability")
            check("durability", lib.ferry_options_set_durability(o, int(d)))
        if "app_name" in options or "app_version" in options:
            name = text("app_name") if "app_name" in options else b"python"
            version = text("app_version") if "app_version" in options else None
            check("app_name", lib.ferry_options_set_app(o, name, version))
        if "log" in options and options["log"] is not None:
            fn = options["log"]
            if not callable(fn):
                raise TypeError("option 'log' must be callable(level, message)")

            def trampoline(level: int, msg: Optional[bytes], _user: Any) -> None:
                try:
                    try:
                        lvl: Union[LogLevel, int] = LogLevel(level)
                    except ValueError:
                        lvl = level
                    fn(lvl, msg.decode("utf-8", "replace") if msg else "")
                except BaseException:  # nothing may unwind into the library's threads
                    pass

            self._log_cb = _LOG_CB(trampoline)
            check("log", lib.ferry_options_set_log_callback(o, self._log_cb, None))

    # -- lifecycle --

    def _enter(self) -> int:
        with self._cond:
            if self._handle is None:
                raise ClientClosedError(Status.CLOSED, "the client is closed")
            self._inflight += 1
            return self._handle

    def _leave(self) -> None:
        with self._cond:
            self._inflight -= 1
            if self._inflight == 0:
                self._cond.notify_all()

    def _call(self, fn: Callable[[int], int], what: str) -> None:
        h = self._enter()
        try:
            st = fn(h)
        finally:
            self._leave()
        if st != Status.OK:
            raise self._failure(st, what)

    def _failure(self, st: int, what: str) -> FerryError:
        reason = status_message(st)
        if st == Status.INVALID_ARGUMENT:
            # The library records why it refused the call in stats()["last_error"] (best effort with many threads).
            try:
                detail = self.stats().get("last_error") or ""
            except FerryError:
                detail = ""
            if detail:
                reason = f"{reason}: {detail}"
        return _error(st, f"{what}: {reason}")

    def _refuse(self, fn: Callable[[int], int], what: str, reason: str) -> FerryError:
        """Sends a refused argument through the ABI as NULL (counted there) and builds the error."""
        h = self._enter()
        try:
            st = fn(h)
        finally:
            self._leave()
        st = st if st != Status.OK else Status.INVALID_ARGUMENT
        return _error(st, f"{what}: {status_message(st)}: {reason}")

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._handle is None

    def close(self, timeout_ms: int = DEFAULT_CLOSE_TIMEOUT_MS) -> None:
        """Flushes for at most timeout_ms, commits everything and frees the client. Closing twice is a no-op.

        Raises FerryTimeoutError if sendable events remain (they stay in the buffer for next time); the client is
        closed either way."""
        with self._cond:
            h = self._handle
            if h is None:
                return
            self._handle = None
            while self._inflight:
                self._cond.wait()
        st = self._lib.ferry_close(h, max(0, min(int(timeout_ms), 2**32 - 1)))
        if st != Status.OK:
            raise _error(st, f"close: {status_message(st)}")

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.close()
        except FerryTimeoutError:
            pass  # unsent events stay buffered; not an error on the way out of a with block

    def __del__(self) -> None:
        try:
            if getattr(self, "_handle", None) is not None:
                self.close(500)
        except Exception:
            pass

    # -- events --

    def track(self, event: str, properties: Optional[Mapping] = None, purpose: Optional[str] = None) -> None:
        """Records an event. properties: a dict (JSON object) or None. purpose: None means "analytics".
        Raises ConsentDeniedError if the purpose is denied, or pending (nothing is stored)."""
        lib = self._lib
        try:
            e = _text(event, "event")
            p = _json(properties, "properties")
            u = _text(purpose, "purpose", optional=True)
        except _Refused as r:
            raise self._refuse(lambda h: lib.ferry_track(h, None, None, None), "track", r.reason) from None
        self._call(lambda h: lib.ferry_track(h, e, p, u), "track")

    def screen(self, name: str, properties: Optional[Mapping] = None) -> None:
        """Records a screen view (purpose "analytics")."""
        lib = self._lib
        try:
            n = _text(name, "name")
            p = _json(properties, "properties")
        except _Refused as r:
            raise self._refuse(lambda h: lib.ferry_screen(h, None, None), "screen", r.reason) from None
        self._call(lambda h: lib.ferry_screen(h, n, p), "screen")

    def identify(self, user_id: str, traits: Optional[Mapping] = None) -> None:
        """Sets the userId and records an identify event with traits."""
        lib = self._lib
        try:
            u = _text(user_id, "user_id")
            t = _json(traits, "traits")
        except _Refused as r:
            raise self._refuse(lambda h: lib.ferry_identify(h, None, None), "identify", r.reason) from None
        self._call(lambda h: lib.ferry_identify(h, u, t), "identify")

    def reset(self) -> None:
        """Logout: forgets the userId, rotates the anonymousId and the session."""
        self._call(self._lib.ferry_reset, "reset")

    # -- consent --

    def set_consent(self, purpose: str, state: Consent) -> None:
        """Records the user's choice for a purpose (persisted). GRANTED makes its pending events sendable, DENIED
        purges them; "necessary" cannot be denied (InvalidArgumentError)."""
        lib = self._lib
        s = _consent(state)
        try:
            p = _text(purpose, "purpose")
        except _Refused as r:
            raise self._refuse(lambda h: lib.ferry_set_consent(h, None, s), "set_consent", r.reason) from None
        self._call(lambda h: lib.ferry_set_consent(h, p, s), "set_consent")

    def get_consent(self, purpose: str) -> Consent:
        """The state of a purpose; PENDING for one never configured (or a name the library refuses)."""
        try:
            p = _text(purpose, "purpose")
        except _Refused:
            return Consent.PENDING
        h = self._enter()
        try:
            v = self._lib.ferry_get_consent(h, p)
        finally:
            self._leave()
        try:
            return Consent(v)
        except ValueError:
            return Consent.PENDING

    def set_minor(self, minor: bool) -> None:
        """Marks the current user as a minor (True) or lifts the mark (False); persisted and recorded. While marked,
        only a guardian's grant (set_consent_guardian) admits a purpose other than "necessary"."""
        if not isinstance(minor, bool):
            raise TypeError(f"minor must be a bool, not {type(minor).__name__}")
        self._call(lambda h: self._lib.ferry_set_minor(h, 1 if minor else 0), "set_minor")

    def set_consent_guardian(self, purpose: str, state: Consent) -> None:
        """Records a guardian's choice for a purpose (method "guardian"): for a user marked as a minor, a guardian's
        GRANTED is what admits the purpose's events; "necessary" cannot be denied (InvalidArgumentError)."""
        lib = self._lib
        s = _consent(state)
        try:
            p = _text(purpose, "purpose")
        except _Refused as r:
            raise self._refuse(lambda h: lib.ferry_set_consent_guardian(h, None, s), "set_consent_guardian",
                               r.reason) from None
        self._call(lambda h: lib.ferry_set_consent_guardian(h, p, s), "set_consent_guardian")

    # -- requests filed by the person from the device --

    def request(self, kind: str, timeout_ms: int = 20000) -> dict:
        """Files a request about the user's data ("access", "erasure", "correction", ...) with the collector and
        returns its receipt: {"receipt": the id to ask about it with, "kind", "reference": the collector's request
        id (None while queued), "state": "awaiting_verification", ...}. The request is queued durably and retried
        across restarts: on FerryTimeoutError (still queued) and NetworkError (refused: state "refused", or the
        collector cannot be reached) the receipt is the error's ``receipt`` attribute, so keep it from there.
        InvalidArgumentError for a malformed kind."""
        t = _u32(timeout_ms)
        try:
            k = _text(kind, "kind")
        except _Refused as r:
            raise self._refuse(lambda h: self._lib.ferry_request(h, None, t, None), "request", r.reason) from None
        st, text = self._string_call(lambda h, out: self._lib.ferry_request(h, k, t, out))
        receipt = json.loads(text) if text else None
        if st != Status.OK:
            err = self._failure(st, "request")
            err.receipt = receipt
            raise err
        return receipt if receipt is not None else {}

    def request_status(self, receipt: Union[str, Mapping], timeout_ms: int = 20000) -> dict:
        """The state of a filed request (receipt: request()'s answer or its "receipt" string), asked of the
        collector: {"receipt", "reference", "kind", "state", "receivedAt", "dueAt", "refusalReason", "copyReady",
        "delivered"}, or the receipt while it is queued or was refused. InvalidArgumentError for a receipt this
        buffer never gave."""
        r, t = self._receipt(receipt), _u32(timeout_ms)
        st, text = self._string_call(lambda h, out: self._lib.ferry_request_status(h, r, t, out))
        if st != Status.OK:
            raise self._failure(st, "request_status")
        return json.loads(text) if text else {}

    def request_copy(self, receipt: Union[str, Mapping], timeout_ms: int = 20000) -> Optional[dict]:
        """The copy of an approved access request (the collector's export format), fetched once through a one-time
        link, which completes the request; None while the copy is not ready (see request_status()["copyReady"])."""
        r, t = self._receipt(receipt), _u32(timeout_ms)
        st, text = self._string_call(lambda h, out: self._lib.ferry_request_copy(h, r, t, out))
        if st != Status.OK:
            raise self._failure(st, "request_copy")
        return json.loads(text) if text else None

    def request_verification_code(self, timeout_ms: int = 20000) -> dict:
        """A short-lived, single-use code for the user to type on the project's self-service page:
        {"code": 8 digits, "expiresAt": ISO 8601}. Show it, do not store it. NetworkError when the collector
        refused (no public intake, no event of this device known yet, too many codes) or cannot be reached."""
        t = _u32(timeout_ms)
        st, text = self._string_call(lambda h, out: self._lib.ferry_request_verification_code(h, t, out))
        if st != Status.OK:
            raise self._failure(st, "request_verification_code")
        return json.loads(text) if text else {}

    def _receipt(self, receipt: Any) -> bytes:
        if isinstance(receipt, Mapping):
            receipt = receipt.get("receipt")
        if not isinstance(receipt, str):
            raise TypeError("receipt must be request()'s answer or its \"receipt\" str")
        try:
            b = _text(receipt, "receipt")
        except _Refused as r:
            raise InvalidArgumentError(Status.INVALID_ARGUMENT, f"receipt refused: {r.reason}") from None
        assert b is not None
        return b

    def _string_call(self, fn: Callable[[int, Any], int]) -> Tuple[int, str]:
        """Runs fn(handle, &out) and returns (status, the string handed out or "")."""
        out = ctypes.c_void_p()
        h = self._enter()
        try:
            st = fn(h, ctypes.byref(out))
            text = _take_string(self._lib, out)
        finally:
            self._leave()
        return st, text

    # -- upload, subject rights, introspection --

    def flush(self, timeout_ms: int = 5000) -> None:
        """Uploads now; raises FerryTimeoutError or NetworkError if not everything was accepted."""
        t = _u32(timeout_ms)
        self._call(lambda h: self._lib.ferry_flush(h, t), "flush")

    def forget(self, timeout_ms: int = 5000) -> None:
        """Wipes local data and asks the collector to erase this device's ids (retried until it goes through)."""
        t = _u32(timeout_ms)
        self._call(lambda h: self._lib.ferry_forget(h, t), "forget")

    def export_local(self) -> dict:
        """Everything the buffer holds about the current user (ids, consent, events), parsed from JSON."""
        return json.loads(self._string(self._lib.ferry_export_local, "export_local"))

    def stats(self) -> dict:
        """The counters (queued, pending_consent, sent, dropped_consent, invalid, ...) as a dict."""
        return json.loads(self._string(self._lib.ferry_stats_json, "stats"))

    def _string(self, fn: Callable, what: str) -> str:
        lib = self._lib
        out = ctypes.c_void_p()
        h = self._enter()
        try:
            st = fn(h, ctypes.byref(out))
            text = _take_string(lib, out)
        finally:
            self._leave()
        if st != Status.OK:
            raise _error(st, f"{what}: {status_message(st)}")
        return text


def _u32(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"timeout_ms must be an int, not {type(v).__name__}")
    return max(0, min(v, 2**32 - 1))
