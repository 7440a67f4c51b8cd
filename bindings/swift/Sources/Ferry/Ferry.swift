// Ferry for Swift: a thin wrapper over libferry's C ABI (module CFerry). Not compiled in Ferry's Linux CI (no Swift
// toolchain there); written for Swift 5.7+. See bindings/swift/README.md.
//
// Every failure throws FerryError(status:message:). A string with an embedded NUL cannot cross the C ABI; it is
// refused *through the ABI* (a NULL name goes to the C function, which counts it in stats "invalid").
// A Ferry instance may be used from any thread. close() waits for calls in progress; afterwards every call throws
// .closed. flush and close block their caller for up to their timeout: from the main thread use the completion-
// handler or async forms, which run them on a background queue. deinit closes in the background, never blocking.

import CFerry
import Foundation

public enum Consent: Int32 {
  case pending = 0
  case granted = 1
  case denied = 2
}

/// How soon an accepted event is committed to the encrypted buffer (ferry_durability).
public enum Durability: UInt32 {
  case batched = 0
  case sync = 1
}

/// The receipt of a request filed with Ferry.request(_:timeoutMs:): keep `receipt` to ask about it.
public struct RequestReceipt {
  /// The id to ask about the request with (requestStatus, requestCopy).
  public let receipt: String
  /// "access", "erasure", ...
  public let kind: String
  /// The collector's request id; nil while the request is queued on the device.
  public let reference: String?
  /// "queued", "awaiting_verification", ..., "refused".
  public let state: String
  /// Why it was refused or is still queued; nil when none.
  public let error: String?
  /// The receipt as libferry gave it (JSON).
  public let json: String

  init?(json: String) {
    guard let d = Ferry.object(json), let receipt = d["receipt"] as? String else { return nil }
    self.receipt = receipt
    kind = d["kind"] as? String ?? ""
    reference = d["reference"] as? String
    state = d["state"] as? String ?? ""
    error = d["error"] as? String
    self.json = json
  }
}

/// The state of a filed request as the collector reports it (Ferry.requestStatus).
public struct RequestStatus {
  public let receipt: String?
  public let reference: String?
  public let kind: String?
  /// "queued", "awaiting_verification", "in_progress", "completed", "refused", ...
  public let state: String
  public let receivedAt: String?
  public let dueAt: String?
  public let refusalReason: String?
  /// True once an approved access request's copy can be fetched with requestCopy.
  public let copyReady: Bool
  public let delivered: Bool
  /// The state as libferry gave it (JSON).
  public let json: String

  init?(json: String) {
    guard let d = Ferry.object(json) else { return nil }
    receipt = d["receipt"] as? String
    reference = d["reference"] as? String
    kind = d["kind"] as? String
    state = d["state"] as? String ?? ""
    receivedAt = d["receivedAt"] as? String
    dueAt = d["dueAt"] as? String
    refusalReason = d["refusalReason"] as? String
    copyReady = d["copyReady"] as? Bool ?? false
    delivered = d["delivered"] as? Bool ?? false
    self.json = json
  }
}

/// A short-lived, single-use code for the project's self-service page: show it, do not store it.
public struct VerificationCode {
  /// 8 digits.
  public let code: String
  /// ISO 8601.
  public let expiresAt: String
}

public struct FerryError: Error, CustomStringConvertible {
  public enum Status: Int32 {
    case ok = 0, invalidArgument = 1, consentDenied = 2, storage = 3, closed = 4, timeout = 5, network = 6
    case `internal` = 99
    case bufferUnreadable = 7
  }
  public let status: Status
  public let message: String
  /// The request's receipt when Ferry.request failed after queueing it (.timeout: still queued and retried;
  /// .network: refused or unreachable); nil otherwise. Keep it to ask about the request later.
  public let receipt: RequestReceipt?
  public var description: String { "\(status): \(message)" }

  init(_ raw: ferry_status, _ what: String, receipt: RequestReceipt? = nil) {
    status = Status(rawValue: Int32(raw.rawValue)) ?? .internal
    message = "\(what): \(String(cString: ferry_status_str(raw)))"
    self.receipt = receipt
  }
}

public final class Ferry {
  /// Client configuration, applied by Ferry(options:). Values are checked there.
  public struct Options {
    public var storagePath: String?
    public var encryptionKey: [UInt8]?  // 32 bytes; nil: the platform keeps one
    public var endpoint: String?
    public var writeKey: String?
    public var caFile: String?
    public var piiRulesJSON: String?
    public var defaultConsent: [String: Consent] = [:]
    public var flushIntervalMs: UInt32?
    public var batchSize: UInt32?
    public var maxStorageBytes: UInt64?
    public var appName: String?
    public var appVersion: String?
    /// .batched (default) or .sync (ferry_options_set_durability).
    public var durability: Durability?
    /// The oldest a buffered event may get (default 30 days; at least 1 s).
    public var maxEventAgeMs: UInt64?
    /// Idle time after which the next event starts a new session (default 30 minutes; 1 s to 24 h).
    public var sessionTimeoutMs: UInt32?
    /// "sha256//<base64>" pins of the collector's key, joined with ';' (curl transport only).
    public var pinnedPublicKey: String?
    /// true: a buffer the key cannot read is moved aside and a fresh one started (every purpose but "necessary"
    /// DENIED until set again); false (default): init throws .bufferUnreadable and changes nothing.
    public var resetUnreadableBuffer: Bool?
    /// The app's data directory (absolute), in place of Application Support: the buffer is then
    /// <dataDir>/ferry/<app>/buffer.db.
    public var dataDir: String?
    /// [purpose: maxMs]: hold a PENDING purpose's events for at most maxMs (1 s to 365 days) and send them once it
    /// is granted; never "sensitive". Default: an event of a pending purpose is refused (.consentDenied).
    public var holdPending: [String: UInt64] = [:]
    /// The privacy notice the app shows (id 1-200 bytes, version 1-64 bytes), named by every consent record.
    public var notice: (id: String, version: String)?
    /// The language the notice was shown in ("de-CH"), carried by every consent record. Default: the locale.
    public var consentLanguage: String?
    /// When the notice version changes, only these purposes are asked again. Default: every granted purpose.
    public var noticeChangedPurposes: [String]?
    /// Uploads through the app's HTTP stack (e.g. URLSessionTransport()) instead of libferry's curl transport.
    public var transport: FerryTransport?
    /// Receives libferry's log lines, on any of Ferry's threads; keep it short, do not call back into the client.
    public var log: ((FerryLogLevel, String) -> Void)?
    public init() {}
  }

  private var handle: OpaquePointer?  // guarded by state; nil once closed
  private var inFlight = 0  // calls in progress, guarded by state
  private let state = NSCondition()
  private var logBox: LogBox?  // alive until ferry_close has returned
  /// Where flush/close with a completion handler or async run (they block a thread for up to their timeout).
  private static let background = DispatchQueue(label: "io.ferry.background", qos: .utility, attributes: .concurrent)

  public static var version: String { String(cString: ferry_version()) }

  public init(options: Options) throws {
    guard let o = ferry_options_new() else { throw FerryError(FERRY_ERR_INTERNAL, "options") }
    var owned = true
    defer { if owned { ferry_options_free(o) } }
    func check(_ st: ferry_status, _ name: String) throws {
      if st != FERRY_OK { throw FerryError(st, "option \(name)") }
    }
    func set(_ v: String?, _ name: String, _ f: (OpaquePointer?, UnsafePointer<CChar>?) -> ferry_status) throws {
      guard let v = v else { return }
      try check(Ferry.withOptionalCString(v) { f(o, $0) }, name)
    }
    // The log handler first, so that the setters below can already say why they refuse a value.
    var logBox: LogBox?
    if let handler = options.log {
      let box = LogBox(handler)
      logBox = box
      try check(ferry_options_set_log_callback(o, ferrySwiftLog, Unmanaged.passUnretained(box).toOpaque()), "log")
    }
    if let transport = options.transport {
      let user = Unmanaged.passRetained(TransportBox(transport)).toOpaque()
      let st = ferry_options_set_transport(o, ferrySwiftTransportSend, user, ferrySwiftTransportRelease)
      if st != FERRY_OK { Unmanaged<TransportBox>.fromOpaque(user).release() }  // not taken by the options
      try check(st, "transport")  // once taken, released by libferry (options freed, open failed, or close)
    }
    try set(options.storagePath, "storagePath", ferry_options_set_storage_path)
    try set(options.endpoint, "endpoint", ferry_options_set_endpoint)
    try set(options.writeKey, "writeKey", ferry_options_set_write_key)
    try set(options.caFile, "caFile", ferry_options_set_ca_file)
    try set(options.piiRulesJSON, "piiRules", ferry_options_set_pii_rules)
    if let key = options.encryptionKey {
      try check(key.withUnsafeBufferPointer { ferry_options_set_encryption_key(o, $0.baseAddress, $0.count) },
                "encryptionKey")
    }
    for (purpose, state) in options.defaultConsent {
      try check(Ferry.withOptionalCString(purpose) {
        ferry_options_set_default_consent(o, $0, ferry_consent(rawValue: UInt32(state.rawValue)))
      }, "defaultConsent")
    }
    if let v = options.flushIntervalMs { try check(ferry_options_set_flush_interval_ms(o, v), "flushIntervalMs") }
    if let v = options.batchSize { try check(ferry_options_set_batch_size(o, v), "batchSize") }
    if let v = options.maxStorageBytes { try check(ferry_options_set_max_storage_bytes(o, v), "maxStorageBytes") }
    if let d = options.durability {
      try check(ferry_options_set_durability(o, ferry_durability(rawValue: d.rawValue)), "durability")
    }
    if let v = options.maxEventAgeMs { try check(ferry_options_set_max_event_age_ms(o, v), "maxEventAgeMs") }
    if let v = options.sessionTimeoutMs {
      try check(ferry_options_set_session_timeout_ms(o, v), "sessionTimeoutMs")
    }
    try set(options.pinnedPublicKey, "pinnedPublicKey", ferry_options_set_pinned_public_key)
    if let reset = options.resetUnreadableBuffer {
      try check(ferry_options_set_reset_unreadable_buffer(o, reset ? 1 : 0), "resetUnreadableBuffer")
    }
    try set(options.dataDir, "dataDir", ferry_options_set_data_dir)
    for (purpose, maxMs) in options.holdPending {
      try check(Ferry.withOptionalCString(purpose) { ferry_options_set_hold_pending(o, $0, maxMs) }, "holdPending")
    }
    if let notice = options.notice {
      try check(Ferry.withOptionalCString(notice.id) { n in
        // A NUL inside the version: a NULL id too, so the library refuses it.
        Ferry.withOptionalCString(notice.version) { v in ferry_options_set_notice(o, v == nil ? nil : n, v) }
      }, "notice")
    }
    try set(options.consentLanguage, "consentLanguage", ferry_options_set_consent_language)
    try set(options.noticeChangedPurposes?.joined(separator: ","), "noticeChangedPurposes",
            ferry_options_set_notice_changed_purposes)
    if let name = options.appName {
      try check(Ferry.withOptionalCString(name) { n in
        Ferry.withOptionalCString(options.appVersion) { v in ferry_options_set_app(o, n, v) }
      }, "app")
    }
    var out: OpaquePointer?
    owned = false  // ferry_open takes ownership, also on failure
    let st = withExtendedLifetime(logBox) { ferry_open(o, &out) }
    if st != FERRY_OK { throw FerryError(st, "open") }
    handle = out
    self.logBox = logBox
  }

  deinit {
    // Never blocks the releasing thread: the final flush runs on the background queue, which keeps the log
    // handler alive until ferry_close has returned.
    guard let c = handle else { return }
    let box = logBox
    Ferry.background.async { withExtendedLifetime(box) { _ = ferry_close(c, 500) } }
  }

  /// Waits for calls in progress, flushes for at most timeoutMs, then frees the client. Blocks the caller (see the
  /// completion-handler and async forms). Closing twice is a no-op. Unsent events stay in the buffer.
  public func close(timeoutMs: UInt32 = 2000) throws {
    state.lock()
    let h = handle
    handle = nil  // new calls throw .closed from here on
    while inFlight > 0 { state.wait() }
    state.unlock()
    guard let c = h else { return }
    let st = ferry_close(c, timeoutMs)  // Ferry's threads are stopped when it returns: no more log lines
    logBox = nil
    if st != FERRY_OK && st != FERRY_ERR_TIMEOUT { throw FerryError(st, "close") }
  }

  /// close(timeoutMs:) on a background queue; completion runs on completionQueue.
  public func close(timeoutMs: UInt32 = 2000, completionQueue: DispatchQueue = .main,
                    completion: @escaping (Result<Void, Error>) -> Void) {
    Ferry.inBackground(completionQueue, completion) { try self.close(timeoutMs: timeoutMs) }
  }

  /// close(timeoutMs:) without blocking the calling task's thread.
  @available(macOS 10.15, iOS 13.0, tvOS 13.0, watchOS 6.0, *)
  public func close(timeoutMs: UInt32 = 2000) async throws {
    try await Ferry.inBackground { try self.close(timeoutMs: timeoutMs) }
  }

  public func track(_ event: String, properties: [String: Any]? = nil, purpose: String? = nil) throws {
    let json = try Ferry.json(properties)
    try call("track") { c in
      Ferry.withOptionalCString(event) { e in
        Ferry.withOptionalCString(json) { p in
          Ferry.withOptionalCString(purpose) { u in
            // A NUL inside props or purpose: send a NULL event so the library refuses and counts it.
            ferry_track(c, (json?.utf8.contains(0) ?? false) || (purpose?.utf8.contains(0) ?? false) ? nil : e, p, u)
          }
        }
      }
    }
  }

  public func screen(_ name: String, properties: [String: Any]? = nil) throws {
    let json = try Ferry.json(properties)
    try call("screen") { c in
      Ferry.withOptionalCString(name) { n in Ferry.withOptionalCString(json) { p in ferry_screen(c, n, p) } }
    }
  }

  public func identify(_ userId: String, traits: [String: Any]? = nil) throws {
    let json = try Ferry.json(traits)
    try call("identify") { c in
      Ferry.withOptionalCString(userId) { u in Ferry.withOptionalCString(json) { t in ferry_identify(c, u, t) } }
    }
  }

  public func reset() throws {
    try call("reset") { ferry_reset($0) }
  }

  public func setConsent(_ purpose: String, _ state: Consent) throws {
    try call("setConsent") { c in
      Ferry.withOptionalCString(purpose) { ferry_set_consent(c, $0, ferry_consent(rawValue: UInt32(state.rawValue))) }
    }
  }

  public func consent(for purpose: String) throws -> Consent {
    let c = try enter()
    defer { leave() }
    let v = Ferry.withOptionalCString(purpose) { ferry_get_consent(c, $0) }
    return Consent(rawValue: Int32(v.rawValue)) ?? .pending
  }

  /// Marks the current user as a minor (true) or lifts the mark (false); persisted and recorded. While marked, only
  /// a guardian's grant (setConsentGuardian) admits a purpose other than "necessary".
  public func setMinor(_ minor: Bool) throws {
    try call("setMinor") { ferry_set_minor($0, minor ? 1 : 0) }
  }

  /// A guardian's choice for a purpose (method "guardian"); "necessary" cannot be denied (.invalidArgument).
  public func setConsentGuardian(_ purpose: String, _ state: Consent) throws {
    try call("setConsentGuardian") { c in
      Ferry.withOptionalCString(purpose) {
        ferry_set_consent_guardian(c, $0, ferry_consent(rawValue: UInt32(state.rawValue)))
      }
    }
  }

  // MARK: - requests filed by the person from the device

  /// Files a request about the user's data ("access", "erasure", "correction", ...) with the collector, waiting up
  /// to timeoutMs for it to be registered (awaiting an officer's verification). Throws .timeout (still queued,
  /// retried across restarts) or .network (refused, or the collector cannot be reached) with the error's `receipt`
  /// set: keep it. .invalidArgument for a malformed kind. Blocks the caller: call it off the main thread.
  public func request(_ kind: String, timeoutMs: UInt32 = 20000) throws -> RequestReceipt {
    let (st, text) = try stringCall { c, out in
      Ferry.withOptionalCString(kind) { ferry_request(c, $0, timeoutMs, out) }
    }
    let receipt = text.flatMap { RequestReceipt(json: $0) }
    if st != FERRY_OK { throw FerryError(st, "request", receipt: receipt) }
    guard let r = receipt else { throw FerryError(FERRY_ERR_INTERNAL, "request: no receipt") }
    return r
  }

  /// The state of a filed request, asked of the collector. .invalidArgument for a receipt this buffer never gave.
  public func requestStatus(_ receipt: String, timeoutMs: UInt32 = 20000) throws -> RequestStatus {
    let (st, text) = try stringCall { c, out in
      Ferry.withOptionalCString(receipt) { ferry_request_status(c, $0, timeoutMs, out) }
    }
    if st != FERRY_OK { throw FerryError(st, "requestStatus") }
    guard let s = text.flatMap({ RequestStatus(json: $0) }) else {
      throw FerryError(FERRY_ERR_INTERNAL, "requestStatus: no state")
    }
    return s
  }

  /// The copy of an approved access request (JSON, the collector's export format), fetched once through a one-time
  /// link, which completes the request; nil while the copy is not ready (RequestStatus.copyReady).
  public func requestCopy(_ receipt: String, timeoutMs: UInt32 = 20000) throws -> String? {
    let (st, text) = try stringCall { c, out in
      Ferry.withOptionalCString(receipt) { ferry_request_copy(c, $0, timeoutMs, out) }
    }
    if st != FERRY_OK { throw FerryError(st, "requestCopy") }
    return text
  }

  /// A code for the user to type on the project's self-service page, bound to the subject this device uses.
  /// Throws .network when the collector refused (no public intake, no event of this device known yet, too many
  /// codes) or cannot be reached.
  public func requestVerificationCode(timeoutMs: UInt32 = 20000) throws -> VerificationCode {
    let (st, text) = try stringCall { c, out in ferry_request_verification_code(c, timeoutMs, out) }
    if st != FERRY_OK { throw FerryError(st, "requestVerificationCode") }
    guard let d = text.flatMap({ Ferry.object($0) }), let code = d["code"] as? String else {
      throw FerryError(FERRY_ERR_INTERNAL, "requestVerificationCode: no code")
    }
    return VerificationCode(code: code, expiresAt: d["expiresAt"] as? String ?? "")
  }

  /// Uploads now; throws .timeout or .network if not everything was accepted. Blocks the caller for up to
  /// timeoutMs (see the completion-handler and async forms).
  public func flush(timeoutMs: UInt32 = 5000) throws {
    try call("flush") { ferry_flush($0, timeoutMs) }
  }

  /// flush(timeoutMs:) on a background queue; completion runs on completionQueue.
  public func flush(timeoutMs: UInt32 = 5000, completionQueue: DispatchQueue = .main,
                    completion: @escaping (Result<Void, Error>) -> Void) {
    Ferry.inBackground(completionQueue, completion) { try self.flush(timeoutMs: timeoutMs) }
  }

  /// flush(timeoutMs:) without blocking the calling task's thread.
  @available(macOS 10.15, iOS 13.0, tvOS 13.0, watchOS 6.0, *)
  public func flush(timeoutMs: UInt32 = 5000) async throws {
    try await Ferry.inBackground { try self.flush(timeoutMs: timeoutMs) }
  }

  /// Wipes local data and asks the collector to erase this device's ids. Blocks for up to timeoutMs.
  public func forget(timeoutMs: UInt32 = 5000) throws {
    try call("forget") { ferry_forget($0, timeoutMs) }
  }

  /// Everything the buffer holds about the current user, as JSON text.
  public func exportLocal() throws -> String { try string(ferry_export_local, "exportLocal") }

  /// The counters as JSON text.
  public func statsJSON() throws -> String { try string(ferry_stats_json, "stats") }

  // MARK: - plumbing

  /// The handle, counted as a call in progress until leave(); close() waits for those.
  private func enter() throws -> OpaquePointer {
    state.lock()
    defer { state.unlock() }
    guard let h = handle else { throw FerryError(FERRY_ERR_CLOSED, "client") }
    inFlight += 1
    return h
  }

  private func leave() {
    state.lock()
    inFlight -= 1
    if inFlight == 0 { state.broadcast() }
    state.unlock()
  }

  private func call(_ what: String, _ body: (OpaquePointer) -> ferry_status) throws {
    let c = try enter()
    let st = body(c)
    leave()
    if st != FERRY_OK { throw FerryError(st, what) }
  }

  /// Runs work on the background queue, then completion with its result on completionQueue.
  private static func inBackground(_ completionQueue: DispatchQueue,
                                   _ completion: @escaping (Result<Void, Error>) -> Void,
                                   _ work: @escaping () throws -> Void) {
    background.async {
      let result = Result { try work() }
      completionQueue.async { completion(result) }
    }
  }

  @available(macOS 10.15, iOS 13.0, tvOS 13.0, watchOS 6.0, *)
  private static func inBackground(_ work: @escaping () throws -> Void) async throws {
    try await withCheckedThrowingContinuation { (k: CheckedContinuation<Void, Error>) in
      background.async { k.resume(with: Result { try work() }) }
    }
  }

  private func string(_ f: (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> ferry_status,
                      _ what: String) throws -> String {
    var out: UnsafeMutablePointer<CChar>?
    let c = try enter()
    let st = f(c, &out)
    leave()
    defer { ferry_free(out) }
    if st != FERRY_OK { throw FerryError(st, what) }
    return out.map { String(cString: $0) } ?? ""
  }

  /// Runs body(handle, &out) as a call in progress; returns its status and the string handed out (nil for none),
  /// whatever the status (ferry_request gives its receipt on .timeout and .network too).
  private func stringCall(
    _ body: (OpaquePointer, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> ferry_status
  ) throws -> (ferry_status, String?) {
    var out: UnsafeMutablePointer<CChar>?
    let c = try enter()
    let st = body(c, &out)
    leave()
    defer { ferry_free(out) }
    return (st, out.map { String(cString: $0) })
  }

  /// A JSON object handed out by libferry, as a dictionary (nil when it is not one).
  static func object(_ json: String) -> [String: Any]? {
    guard let data = json.data(using: .utf8) else { return nil }
    return (try? JSONSerialization.jsonObject(with: data, options: [])) as? [String: Any]
  }

  private static func json(_ dict: [String: Any]?) throws -> String? {
    guard let dict = dict else { return nil }
    guard JSONSerialization.isValidJSONObject(dict) else {
      throw FerryError(FERRY_ERR_INVALID_ARGUMENT, "properties have no JSON form")
    }
    let data = try JSONSerialization.data(withJSONObject: dict, options: [])
    return String(decoding: data, as: UTF8.self)
  }

  /// Calls body with a C string, or with nil when s is nil or holds a NUL (which the C layer then refuses).
  private static func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s = s, !s.utf8.contains(0) else { return body(nil) }
    return s.withCString { body($0) }
  }
}
