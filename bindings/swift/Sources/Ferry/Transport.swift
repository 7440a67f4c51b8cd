// Uploads through the app's HTTP stack: FerryTransport, and URLSessionTransport built on URLSession.
// Not compiled in Ferry's Linux build (see bindings/swift/README.md): written for Swift 5.7+, iOS 13+/macOS 10.15+.
//
// Ferry calls the transport from its uploader thread (never the main thread), one request at a time per client;
// send() blocks that thread until the answer is in. The C side is ferry_options_set_transport (ferry.h).

import CFerry
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking  // URLSession on Linux
#endif

/// One upload request from Ferry.
public struct FerryHTTPRequest {
  /// "POST".
  public let method: String
  public let url: URL
  /// In Ferry's order: Authorization, Content-Type, Content-Encoding, ...
  public let headers: [(name: String, value: String)]
  /// As is (already compressed when a Content-Encoding header says so).
  public let body: Data
  /// The whole request must finish within this time.
  public let timeout: TimeInterval
}

/// The server's answer, whatever its status: Ferry reacts to the status itself (2xx accepted; 5xx, 429 and network
/// failures retried with backoff, honouring Retry-After; 401 stops uploads).
public struct FerryHTTPResponse {
  public let status: Int
  public let retryAfterSeconds: UInt32
  public let body: Data?

  public init(status: Int, retryAfterSeconds: UInt32 = 0, body: Data? = nil) {
    self.status = status
    self.retryAfterSeconds = retryAfterSeconds
    self.body = body
  }
}

/// The app's HTTP stack. send() is called on Ferry's uploader thread and may block it; return nil when no HTTP
/// answer arrived (Ferry counts a network failure and retries later). It must not call back into the client.
/// TLS verification is the transport's job (Options.caFile applies to the curl transport only).
public protocol FerryTransport: AnyObject {
  func send(_ request: FerryHTTPRequest) -> FerryHTTPResponse?
}

/// A transport over URLSession. The session's configuration (proxies, TLS pinning through its delegate, cellular
/// access, waitsForConnectivity = false) is the app's to choose; by default an ephemeral session (no cookies, no
/// cache).
public final class URLSessionTransport: FerryTransport {
  private let session: URLSession

  public init(session: URLSession = URLSession(configuration: .ephemeral)) {
    self.session = session
  }

  public func send(_ request: FerryHTTPRequest) -> FerryHTTPResponse? {
    var req = URLRequest(url: request.url, cachePolicy: .reloadIgnoringLocalCacheData,
                         timeoutInterval: request.timeout)
    req.httpMethod = request.method
    for h in request.headers where h.name.lowercased() != "content-length" && h.name.lowercased() != "host" {
      req.setValue(h.value, forHTTPHeaderField: h.name)
    }
    req.httpBody = request.body

    let done = DispatchSemaphore(value: 0)
    var answer: FerryHTTPResponse?
    let task = session.dataTask(with: req) { data, response, error in
      if error == nil, let http = response as? HTTPURLResponse {
        answer = FerryHTTPResponse(status: http.statusCode,
                                   retryAfterSeconds: URLSessionTransport.retryAfter(http), body: data)
      }
      done.signal()
    }
    task.resume()
    // URLSession enforces timeoutInterval between packets; this bounds the whole request, as Ferry asks.
    if done.wait(timeout: .now() + request.timeout + 1) == .timedOut {
      task.cancel()
      done.wait()  // the completion handler runs once, also after cancel()
      return nil
    }
    return answer
  }

  /// Retry-After in seconds (the delta-seconds form; an HTTP date gives 0 and Ferry's own backoff applies).
  static func retryAfter(_ http: HTTPURLResponse) -> UInt32 {
    for (key, value) in http.allHeaderFields {
      if let k = key as? String, k.caseInsensitiveCompare("Retry-After") == .orderedSame,
         let v = value as? String, let s = UInt32(v.trimmingCharacters(in: .whitespaces)) {
        return s
      }
    }
    return 0
  }
}

// MARK: - the C side

/// Keeps the transport alive while libferry holds it (released by ferrySwiftTransportRelease).
final class TransportBox {
  let transport: FerryTransport
  init(_ transport: FerryTransport) { self.transport = transport }
}

/// ferry_transport_send_fn: builds a FerryHTTPRequest from Ferry's request, fills Ferry's response.
let ferrySwiftTransportSend: ferry_transport_send_fn = { reqPtr, respPtr, user in
  guard let reqPtr = reqPtr, let respPtr = respPtr, let user = user else { return FERRY_ERR_NETWORK }
  let box = Unmanaged<TransportBox>.fromOpaque(user).takeUnretainedValue()
  let r = reqPtr.pointee
  guard let urlC = r.url, let url = URL(string: String(cString: urlC)) else { return FERRY_ERR_NETWORK }
  var headers: [(name: String, value: String)] = []
  if var h = r.headers {
    while let line = h.pointee {
      let text = String(cString: line)
      if let colon = text.firstIndex(of: ":") {
        headers.append((String(text[..<colon]).trimmingCharacters(in: .whitespaces),
                        String(text[text.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
      }
      h += 1
    }
  }
  let body = r.body.map { Data(bytes: $0, count: r.body_len) } ?? Data()
  let request = FerryHTTPRequest(method: r.method.map { String(cString: $0) } ?? "POST", url: url,
                                 headers: headers, body: body, timeout: TimeInterval(r.timeout_ms) / 1000)
  guard let answer = box.transport.send(request), (100...999).contains(answer.status) else {
    return FERRY_ERR_NETWORK
  }
  respPtr.pointee.status = Int32(answer.status)
  respPtr.pointee.retry_after_s = answer.retryAfterSeconds
  respPtr.pointee.body = nil
  respPtr.pointee.body_len = 0
  if let data = answer.body, !data.isEmpty {
    // Ferry frees the body with free(): it must come from malloc().
    guard let mem = malloc(data.count)?.assumingMemoryBound(to: UInt8.self) else { return FERRY_ERR_NETWORK }
    data.copyBytes(to: mem, count: data.count)
    respPtr.pointee.body = mem
    respPtr.pointee.body_len = data.count
  }
  return FERRY_OK
}

/// free_user: called once by libferry after the last send (from the thread that closes the client).
let ferrySwiftTransportRelease: @convention(c) (UnsafeMutableRawPointer?) -> Void = { user in
  guard let user = user else { return }
  Unmanaged<TransportBox>.fromOpaque(user).release()
}

/// The levels of the log handler (FERRY_LOG_* of ferry.h).
public enum FerryLogLevel: Int32 {
  case debug = 0, info = 1, warn = 2, error = 3
}

/// Holds the app's log handler while libferry may call it (until ferry_close has returned).
final class LogBox {
  let handler: (FerryLogLevel, String) -> Void
  init(_ handler: @escaping (FerryLogLevel, String) -> Void) { self.handler = handler }
}

let ferrySwiftLog: @convention(c) (Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
  level, msg, user in
  guard let msg = msg, let user = user else { return }
  let box = Unmanaged<LogBox>.fromOpaque(user).takeUnretainedValue()
  box.handler(FerryLogLevel(rawValue: level) ?? .error, String(cString: msg))
}
