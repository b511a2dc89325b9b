/// A writer of the Thrift compact protocol, the encoding of Parquet's page headers and file footer
/// (Apache Thrift `doc/specs/thrift-compact-protocol.md`; Parquet `parquet.thrift`).
///
/// Only what Parquet's metadata needs: structs, `i16`/`i32`/`i64` (zigzag varints), `bool`, `binary`/`string`
/// and lists. Field headers use the delta form when the field id grows by 1…15 since the previous field of the
/// same struct, else the long form (type byte, then the id as a zigzag varint); nested structs keep their own
/// "previous field id" (a stack), which is where hand-written encoders usually go wrong.
///
/// - Important: Fields must be written in ascending id order within a struct (the delta form assumes it).
struct ThriftCompactWriter {
    /// Compact-protocol type codes (field headers and list element types).
    enum FieldType: UInt8 {
        case boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6, double = 7, binary = 8
        case list = 9, set = 10, map = 11, structure = 12
    }

    private(set) var bytes: [UInt8] = []
    private var lastFieldID: [Int16] = [0]

    init() {}

    // MARK: scalars

    mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 { bytes.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }

    mutating func writeZigzag(_ value: Int64) { writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

    private mutating func fieldHeader(_ id: Int16, _ type: FieldType) {
        let last = lastFieldID[lastFieldID.count - 1]
        let delta = Int(id) - Int(last)
        if delta > 0 && delta <= 15 {
            bytes.append(UInt8(delta) << 4 | type.rawValue)
        } else {
            bytes.append(type.rawValue)
            writeZigzag(Int64(id))
        }
        lastFieldID[lastFieldID.count - 1] = id
    }

    mutating func field(_ id: Int16, i32 value: Int32) { fieldHeader(id, .i32); writeZigzag(Int64(value)) }
    mutating func field(_ id: Int16, i64 value: Int64) { fieldHeader(id, .i64); writeZigzag(value) }
    mutating func field(_ id: Int16, i16 value: Int16) { fieldHeader(id, .i16); writeZigzag(Int64(value)) }
    mutating func field(_ id: Int16, bool value: Bool) { fieldHeader(id, value ? .boolTrue : .boolFalse) }
    mutating func field(_ id: Int16, binary value: [UInt8]) {
        fieldHeader(id, .binary)
        writeVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }
    mutating func field(_ id: Int16, string value: String) { field(id, binary: Array(value.utf8)) }

    // MARK: structs and lists

    /// Writes field `id` as a struct whose fields `body` writes.
    mutating func field(_ id: Int16, structure body: (inout ThriftCompactWriter) -> Void) {
        fieldHeader(id, .structure)
        writeStruct(body)
    }

    /// Writes a struct (fields, then the stop byte) at the current position: a list element or the top level.
    mutating func writeStruct(_ body: (inout ThriftCompactWriter) -> Void) {
        lastFieldID.append(0)
        body(&self)
        bytes.append(0)   // stop
        lastFieldID.removeLast()
    }

    private mutating func listHeader(_ count: Int, _ element: FieldType) {
        if count < 15 {
            bytes.append(UInt8(count) << 4 | element.rawValue)
        } else {
            bytes.append(0xF0 | element.rawValue)
            writeVarint(UInt64(count))
        }
    }

    mutating func field(_ id: Int16, i32List values: [Int32]) {
        fieldHeader(id, .list)
        listHeader(values.count, .i32)
        for value in values { writeZigzag(Int64(value)) }
    }

    mutating func field(_ id: Int16, stringList values: [String]) {
        fieldHeader(id, .list)
        listHeader(values.count, .binary)
        for value in values { writeVarint(UInt64(value.utf8.count)); bytes.append(contentsOf: value.utf8) }
    }

    /// Writes field `id` as a list of `count` structs, element `i` written by `body(&writer, i)`.
    mutating func field(_ id: Int16, structList count: Int, _ body: (inout ThriftCompactWriter, Int) -> Void) {
        fieldHeader(id, .list)
        listHeader(count, .structure)
        for index in 0..<count { writeStruct { body(&$0, index) } }
    }
}
