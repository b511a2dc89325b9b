import Foundation

/// Static AWS credentials. `description` shows the key id only.
public struct S3Credentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    /// Set for temporary credentials (`AWS_SESSION_TOKEN`, `aws_session_token`); sent as `x-amz-security-token`.
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public var description: String { "S3Credentials(\(accessKeyID), secret hidden\(sessionToken == nil ? "" : ", with session token"))" }
}

/// Where requests go and how they are signed: the result of `AWSConfiguration.resolve`.
public struct S3Settings: Sendable, Equatable {
    /// Nil: anonymous requests (no `Authorization` header), for public buckets.
    public var credentials: S3Credentials?
    /// The region requests are signed for (`us-east-1` when nothing names one).
    public var region: String
    /// A custom endpoint (MinIO, Ceph, moto, a VPC endpoint…), used path-style; nil: AWS's regional endpoint.
    public var endpoint: URL?
    /// Human-readable origin of the credentials, for messages: `environment`, `profile default (~/.aws/credentials)`,
    /// `anonymous (--no-sign-request)`.
    public var credentialSource: String

    public init(credentials: S3Credentials?, region: String, endpoint: URL? = nil, credentialSource: String) {
        self.credentials = credentials
        self.region = region
        self.endpoint = endpoint
        self.credentialSource = credentialSource
    }
}

/// Resolves credentials, region and endpoint the way the AWS CLI does, from command-line values, the environment and
/// the shared files (`~/.aws/credentials`, `~/.aws/config`).
///
/// Precedence, highest first:
/// - credentials: `--no-sign-request` (none) › `--profile P` (from the files) › `AWS_ACCESS_KEY_ID` +
///   `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`) › profile `AWS_PROFILE` or `default` from the files, where
///   the credentials file wins over the config file. No credentials is an error, never a silent anonymous fallback.
/// - region: `--region` › `AWS_REGION` › `AWS_DEFAULT_REGION` › the profile's `region` › `us-east-1`.
/// - endpoint: `--endpoint-url` › `AWS_ENDPOINT_URL_S3` › `AWS_ENDPOINT_URL` › the profile's `endpoint_url` › AWS.
/// - files: `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`), `AWS_CONFIG_FILE` (default `~/.aws/config`).
public enum AWSConfiguration {
    /// - Parameters:
    ///   - environment: the process environment (tests pass their own).
    ///   - homeDirectory: where `~/.aws` is.
    /// - Throws: `S3Error.noCredentials`, `.profileNotFound`, `.profileWithoutKeys`, `.invalidEndpoint`,
    ///   `.io` for a shared file that exists but cannot be read.
    public static func resolve(profile requestedProfile: String? = nil, region requestedRegion: String? = nil,
                               endpointURL requestedEndpoint: String? = nil, anonymous: Bool = false,
                               environment: [String: String] = ProcessInfo.processInfo.environment,
                               homeDirectory: String = NSHomeDirectory()) throws -> S3Settings {
        func env(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        let home = homeDirectory.hasSuffix("/") ? String(homeDirectory.dropLast()) : homeDirectory
        let credentialsPath = env("AWS_SHARED_CREDENTIALS_FILE").map { expandTilde($0, home: home) } ?? home + "/.aws/credentials"
        let configPath = env("AWS_CONFIG_FILE").map { expandTilde($0, home: home) } ?? home + "/.aws/config"
        let credentialsFile = try INIFile(contentsOf: credentialsPath)
        let configFile = try INIFile(contentsOf: configPath)

        let profileName = requestedProfile ?? env("AWS_PROFILE") ?? "default"
        let profileNamed = requestedProfile != nil || env("AWS_PROFILE") != nil
        // In the config file, profiles other than `default` are sections `[profile NAME]`.
        let configSection = configFile?.sections[profileName == "default" ? "default" : "profile " + profileName]
            ?? configFile?.sections[profileName]
        let credentialsSection = credentialsFile?.sections[profileName]

        var credentials: S3Credentials?
        var source = "anonymous (--no-sign-request)"
        if !anonymous {
            let fromEnvironment = env("AWS_ACCESS_KEY_ID").flatMap { id in
                env("AWS_SECRET_ACCESS_KEY").map { S3Credentials(accessKeyID: id, secretAccessKey: $0, sessionToken: env("AWS_SESSION_TOKEN")) }
            }
            if requestedProfile == nil, let fromEnvironment {
                credentials = fromEnvironment
                source = "environment (AWS_ACCESS_KEY_ID)"
            } else if let section = credentialsSection ?? configSection {
                let file = credentialsSection != nil ? credentialsPath : configPath
                guard let id = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] else {
                    throw S3Error.profileWithoutKeys(profile: profileName, file: file)
                }
                credentials = S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: section["aws_session_token"])
                source = "profile \(profileName) (\(file))"
            } else if profileNamed {
                throw S3Error.profileNotFound(profile: profileName, files: [credentialsPath, configPath])
            } else {
                throw S3Error.noCredentials(searched: ["AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                                                       "profile default in \(credentialsPath) and \(configPath)"])
            }
        }

        let region = requestedRegion.flatMap { $0.isEmpty ? nil : $0 } ?? env("AWS_REGION") ?? env("AWS_DEFAULT_REGION")
            ?? configSection?["region"] ?? "us-east-1"
        var endpoint: URL?
        if let text = requestedEndpoint.flatMap({ $0.isEmpty ? nil : $0 }) ?? env("AWS_ENDPOINT_URL_S3") ?? env("AWS_ENDPOINT_URL")
            ?? configSection?["endpoint_url"] {
            endpoint = try parseEndpoint(text)
        }
        return S3Settings(credentials: credentials, region: region, endpoint: endpoint, credentialSource: source)
    }

    /// Checks and normalises an endpoint URL: http or https, a host, no query; a trailing `/` and a port that is the
    /// scheme's default are dropped (HTTP clients leave a default port out of `Host`, and the signature covers it).
    /// - Throws: `S3Error.invalidEndpoint`.
    public static func parseEndpoint(_ text: String) throws -> URL {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https" else {
            throw S3Error.invalidEndpoint(text, reason: "expected http://HOST[:PORT] or https://HOST[:PORT]")
        }
        guard let host = components.host, !host.isEmpty else { throw S3Error.invalidEndpoint(text, reason: "no host") }
        guard components.query == nil, components.fragment == nil else {
            throw S3Error.invalidEndpoint(text, reason: "a query or fragment is not allowed")
        }
        var normalized = URLComponents()
        normalized.scheme = scheme
        normalized.host = host
        if let port = components.port, !(scheme == "http" && port == 80), !(scheme == "https" && port == 443) { normalized.port = port }
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        normalized.percentEncodedPath = path
        guard let url = normalized.url else { throw S3Error.invalidEndpoint(text, reason: "cannot be rebuilt as a URL") }
        return url
    }

    private static func expandTilde(_ path: String, home: String) -> String {
        path == "~" ? home : path.hasPrefix("~/") ? home + path.dropFirst() : path
    }
}

/// The AWS shared-file INI dialect: `[section]` headers, `key = value` lines, `#` and `;` comment lines. Indented
/// lines (nested settings such as `s3 =` blocks) are skipped. Keys are lower-cased; later duplicates win.
struct INIFile: Equatable {
    var sections: [String: [String: String]] = [:]

    init(text: String) {
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            if rawLine.first == " " || rawLine.first == "\t" { continue }
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard let close = line.firstIndex(of: "]") else { current = nil; continue }
                let name = line[line.index(after: line.startIndex)..<close].trimmingCharacters(in: .whitespaces)
                    .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                current = name
                if sections[name] == nil { sections[name] = [:] }
                continue
            }
            guard let current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if !key.isEmpty, !value.isEmpty { sections[current, default: [:]][key] = value }
        }
    }

    /// Nil when there is no file at `path`.
    /// - Throws: `S3Error.io` when the file exists but cannot be read.
    init?(contentsOf path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            self.init(text: try String(contentsOfFile: path, encoding: .utf8))
        } catch {
            throw S3Error.io(path: path, detail: "cannot read: \(error.localizedDescription)")
        }
    }
}
