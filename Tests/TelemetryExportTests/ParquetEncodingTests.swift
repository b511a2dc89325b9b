import Testing
@testable import TelemetryExport

/// Byte-exact vectors for the pieces readers are strict about: the Thrift compact field headers (delta and long
/// form, nested structs keeping their own last field id), the RLE / bit-packing hybrid, and Hive escaping.
struct ParquetEncodingTests {
    @Test func thriftCompactFieldHeadersAndNestedStructs() {
        var writer = ThriftCompactWriter()
        writer.writeStruct { w in
            w.field(1, i32: 1)                        // delta 1, type i32: 0x15, zigzag 2
            w.field(3, i64: -1)                       // delta 2, type i64: 0x26, zigzag 1
            w.field(20, string: "ab")                 // delta 17: long form 0x08, zigzag(20) = 0x28
            w.field(21) { inner in inner.field(1, bool: true) }   // 0x1C; inner: 0x11, stop
            w.field(22, i32: 7)                       // delta from 21, not from the inner struct's 1
        }
        #expect(writer.bytes == [0x15, 0x02, 0x26, 0x01, 0x08, 0x28, 0x02, 0x61, 0x62, 0x1C, 0x11, 0x00, 0x15, 0x0E, 0x00])
    }

    @Test func thriftCompactLists() {
        var writer = ThriftCompactWriter()
        writer.writeStruct { w in
            w.field(2, i32List: [0, 3, 8])                         // short header: size 3 << 4 | i32
            w.field(3, stringList: Array(repeating: "x", count: 15))   // long header: 0xF8, varint 15
        }
        #expect(Array(writer.bytes.prefix(6)) == [0x29, 0x35, 0x00, 0x06, 0x10, 0x19])
        #expect(Array(writer.bytes[6..<9]) == [0xF8, 0x0F, 0x01])
        #expect(writer.bytes.last == 0)
    }

    @Test func hybridRunsAndBitPackedGroups() {
        var out: [UInt8] = []
        ParquetEncoding.appendHybrid([UInt8](repeating: 1, count: 10), bitWidth: 1, to: &out)
        #expect(out == [0x14, 0x01])                               // RLE run: 10 << 1, value
        out = []
        ParquetEncoding.appendHybrid([UInt8]([0, 1, 0, 1, 0, 1]), bitWidth: 1, to: &out)
        #expect(out == [0x03, 0x2A])                               // one bit-packed group, padded with zeros
        out = []
        ParquetEncoding.appendHybrid([Int32](0..<8), bitWidth: 3, to: &out)
        #expect(out == [0x03, 0x88, 0xC6, 0xFA])                   // Parquet Encodings.md's example
        out = []
        ParquetEncoding.appendHybrid([UInt8]([2, 0] + Array(repeating: 2, count: 14)), bitWidth: 2, to: &out)
        #expect(out == [0x03, 0b1010_0010, 0b1010_1010, 0x10, 0x02])   // 8 packed values, then a run of 8
        out = []
        ParquetEncoding.appendHybrid([UInt8]([2, 0] + Array(repeating: 2, count: 9)), bitWidth: 2, to: &out)
        #expect(out == [0x05, 0b1010_0010, 0b1010_1010, 0b0010_1010, 0x00])   // a run of 3 is cheaper packed: 2 groups
        #expect(ParquetEncoding.bitWidth(0) == 0 && ParquetEncoding.bitWidth(1) == 1 && ParquetEncoding.bitWidth(2) == 2
                && ParquetEncoding.bitWidth(255) == 8 && ParquetEncoding.bitWidth(256) == 9)
    }

    @Test(arguments: ["a=b/c", "ночь 夜", "%41", "..", "x/../y", "50% off?", "#tag:*[x]^{y}\\z", "quote'\"", "tab\tnew\nline", "plain"])
    func hivePartitionValuesRoundTrip(_ value: String) throws {
        let escaped = HivePartition.escape(value)
        #expect(!escaped.contains("/") && !escaped.contains("=") && !escaped.unicodeScalars.contains { $0.value < 0x20 })
        #expect(HivePartition.unescape(escaped) == value)
    }

    @Test func hiveEscapingMatchesSpark() throws {
        #expect(HivePartition.escape("a=b/c") == "a%3Db%2Fc")
        #expect(HivePartition.escape("ночь 夜") == "ночь%20夜")       // non-ASCII stays UTF-8: Spark decodes %XX per byte
        #expect(HivePartition.escape("..") == "%2E%2E")             // a stored value: StorageLayout.pathComponent
        #expect(HivePartition.escape("31.0/beta") == "31.0%2Fbeta")
        #expect(HivePartition.escape("%41") == "%2541")              // not a stored value: Hive escaping, exact
        #expect(HivePartition.escape(nil) == "__HIVE_DEFAULT_PARTITION__")
        #expect(HivePartition.escape("") == "__HIVE_DEFAULT_PARTITION__")
        #expect(try HivePartition.directory(column: "submission_date", value: "2014-07-15") == "submission_date=2014-07-15")
        #expect(throws: ExportError.self) { try HivePartition.directory(column: "os", value: String(repeating: "/", count: 90)) }
    }
}
