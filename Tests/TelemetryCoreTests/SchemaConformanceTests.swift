import Foundation
import Testing
import TelemetryCore
import TelemetryTestSupport

/// One case of `../shared/conformance/schema.json` (format `telemetry-conformance/1`, see its README).
struct SchemaVector: Sendable, Decodable, Identifiable, CustomTestStringConvertible {
    let id: String
    let op: String
    let description: String
    let optional: Bool?
    let input: JSONValue
    let expected: JSONValue

    var testDescription: String { id }
    var isOptional: Bool { optional ?? false }
}

/// Runs every required case of `conformance/schema.json` against the `TelemetryCore` API.
///
/// Left out (optional in the file, README "Operations"):
/// - `dimension_path`: the C++ worker's `a/b/c.d` path with lower-case `other`; the product behaviour it stands for
///   (the storage-layout path of a record, `OTHER`, UTC date) is what `get_filename` and `get_current_file` check.
/// - `fetch_list`: the S3 import's download from a mirror, which belongs to the S3-import issue.
struct SchemaConformanceTests {
    static let file = "conformance/schema.json"

    /// Ops this runner maps to the API.
    static let requiredOps: Set<String> = [
        "safe_filename", "sanitize_allowed_values", "get_allowed_value", "is_allowed", "apply_schema",
        "get_current_file", "get_filename", "dimensions_from", "get_field", "get_dimensions", "filter_files",
        "load_schema",
    ]
    /// Optional ops deliberately not run (see the type's comment).
    static let optionalOpsLeftOut: Set<String> = ["dimension_path", "fetch_list"]

    private struct File: Decodable {
        let format: String
        let cases: [SchemaVector]
    }

    static func allVectors() throws -> [SchemaVector] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.sharedPath(file)))
        let parsed = try JSONDecoder().decode(File.self, from: data)
        return parsed.cases
    }

    /// Every case that is not optional, whatever its op: an op this runner does not know fails in `runsCase`.
    static func requiredVectors() throws -> [SchemaVector] { try allVectors().filter { !$0.isOptional } }

    /// A named inline schema of `fixtures.schemas`, parsed by the product's own reader.
    static func fixtureSchema(_ name: String) throws -> DimensionSchema {
        let root = try #require(try Fixtures.sharedJSON(file) as? [String: Any])
        let schemas = try #require((root["fixtures"] as? [String: Any])?["schemas"] as? [String: Any])
        let schema = try #require(schemas[name], "fixtures.schemas has no '\(name)'")
        let data = try JSONSerialization.data(withJSONObject: schema)
        return try DimensionSchema(json: data, source: "\(file) fixtures.schemas.\(name)")
    }

    @Test func fileHasTheExpectedShapeAndOnlyKnownOps() throws {
        let root = try #require(try Fixtures.sharedJSON(Self.file) as? [String: Any])
        #expect(root["format"] as? String == "telemetry-conformance/1")
        let vectors = try Self.allVectors()
        // Every op of the issue's list has at least one required case.
        #expect(Set(vectors.filter { !$0.isOptional }.map(\.op)) == Self.requiredOps)
        #expect(Set(vectors.map(\.id)).count == vectors.count, "ids must be unique")
        for vector in vectors {
            if vector.isOptional {
                #expect(Self.optionalOpsLeftOut.contains(vector.op) || Self.requiredOps.contains(vector.op),
                        "optional case \(vector.id) has an op this runner does not know: \(vector.op)")
            } else {
                #expect(Self.requiredOps.contains(vector.op), "case \(vector.id) has an op this runner does not know: \(vector.op)")
            }
        }
        // The optional cases left out, by id, so a change in the file shows up here.
        #expect(vectors.filter(\.isOptional).map(\.id).sorted() == ["schema-fetch-list-local-mirror", "schema-worker-dimension-path"])
    }

    @Test(arguments: try SchemaConformanceTests.requiredVectors())
    func runsCase(_ vector: SchemaVector) throws {
        var checker = ExpectationChecker(vector: vector)
        let input = vector.input
        switch vector.op {
        case "safe_filename":
            let value = try input.required("value", \.string)
            checker.result(.string(StorageLayout.safeFilename(value)))

        case "sanitize_allowed_values":
            let schema = try Self.fixtureSchema(try input.required("schema", \.string))
            let sanitized = schema.dimensions.map(\.allowedValues.sanitizedForFilter)
            let expected = try #require(vector.expected["result"]?.array).map { allowedValues(fromJSON: $0) }
            #expect(sanitized.map(Optional.some) == expected)
            #expect(schema.asFilter.dimensions.map(\.allowedValues) == sanitized)
            checker.checked("result")

        case "get_allowed_value":
            let allowed = try input.required("allowed_values") { allowedValues(fromJSON: $0) }
            let schema = DimensionSchema(dimensions: [Dimension(fieldName: "field", allowedValues: allowed)])
            checker.result(.string(schema.allowedValue(try input.required("value", \.string), at: 0)))

        case "is_allowed":
            let allowed = try input.required("allowed_values") { allowedValues(fromJSON: $0) }
            checker.result(.bool(allowed.allows(try input.required("value", \.string), as: .text)))

        case "apply_schema":
            let schema = try Self.fixtureSchema(try input.required("schema", \.string))
            checker.result(strings(schema.apply(try input.required("dimensions", \.strings))))

        case "get_current_file":
            let path = StorageLayout.currentFile(
                base: try input.required("basedir", \.string), dimensions: try input.required("dimensions", \.strings),
                submissionDate: try input.required("submission_date", \.string), version: try input.required("version", \.int))
            checker.result(.string(path))

        case "get_filename":
            let schema = try Self.fixtureSchema(try input.required("schema", \.string))
            let path = StorageLayout.filename(schema: schema, base: try input.required("basedir", \.string),
                                              dimensions: try input.required("dimensions", \.strings),
                                              version: try input.required("version", \.int))
            checker.result(.string(path))

        case "dimensions_from":
            let schema = try Self.fixtureSchema(try input.required("schema", \.string))
            let info = try input.required("info", \.stringMap)
            let values = schema.dimensions(fromInfo: info, submissionDate: try input.required("submission_date", \.string))
            checker.result(strings(values))

        case "get_field":
            let schema = try Self.fixtureSchema(try input.required("schema", \.string))
            let outcome = Result {
                try schema.fields(try input.required("fields", \.strings), in: try input.required("dimensions", \.strings),
                                  limitToAllowed: input["limit_to_allowed"]?.bool ?? false,
                                  sanitize: input["sanitize"]?.bool ?? false)
            }
            checker.outcome(outcome.map { .object($0.mapValues(JSONValue.string)) })

        case "get_dimensions":
            let outcome = Result {
                try StorageLayout.dimensions(ofFile: try input.required("path", \.string), base: try input.required("basedir", \.string),
                                             dirsOnly: input["dirs_only"]?.bool ?? false)
            }
            checker.outcome(outcome.map(strings))

        case "filter_files":
            let schema = try Self.fixtureSchema(try input.required("schema", \.string))
            let files = try input.required("files", \.strings)
            let selection = StorageLayout.filterFiles(files, base: try input.required("basedir", \.string), filter: schema)
            #expect(selection.included.count + selection.excluded.count == files.count, "every path is included or excluded")
            checker.value("included", strings(selection.included))
            checker.value("excluded", strings(selection.excluded))
            checker.value("errors", strings(selection.errors))
            checker.value("excluded_count", .number(Double(selection.excluded.count)))
            checker.value("included_count", .number(Double(selection.included.count)))

        case "load_schema":
            let path = Fixtures.sharedPath(try input.required("schema_file", \.string))
            let outcome = Result { try DimensionSchema(contentsOf: path) }
            if case let .failure(error) = outcome {
                checker.error(error)
            } else if case let .success(schema) = outcome {
                checker.value("field_names", strings(schema.fieldNames))
                checker.value("version", .number(Double(schema.version)))
                checker.unexpectedSuccess()
            }

        default:
            Issue.record("case \(vector.id): op '\(vector.op)' is not mapped to the TelemetryCore API")
            return
        }
        checker.finish()
    }
}

/// Evaluates each key of a case's `expected` as its own assertion and fails on keys nobody checked.
struct ExpectationChecker {
    let vector: SchemaVector
    private var checkedKeys: Set<String> = []

    init(vector: SchemaVector) { self.vector = vector }

    mutating func checked(_ key: String) { checkedKeys.insert(key) }

    /// `expected.result` against an actual value (compared as JSON).
    mutating func result(_ actual: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(vector.expected["error"] == nil, "\(vector.id): expected an error, got \(actual)", sourceLocation: sourceLocation)
        value("result", actual, sourceLocation: sourceLocation)
    }

    /// A named expectation, checked only when the case states it.
    mutating func value(_ key: String, _ actual: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let expected = vector.expected[key] else { return }
        checkedKeys.insert(key)
        #expect(actual == expected, "\(vector.id): \(key)", sourceLocation: sourceLocation)
    }

    /// A result that may be an error.
    mutating func outcome(_ outcome: Result<JSONValue, any Error>, sourceLocation: SourceLocation = #_sourceLocation) {
        switch outcome {
        case let .success(actual): result(actual, sourceLocation: sourceLocation)
        case let .failure(error): self.error(error, sourceLocation: sourceLocation)
        }
    }

    /// A thrown error against `expected.error` (category) and any message expectation.
    mutating func error(_ error: any Error, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let category = vector.expected["error"]?.string else {
            Issue.record("\(vector.id): unexpected error \(error)", sourceLocation: sourceLocation)
            return
        }
        checkedKeys.insert("error")
        #expect(Self.category(of: error) == category, "\(vector.id): \(error)", sourceLocation: sourceLocation)
        let text = "\(error)"
        if let message = vector.expected["message"]?.string {
            checkedKeys.insert("message")
            #expect(text.hasSuffix(message), "\(vector.id): message", sourceLocation: sourceLocation)
        }
        if let prefix = vector.expected["message_prefix"]?.string {
            checkedKeys.insert("message_prefix")
            #expect(text.contains(prefix), "\(vector.id): message_prefix", sourceLocation: sourceLocation)
        }
        if let part = vector.expected["message_contains"]?.string {
            checkedKeys.insert("message_contains")
            #expect(text.contains(part), "\(vector.id): message_contains", sourceLocation: sourceLocation)
        }
    }

    /// Called after a success: an expected error category is then a failure.
    func unexpectedSuccess(sourceLocation: SourceLocation = #_sourceLocation) {
        if let category = vector.expected["error"]?.string {
            Issue.record("\(vector.id): expected a \(category) error, the call succeeded", sourceLocation: sourceLocation)
        }
    }

    /// Every expected key must have been evaluated: a key this runner does not understand is a failure, never ignored.
    func finish(sourceLocation: SourceLocation = #_sourceLocation) {
        let unchecked = Set(vector.expected.keys).subtracting(checkedKeys)
        #expect(unchecked.isEmpty, "\(vector.id): expected keys not evaluated: \(unchecked.sorted())", sourceLocation: sourceLocation)
        #expect(!checkedKeys.isEmpty, "\(vector.id): nothing was checked", sourceLocation: sourceLocation)
    }

    /// The vectors' error category for a `CoreError` (conformance README, "Error categories").
    static func category(of error: any Error) -> String? {
        guard let error = error as? CoreError else { return nil }
        switch error {
        case .unknownDimension, .notUnderBase, .unparsableStoragePath, .invalidPath: return "invalid_argument"
        case .fileNotFound: return "not_found"
        case .schemaNotJSON: return "parse_error"
        case .invalidSchema: return "schema_error"
        case .unreadableFile, .io: return "io_error"
        }
    }
}

/// `allowed_values` as written in a schema document: `"*"`, a string, a list of strings, or `{min, max}`.
/// Independent of the product's parser so the vectors check it rather than echo it.
func allowedValues(fromJSON json: JSONValue) -> AllowedValues? {
    switch json {
    case .string("*"): return .any
    case let .string(s): return .exact(s)
    case let .array(items):
        let strings = items.compactMap(\.string)
        return strings.count == items.count ? .list(strings) : nil
    case let .object(object):
        func bound(_ key: String) -> AllowedValues.RangeBound? {
            switch object[key] {
            case let .string(s)?: .string(s)
            case let .number(n)?: .number(n)
            default: nil
            }
        }
        return .range(min: bound("min"), max: bound("max"))
    default: return nil
    }
}

func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }

/// A case whose `input` lacks an argument the op needs (a malformed vector, reported as a failure).
struct MissingInput: Error, CustomStringConvertible {
    let description: String
}

extension JSONValue {
    /// `input[key]` converted by `get`.
    /// - Throws: `MissingInput` when the key is absent or of the wrong type.
    func required<T>(_ key: String, _ get: (JSONValue) -> T?) throws -> T {
        guard let value = self[key].flatMap(get) else { throw MissingInput(description: "input.\(key) is missing or of the wrong type") }
        return value
    }
}
