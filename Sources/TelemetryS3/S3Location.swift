import Foundation

/// A bucket and a key prefix, from `s3://BUCKET[/PREFIX]`.
///
/// The prefix is the root of a storage-layout tree (`spec/storage.md` §3): keys below it are read as
/// `<d1>/…/<d(N-1)>.<dN>.v<format>.log…` relative to it. A non-empty prefix always ends in `/`, so
/// `s3://b/data` and `s3://b/data/` both mean the "directory" `data/`.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public let bucket: String
    /// Empty, or ending in `/`; never starting with `/`.
    public let prefix: String

    /// - Throws: `S3Error.invalidURL` when the scheme is not `s3://` (case-insensitive), the bucket is empty, or
    ///   the bucket name holds characters no S3 bucket name has.
    public init(url: String) throws {
        guard Self.isS3URL(url) else { throw S3Error.invalidURL(url, reason: "the scheme is not s3://") }
        let rest = url.dropFirst(5)
        let slash = rest.firstIndex(of: "/")
        let bucket = String(slash.map { rest[..<$0] } ?? rest)
        guard !bucket.isEmpty else { throw S3Error.invalidURL(url, reason: "no bucket name") }
        guard bucket.utf8.allSatisfy({ Self.isBucketByte($0) }) else {
            throw S3Error.invalidURL(url, reason: "'\(bucket)' is not a bucket name (letters, digits, '.', '-', '_')")
        }
        var prefix = slash.map { String(rest[rest.index(after: $0)...]) } ?? ""
        while prefix.hasPrefix("/") { prefix.removeFirst() }
        if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
        self.init(bucket: bucket, prefix: prefix)
    }

    /// A location from parts already split; `prefix` is normalised as by `init(url:)`.
    public init(bucket: String, prefix: String) {
        var normalized = prefix
        while normalized.hasPrefix("/") { normalized.removeFirst() }
        if !normalized.isEmpty && !normalized.hasSuffix("/") { normalized += "/" }
        self.bucket = bucket
        self.prefix = normalized
    }

    /// True when `argument` starts with `s3://` (any case): the import command's test for "this is not a local path".
    public static func isS3URL(_ argument: String) -> Bool { argument.lowercased().hasPrefix("s3://") }

    /// `s3://bucket/prefix`.
    public var description: String { "s3://\(bucket)/\(prefix)" }

    /// Letters, digits, `.`, `-` and (legacy buckets) `_`.
    private static func isBucketByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"): true
        default: false
        }
    }
}
