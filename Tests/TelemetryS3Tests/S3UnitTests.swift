import Foundation
import TelemetryCore
import TelemetryTestSupport
import Testing
@testable import TelemetryS3
#if canImport(Glibc)
import Glibc
#endif

/// Credentials, region and endpoint resolution (`AWSConfiguration`): environment, shared files, precedence.
struct S3ConfigurationTests {
    /// A home directory with optional `~/.aws/credentials` and `~/.aws/config`.
    static func home(credentials: String? = nil, config: String? = nil) throws -> TemporaryDirectory {
        let home = TemporaryDirectory("s3-home")
        if let credentials { try home.write(".aws/credentials", text: credentials) }
        if let config { try home.write(".aws/config", text: config) }
        return home
    }

    static let files = """
        [default]
        aws_access_key_id = AKIDDEFAULT
        aws_secret_access_key = secretDefault

        # comment
        [analyst]
        aws_access_key_id=AKIDANALYST
        aws_secret_access_key=secretAnalyst
        aws_session_token = tokenAnalyst
        """
    static let config = """
        [default]
        region = eu-central-1
        [profile analyst]
        region = us-west-2
        endpoint_url = http://127.0.0.1:9000/
        s3 =
          addressing_style = path
        [profile sso-only]
        sso_session = corp
        """

    @Test func environmentKeysWinOverTheDefaultProfile() throws {
        let home = try Self.home(credentials: Self.files, config: Self.config)
        let settings = try AWSConfiguration.resolve(environment: ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secretEnv",
                                                                  "AWS_SESSION_TOKEN": "tok", "AWS_REGION": "ap-south-1"],
                                                    homeDirectory: home.path)
        #expect(settings.credentials == S3Credentials(accessKeyID: "AKIDENV", secretAccessKey: "secretEnv", sessionToken: "tok"))
        #expect(settings.region == "ap-south-1")
        #expect(settings.endpoint == nil)
    }

    @Test func defaultProfileFromTheSharedFiles() throws {
        let home = try Self.home(credentials: Self.files, config: Self.config)
        let settings = try AWSConfiguration.resolve(environment: [:], homeDirectory: home.path)
        #expect(settings.credentials?.accessKeyID == "AKIDDEFAULT")
        #expect(settings.region == "eu-central-1")
    }

    @Test func namedProfileBeatsEnvironmentKeysAndReadsConfigSection() throws {
        let home = try Self.home(credentials: Self.files, config: Self.config)
        let env = ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secretEnv", "AWS_DEFAULT_REGION": "sa-east-1"]
        let settings = try AWSConfiguration.resolve(profile: "analyst", environment: env, homeDirectory: home.path)
        #expect(settings.credentials == S3Credentials(accessKeyID: "AKIDANALYST", secretAccessKey: "secretAnalyst", sessionToken: "tokenAnalyst"))
        #expect(settings.region == "sa-east-1")   // AWS_DEFAULT_REGION beats the profile's region
        #expect(settings.endpoint?.absoluteString == "http://127.0.0.1:9000")
        let viaEnvironment = try AWSConfiguration.resolve(environment: ["AWS_PROFILE": "analyst"], homeDirectory: home.path)
        #expect(viaEnvironment.credentials?.accessKeyID == "AKIDANALYST")
        #expect(viaEnvironment.region == "us-west-2")
    }

    @Test func filesNamedByEnvironmentVariables() throws {
        let dir = TemporaryDirectory("s3-files")
        let credentials = try dir.write("creds.ini", text: "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = s\n")
        let config = try dir.write("config.ini", text: "[default]\nregion = eu-north-1\n")
        let settings = try AWSConfiguration.resolve(region: "", environment: ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config],
                                                    homeDirectory: "/nonexistent")
        #expect(settings.credentials?.accessKeyID == "AKIDFILE")
        #expect(settings.region == "eu-north-1")
        let overridden = try AWSConfiguration.resolve(region: "us-east-2", endpointURL: "https://minio.local:443/",
                                                      environment: ["AWS_SHARED_CREDENTIALS_FILE": credentials], homeDirectory: "/nonexistent")
        #expect(overridden.region == "us-east-2")
        #expect(overridden.endpoint?.absoluteString == "https://minio.local")
    }

    @Test func missingCredentialsAreAClearError() throws {
        let home = try Self.home()
        #expect(throws: S3Error.noCredentials(searched: ["AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
                                                         "profile default in \(home.path)/.aws/credentials and \(home.path)/.aws/config"])) {
            try AWSConfiguration.resolve(environment: [:], homeDirectory: home.path)
        }
        let error = S3Error.noCredentials(searched: ["x"])
        #expect("\(error)".contains("--no-sign-request"))
        // Anonymous access is asked for explicitly; then no credentials is fine.
        let anonymous = try AWSConfiguration.resolve(anonymous: true, environment: [:], homeDirectory: home.path)
        #expect(anonymous.credentials == nil)
    }

    @Test func unknownOrKeylessProfilesAreErrors() throws {
        let home = try Self.home(credentials: Self.files, config: Self.config)
        #expect(throws: S3Error.profileNotFound(profile: "nope", files: ["\(home.path)/.aws/credentials", "\(home.path)/.aws/config"])) {
            try AWSConfiguration.resolve(environment: ["AWS_PROFILE": "nope"], homeDirectory: home.path)
        }
        #expect(throws: S3Error.profileWithoutKeys(profile: "sso-only", file: "\(home.path)/.aws/config")) {
            try AWSConfiguration.resolve(profile: "sso-only", environment: [:], homeDirectory: home.path)
        }
    }

    @Test(arguments: ["ftp://x", "http://", "not a url", "http://h?x=1"])
    func badEndpointsAreRejected(_ text: String) {
        #expect(throws: S3Error.self) { try AWSConfiguration.parseEndpoint(text) }
    }

    @Test func s3URLsParse() throws {
        #expect(try S3Location(url: "s3://bucket") == S3Location(bucket: "bucket", prefix: ""))
        #expect(try S3Location(url: "S3://bucket/") == S3Location(bucket: "bucket", prefix: ""))
        #expect(try S3Location(url: "s3://bucket/a/b").prefix == "a/b/")
        #expect(try S3Location(url: "s3://bucket//a/b/").prefix == "a/b/")
        #expect(throws: S3Error.self) { try S3Location(url: "s3:///prefix") }
        #expect(throws: S3Error.self) { try S3Location(url: "s3://bad bucket/x") }
        #expect(throws: S3Error.self) { try S3Location(url: "/local/path") }
        #expect(S3Location.isS3URL("s3://b") && !S3Location.isS3URL("datasets/sample"))
    }

    @Test func cachePathsMirrorKeys() {
        let cache = S3Cache(root: "/tmp/c/")
        #expect(cache.path(bucket: "b", key: "p/x/y.log") == "/tmp/c/b/p/x/y.log")
        #expect(cache.layoutRoot(for: S3Location(bucket: "b", prefix: "p/")) == "/tmp/c/b/p")
        #expect(cache.layoutRoot(for: S3Location(bucket: "b", prefix: "")) == "/tmp/c/b")
        #expect(S3Cache.metaPath(of: "/tmp/c/b/x.xz") == "/tmp/c/b/.x.xz.s3meta")
        #expect(S3Cache.partialPath(of: "/tmp/c/b/x.xz") == "/tmp/c/b/x.xz.partial")
        #expect(S3Cache.defaultRoot(environment: [:], homeDirectory: "/home/u") == "/home/u/.cache/telemetry/s3")
        #expect(S3Cache.defaultRoot(environment: ["XDG_CACHE_HOME": "/xdg"], homeDirectory: "/home/u") == "/xdg/telemetry/s3")
    }

    @Test func retryDelaysGrowAndStayCapped() {
        let policy = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(100), maxDelay: .seconds(1))
        for attempt in 0..<10 {
            let delay = policy.delay(beforeRetry: attempt)
            let cap = min(Duration.milliseconds(100) * (1 << attempt), .seconds(1))
            #expect(delay <= cap && delay >= cap / 2, "attempt \(attempt): \(delay)")
        }
    }
}

/// S3 response documents and the errors they mean.
struct S3ResponseTests {
    @Test func parsesAListObjectsV2Page() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount>
            <MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
            <Contents><Key>p/a &amp; b.log</Key><LastModified>2013-09-17T18:07:53.000Z</LastModified><ETag>&quot;599bab3ed2c697f1d26842727561fd94&quot;</ETag><Size>857</Size><StorageClass>STANDARD</StorageClass></Contents>
            <Contents><Key>p/big</Key><ETag>"3858f62230ac3c915f300c664312c11f-9"</ETag><Size>99000000000</Size></Contents>
            <CommonPrefixes><Prefix>p/saved_session/</Prefix></CommonPrefixes>
            </ListBucketResult>
            """
        let page = try S3XML.listPage(Data(xml.utf8), url: "test")
        #expect(page.objects == [S3Object(key: "p/a & b.log", size: 857, etag: "599bab3ed2c697f1d26842727561fd94"),
                                 S3Object(key: "p/big", size: 99_000_000_000, etag: "3858f62230ac3c915f300c664312c11f-9")])
        #expect(page.objects[0].hasMD5ETag && !page.objects[1].hasMD5ETag)
        #expect(page.isTruncated)
        #expect(page.nextContinuationToken == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        #expect(page.commonPrefixes == ["p/saved_session/"])
        #expect(throws: S3Error.self) { try S3XML.listPage(Data("<Error/>".utf8), url: "test") }
        #expect(throws: S3Error.self) { try S3XML.listPage(Data("not xml".utf8), url: "test") }
    }

    static func classify(_ status: Int, _ body: String, headers: [String: String] = [:], key: String? = nil) -> S3Error {
        S3Client.classify(status: status, headers: headers, body: Data(body.utf8), bucket: "bkt", key: key, url: "u",
                          region: "us-east-1", endpoint: "E")
    }

    @Test func wrongRegionNamesTheRightOne() {
        // Signed for us-east-1, bucket in eu-west-1: S3 answers 400 AuthorizationHeaderMalformed naming the region.
        let malformed = """
            <Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'us-east-1' \
            is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region><RequestId>X</RequestId></Error>
            """
        #expect(Self.classify(400, malformed) == .wrongRegion(bucket: "bkt", requested: "us-east-1", actual: "eu-west-1"))
        // Or a 301 PermanentRedirect, with the region in a header and the endpoint in the body.
        let redirect = "<Error><Code>PermanentRedirect</Code><Message>…</Message><Endpoint>bkt.s3.eu-west-1.amazonaws.com</Endpoint></Error>"
        #expect(Self.classify(301, redirect, headers: ["x-amz-bucket-region": "ap-northeast-1"])
            == .wrongRegion(bucket: "bkt", requested: "us-east-1", actual: "ap-northeast-1"))
        #expect(Self.classify(301, redirect) == .wrongRegion(bucket: "bkt", requested: "us-east-1", actual: "eu-west-1"))
        #expect(Self.classify(301, "") == .wrongRegion(bucket: "bkt", requested: "us-east-1", actual: nil))
        #expect("\(S3Error.wrongRegion(bucket: "bkt", requested: "us-east-1", actual: "eu-west-1"))".contains("--region eu-west-1"))
        #expect(S3Client.region(fromEndpoint: "s3-us-west-2.amazonaws.com") == "us-west-2")
    }

    @Test func mapsS3ErrorCodes() {
        func doc(_ code: String) -> String { "<Error><Code>\(code)</Code><Message>m</Message></Error>" }
        #expect(Self.classify(404, doc("NoSuchBucket")) == .noSuchBucket(bucket: "bkt", endpoint: "E"))
        #expect(Self.classify(404, doc("NoSuchKey"), key: "k") == .noSuchKey(bucket: "bkt", key: "k"))
        #expect(Self.classify(404, "", key: "k") == .noSuchKey(bucket: "bkt", key: "k"))
        #expect(Self.classify(403, doc("AccessDenied")) == .accessDenied(bucket: "bkt", key: nil, message: "AccessDenied: m"))
        #expect(Self.classify(403, "") == .accessDenied(bucket: "bkt", key: nil, message: "HTTP 403 without an error document"))
        #expect(Self.classify(403, doc("InvalidAccessKeyId")) == .credentialsRejected(code: "InvalidAccessKeyId", message: "m", endpoint: "E"))
        #expect(Self.classify(403, doc("SignatureDoesNotMatch")) == .credentialsRejected(code: "SignatureDoesNotMatch", message: "m", endpoint: "E"))
        #expect(Self.classify(400, doc("ExpiredToken")) == .credentialsRejected(code: "ExpiredToken", message: "m", endpoint: "E"))
        #expect(Self.classify(503, doc("SlowDown")).isRetryable)
        #expect(Self.classify(500, "").isRetryable)
        #expect(!Self.classify(400, doc("InvalidArgument")).isRetryable)
    }

    @Test func unreachableEndpointIsAClearErrorAfterRetries() async throws {
        // A port nothing listens on: bind an ephemeral port, then close it.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        close(fd)

        let settings = S3Settings(credentials: S3Credentials(accessKeyID: "a", secretAccessKey: "b"), region: "us-east-1",
                                  endpoint: URL(string: "http://127.0.0.1:\(port)"), credentialSource: "test")
        let client = S3Client(settings: settings, retry: RetryPolicy(maxAttempts: 2, baseDelay: .milliseconds(20)), requestTimeout: 10)
        defer { client.shutdown() }
        await #expect(throws: S3Error.endpointUnreachable(endpoint: "http://127.0.0.1:\(port)", detail: "connection refused or no route to host")) {
            _ = try await client.listObjects(bucket: "b", prefix: "")
        }
    }
}

/// S3's "wrong region" answers through the real HTTP stack (redirects are not followed; the body is read), from a
/// small Python HTTP server on 127.0.0.1 that answers every GET like S3 does for a bucket in another region.
struct S3WrongRegionTests {
    static let server = """
        import http.server, sys, threading
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/malformed"):
                    body = (b"<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'us-east-1' is wrong; "
                            b"expecting 'eu-west-1'</Message><Region>eu-west-1</Region></Error>")
                    self.send_response(400)
                else:
                    body = (b"<Error><Code>PermanentRedirect</Code><Message>use the specified endpoint</Message>"
                            b"<Endpoint>b.s3.ap-southeast-2.amazonaws.com</Endpoint></Error>")
                    self.send_response(301)
                    self.send_header("x-amz-bucket-region", "ap-southeast-2")
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        with open(sys.argv[1] + ".tmp", "w") as f:
            f.write(str(server.server_address[1]))
        import os
        os.replace(sys.argv[1] + ".tmp", sys.argv[1])
        threading.Timer(float(sys.argv[2]), server.shutdown).start()
        server.serve_forever()
        """

    @Test func wrongRegionAnswersNameTheBucketsRegion() async throws {
        let work = TemporaryDirectory("s3-region")
        let script = try work.write("server.py", text: Self.server)
        let portFile = work.file("port")
        let child = try ChildProcess("/usr/bin/env", ["python3", script, portFile, "900"], stderr: work.file("stderr"))
        defer { child.send(SIGTERM); child.wait() }
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: portFile) && Date() < deadline && child.isRunning { usleep(50_000) }
        let port = try #require(Int(try String(contentsOfFile: portFile, encoding: .utf8)), "the test server did not start")
        let settings = S3Settings(credentials: S3Credentials(accessKeyID: "a", secretAccessKey: "b"), region: "us-east-1",
                                  endpoint: URL(string: "http://127.0.0.1:\(port)"), credentialSource: "test")
        let client = S3Client(settings: settings, retry: RetryPolicy(maxAttempts: 1))
        defer { client.shutdown() }
        await #expect(throws: S3Error.wrongRegion(bucket: "moved", requested: "us-east-1", actual: "ap-southeast-2")) {
            _ = try await client.listObjects(bucket: "moved", prefix: "")
        }
        await #expect(throws: S3Error.wrongRegion(bucket: "malformed", requested: "us-east-1", actual: "eu-west-1")) {
            _ = try await client.listObjects(bucket: "malformed", prefix: "")
        }
    }
}

/// Which keys a filter selects (`spec/storage.md` §3.1, §4), without a server.
struct S3KeySelectionTests {
    static let filter = DimensionSchema(version: 1, dimensions: [
        Dimension(fieldName: "reason", allowedValues: .list(["saved-session"])),
        Dimension(fieldName: "appName", allowedValues: .any),
        Dimension(fieldName: "appUpdateChannel", allowedValues: .list(["nightly"])),
        Dimension(fieldName: "appVersion", allowedValues: .any),
        Dimension(fieldName: "appBuildID", allowedValues: .any),
        Dimension(fieldName: "submission_date", allowedValues: .range(min: .string("20131001"), max: .string("20131031"))),
    ]).asFilter

    @Test func classifiesKeysRelativeToThePrefix() {
        func classify(_ key: String, filter: DimensionSchema? = Self.filter) -> KeyClass {
            S3Selector.classify(key: key, prefix: "v2/", dimensionCount: 6, filter: filter)
        }
        #expect(classify("v2/saved_session/Firefox/nightly/22.0a1/20130226031002.20131011.v2.log.e28a.lzma")
            == .selected(["saved_session", "Firefox", "nightly", "22.0a1", "20130226031002", "20131011"]))
        #expect(classify("v2/saved_session/Firefox/nightly/22.0a1/20130226031002.20131111.v2.log.e28a.lzma") == .excluded)
        #expect(classify("v2/idle_daily/Firefox/nightly/22.0a1/20130226031002.20131011.v2.log.x.xz") == .excluded)
        #expect(classify("v2/idle_daily/Firefox/nightly/22.0a1/20130226031002.20131011.v2.log.x.xz", filter: nil) != .excluded)
        #expect(classify("v2/README.txt") == .outsideLayout)
        #expect(classify("v2/saved_session/Firefox/nightly/22.0a1/extra/20130226031002.20131011.v2.log") == .outsideLayout)
        #expect(classify("v2/saved_session/Firefox/nightly/22.0a1/nodate") == .outsideLayout)
        #expect(classify("v2/saved_session/../nightly/22.0a1/20130226031002.20131011.v2.log") == .outsideLayout)
        #expect(classify("v2/saved_session//nightly/22.0a1/20130226031002.20131011.v2.log") == .outsideLayout)
        #expect(classify("other/saved_session/Firefox/nightly/22.0a1/20130226031002.20131011.v2.log") == .outsideLayout)
        #expect(classify("v2/saved_session/Firefox/nightly/22.0a1/.20130226031002.20131011.v2.log") == .ignored)
        #expect(classify("v2/saved_session/Firefox/nightly/22.0a1/20130226031002.20131011.v2.log.partial") == .ignored)
        #expect(classify("v2/saved_session/") == .ignored)
    }
}
