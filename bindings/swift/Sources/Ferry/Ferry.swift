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

public struct FerryError: Error, CustomStringConvertible {
  public enum Status: Int32 {
    case ok = 0, invalidArgument = 1, consentDenied = 2, storage = 3, closed = 4, timeout = 5, network = 6
    case `internal` = 99
    case bufferUnreadable = 7
  }
  public let status: Status
  public let message: String
  public var description: String { "\(status): \(message)" }

  init(_ raw: ferry_status, _ what: String) {
    status = Status(rawValue: Int32(raw.rawValue)) ?? .internal
    message = "\(what): \(String(cString: ferry_status_str(raw)))"
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
