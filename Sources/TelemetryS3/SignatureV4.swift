import Crypto
import Foundation

/// AWS Signature Version 4 for S3 requests with an `Authorization` header (AWS docs "Signature Calculations for
/// the Authorization Header: Transferring Payload in a Single Chunk"). SHA-256 and HMAC-SHA256 come from
/// swift-crypto.
///
/// Only bodiless requests are signed here (GET): the payload hash is the SHA-256 of the empty string.
public struct SignatureV4: Sendable {
    public let credentials: S3Credentials
    /// The region of the credential scope (`<day>/<region>/<service>/aws4_request`).
    public let region: String
    /// The service of the credential scope: `s3`.
    public let service: String

    /// Hex SHA-256 of an empty body, sent as `x-amz-content-sha256` on every GET.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public init(credentials: S3Credentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The headers to add to a request so that S3 accepts it: `x-amz-date`, `x-amz-content-sha256`,
    /// `x-amz-security-token` (temporary credentials) and `Authorization`.
    ///
    /// - Parameters:
    ///   - encodedPath: the request path exactly as sent, already URI-encoded (`uriEncode(_:encodeSlash: false)`
    ///     per segment); S3 does not normalise it again.
    ///   - query: raw (unencoded) query parameters; they are encoded and sorted here, and must be sent in the
    ///     same encoding (`canonicalQuery(_:)`).
    ///   - host: the `Host` header as the client will send it (`host` or `host:port` for a non-default port).
    ///   - headers: other headers to sign (names any case), for example `range` and `if-match`.
    ///   - date: the signing time (UTC); S3 refuses a signature more than 15 minutes off its clock.
    /// - Complexity: O(total length of the request parts); allocates the canonical request.
    public func authorizationHeaders(method: String, encodedPath: String, query: [(String, String)], host: String,
                                     headers: [String: String] = [:], date: Date) -> [String: String] {
        let (amzDate, day) = Self.timestamps(date)
        var signed: [String: String] = [:]
        for (name, value) in headers { signed[name.lowercased()] = value }
        signed["host"] = host
        signed["x-amz-date"] = amzDate
        signed["x-amz-content-sha256"] = Self.emptyPayloadHash
        if let token = credentials.sessionToken { signed["x-amz-security-token"] = token }
        let (canonical, signedNames) = Self.canonicalRequest(method: method, encodedPath: encodedPath, query: query,
                                                             headers: signed, payloadHash: Self.emptyPayloadHash)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Self.hexSHA256(Data(canonical.utf8)))"
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: signingKey(day: day)))
        var out = ["x-amz-date": amzDate, "x-amz-content-sha256": Self.emptyPayloadHash]
        if let token = credentials.sessionToken { out["x-amz-security-token"] = token }
        out["Authorization"] = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope),SignedHeaders=\(signedNames),Signature=\(signature)"
        return out
    }

    /// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request")`.
    func signingKey(day: String) -> SymmetricKey {
        func mac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)))
        }
        let secret = SymmetricKey(data: Data(("AWS4" + credentials.secretAccessKey).utf8))
        return mac(mac(mac(mac(secret, day), region), service), "aws4_request")
    }

    /// The canonical request and the `SignedHeaders` list. Header names must already be lower-case; values are
    /// trimmed and inner runs of spaces collapsed, as the specification requires.
    static func canonicalRequest(method: String, encodedPath: String, query: [(String, String)], headers: [String: String],
                                 payloadHash: String) -> (String, String) {
        let names = headers.keys.sorted()
        let canonicalHeaders = names.map { name in
            let value = (headers[name] ?? "").trimmingCharacters(in: .whitespaces)
                .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            return "\(name):\(value)\n"
        }.joined()
        let signedNames = names.joined(separator: ";")
        let path = encodedPath.isEmpty ? "/" : encodedPath
        return ([method, path, canonicalQuery(query), canonicalHeaders, signedNames, payloadHash].joined(separator: "\n"), signedNames)
    }

    /// `k=v&…` with keys and values URI-encoded (`/` too) and sorted by encoded key, then value. This is also the
    /// query string to send.
    public static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(key: String, value: String)] = query.map { pair in
            (uriEncode(pair.0, encodeSlash: true), uriEncode(pair.1, encodeSlash: true))
        }
        let sorted = encoded.sorted { a, b in a.key == b.key ? a.value < b.value : a.key < b.key }
        return sorted.map { pair in pair.key + "=" + pair.value }.joined(separator: "&")
    }

    /// AWS's URI encoding: every byte of the UTF-8 form except `A-Z a-z 0-9 - _ . ~` (and `/` when `encodeSlash`
    /// is false) becomes `%XY` with upper-case hex.
    public static func uriEncode(_ text: String, encodeSlash: Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where !encodeSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// (`yyyyMMdd'T'HHmmss'Z'`, `yyyyMMdd`) in UTC.
    static func timestamps(_ date: Date) -> (String, String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let day = String(format: "%04d%02d%02d", c.year ?? 1970, c.month ?? 1, c.day ?? 1)
        return (day + String(format: "T%02d%02d%02dZ", c.hour ?? 0, c.minute ?? 0, c.second ?? 0), day)
    }

    static func hexSHA256(_ data: Data) -> String { hex(SHA256.hash(data: data)) }

    /// Lower-case hex of any byte sequence (digests, MACs).
    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
