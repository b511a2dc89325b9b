/// One raw histogram in storage form.
public struct CompactedHistogram: Sendable, Equatable {
    /// `.array` of `bucketCount + 5` elements: the counts (`.int`), then `sum`, `log_sum`, `log_sum_squares`,
    /// `sum_squares_lo`, `sum_squares_hi`, each copied as sent (integer or float) or `-1` when absent.
    public var storage: JSONValue
    /// The ping declared a layout that differs from the definition, or the definition could not be evaluated and
    /// the ping's inline parameters gave the bounds: a `definition_mismatch` warning.
    public var definitionMismatch: Bool
}

/// A ping's whole `histograms` object in storage form, with the warnings met (names in ping order, each once).
public struct HistogramsCompaction: Sendable, Equatable {
    /// Compacted histograms under their submitted names, in ping order; unknown names left out.
    public var histograms: JSONObject
    /// Names not defined in the revision (after the `STARTUP_` rule): warning `unknown_histogram`, dropped.
    public var unknownNames: [String]
    /// Names converted with a `definition_mismatch` warning.
    public var mismatchedNames: [String]
}

/// Compacts raw ping histograms (v1 `histograms`, v4 `payload.histograms`) into the storage format against one
/// revision's definitions (`spec/histograms.md` §4, `spec/payloads.md` §8, §10).
///
/// Rules, per histogram:
/// 1. The definition comes from `HistogramDefinitions.lookup` (`STARTUP_` rule); none → unknown, dropped.
/// 2. The definition decides the bounds. A declared `bucket_count`/`range`/`histogram_type` that differs is a
///    `definition_mismatch` warning as long as every key fits. An unevaluable definition uses the ping's inline
///    parameters (§3.3), with the same warning; without them → `conversion_error`
///    `Bad Histogram definition for revision <url>: Key: '<NAME>' <reason>`.
/// 3. Every `values` key must be the decimal text of a bucket lower bound and every count a non-negative JSON
///    integer, else `bad_payload` (hazards BR-17, BR-18, BR-21; never a silent zero histogram):
///    `Found invalid bucket NAME.values[key]: key is not an integer | key is not a bucket lower bound`,
///    `Found non-integer bucket value: NAME.values[key] = 'v'`,
///    `Found invalid bucket value: NAME.values[key] = -5: negative count`.
///    A bucket named twice (`"1"` and `"01"`, or a duplicate key) keeps its first count.
/// 4. No `values` object (or a histogram that is not an object) → `conversion_error`
///    `Bad Histogram key for revision <url>: 'values'`; `values` not an object → `bad_payload`.
///
/// - Isolation: a value type over immutable definitions; use from any thread.
public struct HistogramCompactor: Sendable {
    public let definitions: HistogramDefinitions
    /// The ping's revision URL, as written in messages.
    public let revisionURL: String

    public init(definitions: HistogramDefinitions, revisionURL: String) {
        self.definitions = definitions
        self.revisionURL = revisionURL
    }

    /// Number of summary fields after the buckets.
    public static let summaryFields = ["sum", "log_sum", "log_sum_squares", "sum_squares_lo", "sum_squares_hi"]

    /// Compacts one histogram submitted as `name`.
    /// - Returns: nil when `name` is not defined (warning `unknown_histogram`).
    /// - Throws: `PayloadRejection` (`bad_payload` or `conversion_error`, rules above).
    /// - Complexity: O(bucket count + keys × log bucket count); allocates the storage array.
    public func compact(name: String, histogram: JSONValue) throws(PayloadRejection) -> CompactedHistogram? {
        guard let entry = definitions.lookup(name) else { return nil }
        guard let raw = histogram.objectValue, let valuesField = raw["values"] else {
            throw PayloadRejection(.conversionError, "Bad Histogram key for revision \(revisionURL): 'values'")
        }
        let layout: HistogramDefinition
        let mismatch: Bool
        switch entry {
        case let .defined(definition):
            layout = definition
            mismatch = !definition.agrees(withDeclarationOf: raw)
        case let .unevaluable(reason):
            guard let inline = HistogramDefinition(inlineParametersOf: raw) else {
                throw PayloadRejection(.conversionError,
                                       "Bad Histogram definition for revision \(revisionURL): Key: '\(name)' \(reason)")
            }
            layout = inline
            mismatch = true
        }
        guard let values = valuesField.objectValue else {
            throw PayloadRejection(.badPayload, "Found invalid bucket \(name).values: not an object")
        }

        let bucketCount = layout.bucketCount
        var counts = [Int64](repeating: -1, count: bucketCount)   // -1: not named yet (negative counts are rejected)
        for member in values.members {
            let key = member.key
            guard let bound = Self.parseKey(key) else {
                let shown = Self.brief(key)
                throw PayloadRejection(.badPayload, "Found invalid bucket \(name).values[\(shown)]: \(shown) is not an integer")
            }
            guard let bucketIndex = bound.flatMap(layout.bucketIndex(ofLowerBound:)) else {
                let shown = Self.brief(key)
                throw PayloadRejection(.badPayload,
                                       "Found invalid bucket \(name).values[\(shown)]: \(shown) is not a bucket lower bound")
            }
            guard case let .int(count) = member.value else {
                let shown = Self.brief(member.value.stringValue ?? member.value.minimalJSON)
                throw PayloadRejection(.badPayload,
                                       "Found non-integer bucket value: \(name).values[\(Self.brief(key))] = '\(shown)'")
            }
            guard count >= 0 else {
                throw PayloadRejection(.badPayload,
                                       "Found invalid bucket value: \(name).values[\(Self.brief(key))] = \(count): negative count")
            }
            if counts[bucketIndex] < 0 { counts[bucketIndex] = count }
        }

        var storage: [JSONValue] = []
        storage.reserveCapacity(bucketCount + Self.summaryFields.count)
        for count in counts { storage.append(.int(Swift.max(count, 0))) }
        for field in Self.summaryFields { storage.append(raw[field] ?? .int(-1)) }
        return CompactedHistogram(storage: .array(storage), definitionMismatch: mismatch)
    }

    /// Compacts a whole `histograms` object: unknown names dropped, warnings collected, the first rejection
    /// rejects the payload. A name repeated in the object counts once (first occurrence).
    /// - Throws: `PayloadRejection` of the first histogram that fails.
    /// - Complexity: O(total buckets + total keys × log bucket count).
    public func compact(_ histograms: JSONObject) throws(PayloadRejection) -> HistogramsCompaction {
        var result = HistogramsCompaction(histograms: JSONObject(), unknownNames: [], mismatchedNames: [])
        result.histograms.members.reserveCapacity(histograms.members.count)
        var seen = Set<String>()
        seen.reserveCapacity(histograms.members.count)
        for member in histograms.members where seen.insert(member.key).inserted {
            guard let compacted = try compact(name: member.key, histogram: member.value) else {
                result.unknownNames.append(member.key)
                continue
            }
            result.histograms.members.append(JSONMember(key: member.key, value: compacted.storage))
            if compacted.definitionMismatch { result.mismatchedNames.append(member.key) }
        }
        return result
    }

    /// The `PayloadConverter` hook over a revision cache: looks the ping's revision up, then compacts.
    /// Revision failures become `missing_revision_repo` / `unknown_revision` rejections; an environment error of
    /// the cache (a broken cache file) is reported through `environmentFailure`, which should stop the run, and
    /// the record is rejected as `conversion_error` meanwhile.
    public static func compacting(with cache: RevisionCache,
                                  environmentFailure: @escaping @Sendable (HistogramError) -> Void = { _ in })
        -> HistogramsCompacting {
        { histograms, revision throws(PayloadRejection) in
            let definitions: HistogramDefinitions
            do {
                definitions = try cache.definitions(forRevisionURL: revision)
            } catch let rejection as PayloadRejection {
                throw rejection
            } catch {
                let failure = error as? HistogramError ?? .unreadableFile(path: revision, detail: "\(error)")
                environmentFailure(failure)
                throw PayloadRejection(.conversionError, failure.description)
            }
            let result = try HistogramCompactor(definitions: definitions, revisionURL: revision).compact(histograms)
            return (result.histograms, result.unknownNames, result.mismatchedNames)
        }
    }

    /// `-?[0-9]+` → the integer (nil inside when out of int64 range: an integer, but no bound); anything else
    /// (`foo`, `3.0e+257`, ` 1`, `+1`, empty) → nil.
    private static func parseKey(_ key: String) -> Int64?? {
        let utf8 = key.utf8
        guard let first = utf8.first else { return nil }
        let digits = first == UInt8(ascii: "-") ? utf8.dropFirst() : utf8[...]
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return .some(Int64(key))
    }

    /// Keys and values are shown in messages (the §10.3 texts name them) but cut to a sane length.
    private static func brief(_ text: String) -> String {
        text.count > 64 ? String(text.prefix(64)) + "…" : text
    }
}
