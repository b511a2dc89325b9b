/// Statistics of one column chunk as written to `ColumnMetaData.statistics` (`parquet.thrift` `Statistics`):
/// `null_count` (3) and the type-ordered `min_value` (6) / `max_value` (5), PLAIN-encoded without length prefix.
struct ColumnStatistics {
    var nullCount: Int64
    var min: [UInt8]?
    var max: [UInt8]?
}

/// What the footer says about one column chunk.
struct ColumnChunkMetadata {
    var column: ParquetColumn
    var encodings: [Int32]
    /// Level entries (values, nulls and empty lists).
    var valueCount: Int64
    /// Page headers plus uncompressed page bodies.
    var uncompressedBytes: Int64
    /// Bytes of the chunk in the file (headers plus compressed bodies).
    var compressedBytes: Int64
    var dataPageOffset: Int64
    var dictionaryPageOffset: Int64?
    var statistics: ColumnStatistics
}

struct RowGroupMetadata {
    var columns: [ColumnChunkMetadata]
    var totalByteSize: Int64
    var rowCount: Int64
    var fileOffset: Int64
    var compressedBytes: Int64
    var ordinal: Int16
}

/// Thrift compact encodings of Parquet's page headers and footer (`parquet.thrift`, field ids as there).
enum ParquetMetadata {
    // parquet.thrift enums.
    static let typeInt64: Int32 = 2, typeDouble: Int32 = 5, typeByteArray: Int32 = 6
    static let required: Int32 = 0, optional: Int32 = 1, repeated: Int32 = 2
    static let convertedUTF8: Int32 = 0, convertedList: Int32 = 3
    static let codecGzip: Int32 = 2
    static let pageData: Int32 = 0, pageDictionary: Int32 = 2

    /// `PageHeader` of a data page v1: type (1), sizes (2, 3), `data_page_header` (5): num_values (1),
    /// encoding (2), definition (3) and repetition (4) level encodings, RLE.
    static func dataPageHeader(uncompressed: Int, compressed: Int, values: Int, encoding: Int32, into w: inout ThriftCompactWriter) {
        w.field(1, i32: pageData)
        w.field(2, i32: Int32(uncompressed))
        w.field(3, i32: Int32(compressed))
        w.field(5) { h in
            h.field(1, i32: Int32(values))
            h.field(2, i32: encoding)
            h.field(3, i32: ParquetEncoding.rle)
            h.field(4, i32: ParquetEncoding.rle)
        }
    }

    /// `PageHeader` of a dictionary page: type (1), sizes (2, 3), `dictionary_page_header` (7): num_values (1),
    /// encoding (2) PLAIN, is_sorted (3) false.
    static func dictionaryPageHeader(uncompressed: Int, compressed: Int, values: Int, into w: inout ThriftCompactWriter) {
        w.field(1, i32: pageDictionary)
        w.field(2, i32: Int32(uncompressed))
        w.field(3, i32: Int32(compressed))
        w.field(7) { h in
            h.field(1, i32: Int32(values))
            h.field(2, i32: ParquetEncoding.plain)
            h.field(3, bool: false)
        }
    }

    /// Leaf path of a column (`path_in_schema`).
    static func path(_ column: ParquetColumn) -> [String] {
        column.kind == .int64List ? [column.name, "list", "element"] : [column.name]
    }

    static func physicalType(_ column: ParquetColumn) -> Int32 {
        switch column.kind {
        case .string: typeByteArray
        case .int64, .int64List: typeInt64
        case .double: typeDouble
        }
    }

    /// The footer: `FileMetaData` version (1) = 1, schema (2), num_rows (3), row_groups (4),
    /// key_value_metadata (5), created_by (6), column_orders (7: `TYPE_ORDER` for every leaf, so readers trust
    /// `min_value`/`max_value`).
    static func fileMetadata(columns: [ParquetColumn], rowCount: Int64, rowGroups: [RowGroupMetadata],
                             keyValue: [(String, String)], createdBy: String) -> [UInt8] {
        var w = ThriftCompactWriter()
        w.writeStruct { f in
            f.field(1, i32: 1)
            var elements: [(inout ThriftCompactWriter) -> Void] = []
            elements.append { e in
                e.field(4, string: "schema")
                e.field(5, i32: Int32(columns.count))
            }
            for column in columns {
                let repetition = column.optional ? optional : required
                switch column.kind {
                case .int64List:
                    elements.append { e in                       // optional group NAME (LIST)
                        e.field(3, i32: repetition)
                        e.field(4, string: column.name)
                        e.field(5, i32: 1)
                        e.field(6, i32: convertedList)
                        e.field(10) { logical in logical.field(3) { _ in } }   // LogicalType.LIST
                    }
                    elements.append { e in                       // repeated group list
                        e.field(3, i32: repeated)
                        e.field(4, string: "list")
                        e.field(5, i32: 1)
                    }
                    elements.append { e in                       // required int64 element
                        e.field(1, i32: typeInt64)
                        e.field(3, i32: required)
                        e.field(4, string: "element")
                    }
                case .string:
                    elements.append { e in
                        e.field(1, i32: typeByteArray)
                        e.field(3, i32: repetition)
                        e.field(4, string: column.name)
                        e.field(6, i32: convertedUTF8)
                        e.field(10) { logical in logical.field(1) { _ in } }   // LogicalType.STRING
                    }
                case .int64, .double:
                    elements.append { e in
                        e.field(1, i32: physicalType(column))
                        e.field(3, i32: repetition)
                        e.field(4, string: column.name)
                    }
                }
            }
            f.field(2, structList: elements.count) { e, index in elements[index](&e) }
            f.field(3, i64: rowCount)
            f.field(4, structList: rowGroups.count) { g, index in rowGroup(rowGroups[index], into: &g) }
            if !keyValue.isEmpty {
                f.field(5, structList: keyValue.count) { kv, index in
                    kv.field(1, string: keyValue[index].0)
                    kv.field(2, string: keyValue[index].1)
                }
            }
            f.field(6, string: createdBy)
            f.field(7, structList: columns.count) { order, _ in order.field(1) { _ in } }   // ColumnOrder.TYPE_ORDER
        }
        return w.bytes
    }

    /// `RowGroup`: columns (1), total_byte_size (2), num_rows (3), file_offset (5), total_compressed_size (6),
    /// ordinal (7). Each `ColumnChunk`: file_offset (2, the chunk's first page), meta_data (3).
    private static func rowGroup(_ group: RowGroupMetadata, into g: inout ThriftCompactWriter) {
        g.field(1, structList: group.columns.count) { c, index in
            let chunk = group.columns[index]
            c.field(2, i64: chunk.dictionaryPageOffset ?? chunk.dataPageOffset)
            c.field(3) { m in columnMetadata(chunk, into: &m) }
        }
        g.field(2, i64: group.totalByteSize)
        g.field(3, i64: group.rowCount)
        g.field(5, i64: group.fileOffset)
        g.field(6, i64: group.compressedBytes)
        g.field(7, i16: group.ordinal)
    }

    /// `ColumnMetaData`: type (1), encodings (2), path_in_schema (3), codec (4), num_values (5),
    /// total_uncompressed_size (6), total_compressed_size (7), data_page_offset (9), dictionary_page_offset (11),
    /// statistics (12: null_count 3, max_value 5, min_value 6).
    private static func columnMetadata(_ chunk: ColumnChunkMetadata, into m: inout ThriftCompactWriter) {
        m.field(1, i32: physicalType(chunk.column))
        m.field(2, i32List: chunk.encodings)
        m.field(3, stringList: path(chunk.column))
        m.field(4, i32: codecGzip)
        m.field(5, i64: chunk.valueCount)
        m.field(6, i64: chunk.uncompressedBytes)
        m.field(7, i64: chunk.compressedBytes)
        m.field(9, i64: chunk.dataPageOffset)
        if let dictionary = chunk.dictionaryPageOffset { m.field(11, i64: dictionary) }
        m.field(12) { s in
            s.field(3, i64: chunk.statistics.nullCount)
            if let max = chunk.statistics.max { s.field(5, binary: max) }
            if let min = chunk.statistics.min { s.field(6, binary: min) }
        }
    }
}
