import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// One object as ListObjectsV2 describes it.
public struct S3Object: Sendable, Equatable {
    public var key: String
    /// Bytes.
    public var size: Int64
    /// The ETag without its quotes: the hex MD5 of the content for a single-part upload (unless SSE-KMS/SSE-C),
    /// `<hex>-<part count>` for a multipart upload.
    public var etag: String

    public init(key: String, size: Int64, etag: String) {
        self.key = key
        self.size = size
        self.etag = etag
    }

    /// True when the ETag has the form of a content MD5 (32 hex digits, no `-N` part count).
    public var hasMD5ETag: Bool { Self.isMD5ETag(etag) }

    static func isMD5ETag(_ etag: String) -> Bool {
        etag.utf8.count == 32 && etag.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) || (65...70).contains($0) }
    }
}

/// One page of a ListObjectsV2 response (`GET /?list-type=2`).
struct ListPage: Equatable {
    var objects: [S3Object] = []
    /// `<CommonPrefixes><Prefix>` values, when a delimiter was given.
    var commonPrefixes: [String] = []
    var isTruncated = false
    var nextContinuationToken: String?
}

/// S3's XML error document: `<Error><Code/><Message/>…</Error>`.
struct S3ErrorDocument: Equatable {
    var code: String?
    var message: String?
    /// `AuthorizationHeaderMalformed` and `PermanentRedirect` name the bucket's region here.
    var region: String?
    var endpoint: String?
}

/// A minimal element tree of an XML document, enough for S3's flat responses.
final class XMLElementNode {
    let name: String
    var text = ""
    var children: [XMLElementNode] = []
    init(name: String) { self.name = name }

    func child(_ name: String) -> XMLElementNode? { children.first { $0.name == name } }
    func children(_ name: String) -> [XMLElementNode] { children.filter { $0.name == name } }
    func value(_ name: String) -> String? { child(name)?.text }
}

/// Parses S3 response bodies with FoundationXML's `XMLParser`.
enum S3XML {
    /// The root element of `data`, or nil when it is not well-formed XML.
    /// - Complexity: O(document size); builds the whole tree (a ListObjectsV2 page is at most 1,000 entries).
    static func parse(_ data: Data) -> XMLElementNode? {
        let delegate = TreeBuilder()
        let parser = XMLParser(data: data)
        parser.delegate = delegate
        parser.shouldProcessNamespaces = false
        guard parser.parse() else { return nil }
        return delegate.root
    }

    /// - Throws: `S3Error.invalidResponse` when the body is not a `ListBucketResult` or a `Size` is not a number.
    static func listPage(_ data: Data, url: String) throws -> ListPage {
        guard let root = parse(data), root.name == "ListBucketResult" else {
            throw S3Error.invalidResponse(url: url, detail: "not a ListBucketResult document")
        }
        var page = ListPage()
        for entry in root.children("Contents") {
            guard let key = entry.value("Key"), let sizeText = entry.value("Size"), let size = Int64(sizeText) else {
                throw S3Error.invalidResponse(url: url, detail: "a Contents entry without Key or numeric Size")
            }
            page.objects.append(S3Object(key: key, size: size, etag: unquote(entry.value("ETag") ?? "")))
        }
        page.commonPrefixes = root.children("CommonPrefixes").compactMap { $0.value("Prefix") }
        page.isTruncated = root.value("IsTruncated")?.lowercased() == "true"
        page.nextContinuationToken = root.value("NextContinuationToken").flatMap { $0.isEmpty ? nil : $0 }
        return page
    }

    /// The error document in `data`, or nil when there is none (HEAD responses and some proxies send no body).
    static func errorDocument(_ data: Data) -> S3ErrorDocument? {
        guard !data.isEmpty, let root = parse(data), root.name == "Error" else { return nil }
        return S3ErrorDocument(code: root.value("Code"), message: root.value("Message"), region: root.value("Region"),
                               endpoint: root.value("Endpoint"))
    }

    /// `"abc"` → `abc` (S3 quotes ETags in headers and XML alike).
    static func unquote(_ etag: String) -> String {
        var value = etag.trimmingCharacters(in: .whitespaces)
        if value.hasPrefix("W/") { value.removeFirst(2) }
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
        return value
    }
}

/// Builds an `XMLElementNode` tree. Not `Sendable`: lives inside one `S3XML.parse` call.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    var root: XMLElementNode?
    private var stack: [XMLElementNode] = []

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        let node = XMLElementNode(name: elementName)
        if let parent = stack.last { parent.children.append(node) } else { root = node }
        stack.append(node)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        _ = stack.popLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        stack.last?.text += string
    }
}
