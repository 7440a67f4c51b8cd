// Ferry for Swift: a thin wrapper over libferry's C ABI (module CFerry). Not built in Ferry's Linux CI; see
// bindings/swift/README.md.
//
// Every failure throws FerryError(status:message:). A string with an embedded NUL cannot cross the C ABI; it is
// refused *through the ABI* (a NULL name goes to the C function, which counts it in stats "invalid").
// A Ferry instance may be used from any thread; close() must not race with other calls (the deinit closes).

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
    public init() {}
  }

  private var handle: OpaquePointer?
  private let lock = NSLock()

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
    let st = ferry_open(o, &out)
    if st != FERRY_OK { throw FerryError(st, "open") }
    handle = out
  }

  deinit { _ = try? close(timeoutMs: 500) }

  /// Flushes for at most timeoutMs, then frees the client. Closing twice is a no-op.
  public func close(timeoutMs: UInt32 = 2000) throws {
    lock.lock()
    let h = handle
    handle = nil
    lock.unlock()
    guard let c = h else { return }
    let st = ferry_close(c, timeoutMs)
    if st != FERRY_OK && st != FERRY_ERR_TIMEOUT { throw FerryError(st, "close") }
  }

  public func track(_ event: String, properties: [String: Any]? = nil, purpose: String? = nil) throws {
    let c = try client()
    let json = try Ferry.json(properties)
    let st = Ferry.withOptionalCString(event) { e in
      Ferry.withOptionalCString(json) { p in
        Ferry.withOptionalCString(purpose) { u in
          // A NUL inside props or purpose: send a NULL event so the library refuses and counts it.
          ferry_track(c, (json?.utf8.contains(0) ?? false) || (purpose?.utf8.contains(0) ?? false) ? nil : e, p, u)
        }
      }
    }
    if st != FERRY_OK { throw FerryError(st, "track") }
  }

  public func screen(_ name: String, properties: [String: Any]? = nil) throws {
    let c = try client()
    let json = try Ferry.json(properties)
    let st = Ferry.withOptionalCString(name) { n in Ferry.withOptionalCString(json) { p in ferry_screen(c, n, p) } }
    if st != FERRY_OK { throw FerryError(st, "screen") }
  }

  public func identify(_ userId: String, traits: [String: Any]? = nil) throws {
    let c = try client()
    let json = try Ferry.json(traits)
    let st = Ferry.withOptionalCString(userId) { u in Ferry.withOptionalCString(json) { t in ferry_identify(c, u, t) } }
    if st != FERRY_OK { throw FerryError(st, "identify") }
  }

  public func reset() throws {
    let st = ferry_reset(try client())
    if st != FERRY_OK { throw FerryError(st, "reset") }
  }

  public func setConsent(_ purpose: String, _ state: Consent) throws {
    let c = try client()
    let st = Ferry.withOptionalCString(purpose) {
      ferry_set_consent(c, $0, ferry_consent(rawValue: UInt32(state.rawValue)))
    }
    if st != FERRY_OK { throw FerryError(st, "setConsent") }
  }

  public func consent(for purpose: String) throws -> Consent {
    let c = try client()
    let v = Ferry.withOptionalCString(purpose) { ferry_get_consent(c, $0) }
    return Consent(rawValue: Int32(v.rawValue)) ?? .pending
  }

  public func flush(timeoutMs: UInt32 = 5000) throws {
    let st = ferry_flush(try client(), timeoutMs)
    if st != FERRY_OK { throw FerryError(st, "flush") }
  }

  public func forget(timeoutMs: UInt32 = 5000) throws {
    let st = ferry_forget(try client(), timeoutMs)
    if st != FERRY_OK { throw FerryError(st, "forget") }
  }

  /// Everything the buffer holds about the current user, as JSON text.
  public func exportLocal() throws -> String { try string(ferry_export_local, "exportLocal") }

  /// The counters as JSON text.
  public func statsJSON() throws -> String { try string(ferry_stats_json, "stats") }

  // MARK: - plumbing

  private func client() throws -> OpaquePointer {
    lock.lock()
    defer { lock.unlock() }
    guard let h = handle else { throw FerryError(FERRY_ERR_CLOSED, "client") }
    return h
  }

  private func string(_ f: (OpaquePointer?, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> ferry_status,
                      _ what: String) throws -> String {
    var out: UnsafeMutablePointer<CChar>?
    let st = f(try client(), &out)
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
