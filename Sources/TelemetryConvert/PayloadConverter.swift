import TelemetryCore

/// A record the converter rejects: its category (`spec/payloads.md` §10.4) and the reason (§10.3 texts).
public struct PayloadRejection: Error, Equatable, Sendable, CustomStringConvertible {
    public var category: RecordCategory
    public var message: String
    public init(_ category: RecordCategory, _ message: String) {
        self.category = category
        self.message = message
    }
    public var description: String { "\(category.rawValue): \(message)" }
}

/// A converted payload (storage format: `ver` 2, or `version` 5) and the warnings met on the way.
public struct ConvertedPayload: Sendable {
    /// The converted document (always an object).
    public var payload: JSONObject
    /// The `info` fields as text, for the storage dimensions (`spec/storage.md` §2.1).
    public var info: [String: String]
    /// Histogram names dropped because the revision does not define them (warning `unknown_histogram`).
    public var unknownHistograms: [String] = []
    /// Histogram names converted despite a declared layout that differs from the definition
    /// (warning `definition_mismatch`).
    public var mismatchedHistograms: [String] = []
}

/// Compacts a ping's raw `histograms` object against the definitions of `revision` (a revision URL).
/// Implemented over `RevisionCache` by `HistogramCompactor`; a closure here so tests can supply definitions.
public typealias HistogramsCompacting = @Sendable (_ histograms: JSONObject, _ revision: String) throws(PayloadRejection) -> (
    histograms: JSONObject, unknown: [String], mismatched: [String])

/// Converts payloads of every version to the storage format (`spec/payloads.md` §1–§8).
///
/// | input | output |
/// |---|---|
/// | `ver` 1 | histograms compacted, `ver` 2 |
/// | `ver` 2, `ver` 5, `version` 5 | unchanged |
/// | `ver` 3 (FirefoxOS ftu) | `info` synthesised, `pingID` removed, `ver` 2 |
/// | `version` 4 | `info` from `application`, `version` 5; main/saved-session histograms compacted; saved-session flattened, `ver` 5 |
public struct PayloadConverter: Sendable {
    public let compact: HistogramsCompacting

    public init(compact: @escaping HistogramsCompacting) { self.compact = compact }

    /// A converter without histogram definitions: every ping with histograms is rejected as `unknown_revision`
    /// (§10.3 text, then why). The importer's fallback when it is given no converter.
    public static let withoutDefinitions = PayloadConverter(compact: { _, revision throws(PayloadRejection) in
        throw PayloadRejection(.unknownRevision, "Failed to fetch histograms for URL: \(revision) (no histogram definitions given)")
    })

    /// Converts `document`.
    /// - Parameter ip: the record's client IP (v2 raw logs), used only for FirefoxOS pings (`geoCountry` "??", §7).
    /// - Throws: `PayloadRejection` with the category and §10.3 message.
    public func convert(_ document: JSONValue, ip: String? = nil) throws(PayloadRejection) -> ConvertedPayload {
        guard case var .object(payload) = document else {
            throw PayloadRejection(.conversionError, "Payload is not a JSON object")
        }
        var unknown: [String] = []
        var mismatched: [String] = []
        if let ver = payload["ver"] {
            switch ver.integerValue {
            case 1:
                try convertClassicHistograms(&payload, unknown: &unknown, mismatched: &mismatched)
                payload["ver"] = .int(2)
            case 2, 5:
                break
            case 3:
                payload = Self.convertFirefoxOS(payload)
            default:
                throw PayloadRejection(.conversionError, "Unknown payload version: \(Self.text(ver))")
            }
        } else if let version = payload["version"] {
            try convertUnified(&payload, version: version, unknown: &unknown, mismatched: &mismatched)
        } else {
            throw PayloadRejection(.conversionError, "Missing payload version")
        }
        if let ip, payload["info"]?["appName"]?.stringValue == "FirefoxOS", var info = payload["info"]?.objectValue {
            // No GeoIP database: the unknown-country marker for every FirefoxOS ping with an IP (§7).
            _ = ip
            info["geoCountry"] = .string("??")
            payload["info"] = .object(info)
        }
        var infoText: [String: String] = [:]
        for member in payload["info"]?.objectValue?.members ?? [] where infoText[member.key] == nil {
            if let text = Self.dimensionText(member.value) { infoText[member.key] = text }
        }
        return ConvertedPayload(payload: payload, info: infoText, unknownHistograms: unknown, mismatchedHistograms: mismatched)
    }

    /// Text of a scalar for a dimension (strings as they are, numbers and booleans as JSON text).
    static func dimensionText(_ value: JSONValue) -> String? {
        switch value {
        case let .string(s): s
        case .int, .double, .bool: value.minimalJSON
        default: nil
        }
    }

    static func text(_ value: JSONValue) -> String {
        if case let .string(s) = value { return s }
        return value.minimalJSON
    }

    /// §2 rules 1–4 on a classic payload (or the `payload` of a unified main / saved-session ping).
    private func convertClassicHistograms(_ container: inout JSONObject, unknown: inout [String], mismatched: inout [String]) throws(PayloadRejection) {
        guard let info = container["info"], case let .object(infoObject) = info else {
            throw PayloadRejection(.conversionError, "Missing in payload: info")
        }
        let revision = infoObject["revision"]
        let histograms = container["histograms"]
        guard let revision, !revision.isNull else {
            if histograms != nil { throw PayloadRejection(.missingRevision, "Missing in payload: info.revision") }
            return
        }
        guard let histograms, case let .object(histogramObject) = histograms else {
            throw PayloadRejection(.conversionError, "Missing in payload: histograms")
        }
        let revisionText = Self.text(revision)
        let result = try compact(histogramObject, revisionText)
        container["histograms"] = .object(result.histograms)
        unknown += result.unknown
        mismatched += result.mismatched
    }

    /// §4: FirefoxOS 1.3 first-time-use ping.
    static func convertFirefoxOS(_ input: JSONObject) -> JSONObject {
        var payload = input
        func field(_ key: String) -> JSONValue { payload[key].flatMap { $0.isNull ? nil : $0 } ?? .string("UNKNOWN") }
        let info = JSONObject([
            JSONMember(key: "reason", value: .string("ftu")),
            JSONMember(key: "appUpdateChannel", value: field("deviceinfo.update_channel")),
            JSONMember(key: "appBuildID", value: field("deviceinfo.platform_build_id")),
            JSONMember(key: "appName", value: .string("FirefoxOS")),
            JSONMember(key: "appVersion", value: field("deviceinfo.platform_version")),
        ])
        payload["info"] = .object(info)
        payload["pingID"] = nil
        payload["ver"] = .int(2)
        return payload
    }

    /// §6.1: `application.*` → `info.*`.
    static let applicationMap: [(info: String, application: String)] = [
        ("appName", "name"), ("appUpdateChannel", "channel"), ("appVersion", "version"), ("appBuildID", "buildId"),
        ("arch", "architecture"), ("platformVersion", "platformVersion"), ("xpcomAbi", "xpcomAbi"), ("vendor", "vendor"),
    ]

    /// §6.2 step 2: `environment.*` paths → `info.*`.
    static let environmentMap: [(info: String, path: [String])] = [
        ("appID", ["build", "applicationId"]), ("platformBuildID", ["build", "buildId"]),
        ("cpucount", ["system", "cpu", "count"]), ("memsize", ["system", "memoryMB"]), ("isWow64", ["system", "isWow64"]),
        ("device", ["system", "device", "model"]), ("manufacturer", ["system", "device", "manufacturer"]),
        ("hardware", ["system", "device", "hardware"]), ("tablet", ["system", "device", "isTablet"]),
        ("locale", ["settings", "locale"]), ("OS", ["system", "os", "name"]), ("version", ["system", "os", "version"]),
        ("kernel_version", ["system", "os", "kernelVersion"]), ("D2DEnabled", ["system", "gfx", "D2DEnabled"]),
        ("DWriteEnabled", ["system", "gfx", "DWriteEnabled"]), ("DWriteVersion", ["system", "gfx", "DWriteVersion"]),
        ("profileHDDModel", ["system", "hdd", "profile", "model"]), ("profileHDDRevision", ["system", "hdd", "profile", "revision"]),
        ("binHDDModel", ["system", "hdd", "binary", "model"]), ("binHDDRevision", ["system", "hdd", "binary", "revision"]),
        ("winHDDModel", ["system", "hdd", "system", "model"]), ("winHDDRevision", ["system", "hdd", "system", "revision"]),
        ("activeExperiment", ["addons", "activeExperiment", "id"]),
        ("activeExperimentBranch", ["addons", "activeExperiment", "branch"]), ("persona", ["addons", "theme", "id"]),
    ]

    /// §6.2: graphics adapter fields.
    static let adapterMap: [(info: String, adapter: String)] = [
        ("adapterDescription", "description"), ("adapterVendorID", "vendorID"), ("adapterDeviceID", "deviceID"),
        ("adapterSubsysID", "subsysID"), ("adapterRAM", "RAM"), ("adapterDriver", "driver"),
        ("adapterDriverVersion", "driverVersion"), ("adapterDriverDate", "driverDate"),
    ]

    /// §6: unified pings.
    private func convertUnified(_ ping: inout JSONObject, version: JSONValue, unknown: inout [String], mismatched: inout [String]) throws(PayloadRejection) {
        let number = version.integerValue
        guard number == 4 || number == 5 else {
            throw PayloadRejection(.conversionError, "Unknown unified ping version: \(Self.text(version))")
        }
        guard let type = ping["type"]?.stringValue, !type.isEmpty else {
            throw PayloadRejection(.conversionError, "Unified ping has no top-level 'type' field")
        }
        guard let application = ping["application"] else {
            throw PayloadRejection(.conversionError, "Unified ping has no top-level 'application' field")
        }
        guard ping["payload"] != nil else {
            throw PayloadRejection(.conversionError, "Unified ping has no top-level 'payload' field")
        }
        if number == 5 { return }
        if ping.contains("info") { throw PayloadRejection(.conversionError, "Raw unified ping has an existing ping.info field") }

        var info = JSONObject()
        for (infoKey, applicationKey) in Self.applicationMap {
            if let value = application[applicationKey], !value.isNull { info[infoKey] = value }
        }
        info["reason"] = .string(type)
        ping["info"] = .object(info)
        ping["version"] = .int(5)

        guard type == "main" || type == "saved-session" else { return }
        guard var payload = ping["payload"]?.objectValue else {
            throw PayloadRejection(.conversionError, "Unified \(type) missing payload.info")
        }
        guard payload["info"] != nil else { throw PayloadRejection(.conversionError, "Unified \(type) missing payload.info") }
        guard payload["histograms"] != nil else { throw PayloadRejection(.conversionError, "Unified \(type) missing payload.histograms") }
        try convertClassicHistograms(&payload, unknown: &unknown, mismatched: &mismatched)
        ping["payload"] = .object(payload)

        if type == "saved-session" {
            guard ping["environment"] != nil else {
                throw PayloadRejection(.conversionError, "Unified saved-session ping missing 'environment' field")
            }
            Self.flattenSavedSession(&ping)
        }
    }

    /// §6.2: hoists `payload.*` to the top level and rebuilds classic `info` fields from `environment`.
    static func flattenSavedSession(_ ping: inout JSONObject) {
        let payload = ping["payload"]?.objectValue ?? JSONObject()
        var info = ping["info"]?.objectValue ?? JSONObject()
        for member in payload.members where member.key != "info" && member.key != "ver" {
            if ping.contains(member.key) { ping["payload." + member.key] = member.value } else { ping[member.key] = member.value }
        }
        for member in payload["info"]?.objectValue?.members ?? [] where !info.contains(member.key) {
            info[member.key] = member.value
        }
        if let ver = payload["ver"] { ping["payload.ver"] = ver }
        ping["payload"] = nil

        let environment = ping["environment"] ?? .null
        for (name, path) in environmentMap {
            var value: JSONValue? = environment
            for step in path {
                guard let current = value, case .object = current else { value = nil; break }
                value = current[step]
            }
            guard let found = value, !found.isNull else { continue }
            if info.contains(name) { info["environment." + name] = found } else { info[name] = found }
        }
        if let os = info["OS"]?.stringValue, os.hasPrefix("Windows_") { info["OS"] = .string("WINNT") }
        if let adapters = environment["system"]?["gfx"]?["adapters"]?.arrayValue, let first = adapters.first {
            for (infoKey, adapterKey) in adapterMap { if let v = first[adapterKey] { info[infoKey] = v } }
            if adapters.count > 1 {
                let second = adapters[1]
                for (infoKey, adapterKey) in adapterMap { if let v = second[adapterKey] { info[infoKey + "2"] = v } }
                info["isGPU2Active"] = .bool(truthy(second["GPUActive"]))
            }
        }
        ping["info"] = .object(info)
        ping["clientID"] = ping["clientId"] ?? .null
        ping["ver"] = .int(5)
    }

    /// Python truthiness of a JSON value.
    static func truthy(_ value: JSONValue?) -> Bool {
        switch value {
        case nil, .null?: false
        case let .bool(b)?: b
        case let .int(i)?: i != 0
        case let .double(d)?: d != 0
        case let .string(s)?: !s.isEmpty
        case let .array(a)?: !a.isEmpty
        case let .object(o)?: !o.isEmpty
        }
    }
}
