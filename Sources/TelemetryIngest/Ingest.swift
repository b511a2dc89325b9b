import NIOCore
import TelemetryCore

/// HTTP ingest of ping submissions (issue: `telemetry serve`). Placeholder until the server lands.
enum Ingest {}
