/// Parquet value and level encodings (Apache Parquet `Encodings.md`): PLAIN values and the RLE / bit-packing
/// hybrid used for definition levels, repetition levels and dictionary indices.
enum ParquetEncoding {
    /// Encoding ids of `parquet.thrift` `enum Encoding`.
    static let plain: Int32 = 0
    static let rle: Int32 = 3
    static let rleDictionary: Int32 = 8

    /// Bits needed for values 0…`maxValue` (0 for 0).
    static func bitWidth(_ maxValue: UInt32) -> Int { maxValue == 0 ? 0 : 32 - maxValue.leadingZeroBitCount }

    /// Appends `values` in the RLE / bit-packing hybrid with `bitWidth` bits per value, without a length prefix.
    ///
    /// Greedy over groups of 8: a value repeated at least 8 times from the current position becomes one RLE run
    /// (header `count << 1`, the value in ⌈bitWidth/8⌉ little-endian bytes); otherwise the next 8 values are
    /// bit-packed (LSB first), consecutive groups sharing one header (`groups << 1 | 1`). A last group shorter than
    /// 8 is padded with zeros, which readers ignore because the page says how many values it holds.
    /// - Precondition: every value fits in `bitWidth` bits; `bitWidth` in 1…32.
    /// - Complexity: O(values.count).
    static func appendHybrid<C: RandomAccessCollection>(_ values: C, bitWidth: Int, to out: inout [UInt8])
        where C.Element: FixedWidthInteger, C.Index == Int {
        precondition((1...32).contains(bitWidth), "hybrid bit width \(bitWidth)")
        let valueBytes = (bitWidth + 7) / 8
        var index = values.startIndex
        let end = values.endIndex
        var packed: [UInt32] = []     // values waiting in bit-packed groups (a multiple of 8 once flushed)

        func flushPacked(_ out: inout [UInt8]) {
            guard !packed.isEmpty else { return }
            while packed.count % 8 != 0 { packed.append(0) }
            let groups = packed.count / 8
            appendVarint(UInt64(groups) << 1 | 1, to: &out)
            var buffer: UInt64 = 0
            var bits = 0
            for value in packed {
                buffer |= UInt64(value) << UInt64(bits)
                bits += bitWidth
                while bits >= 8 { out.append(UInt8(truncatingIfNeeded: buffer)); buffer >>= 8; bits -= 8 }
            }
            if bits > 0 { out.append(UInt8(truncatingIfNeeded: buffer)) }   // never: 8 values fill whole bytes
            packed.removeAll(keepingCapacity: true)
        }

        while index < end {
            let value = values[index]
            var run = 1
            while index + run < end && values[index + run] == value { run += 1 }
            if run >= 8 {
                flushPacked(&out)
                appendVarint(UInt64(run) << 1, to: &out)
                var v = UInt32(truncatingIfNeeded: value)
                for _ in 0..<valueBytes { out.append(UInt8(truncatingIfNeeded: v)); v >>= 8 }
                index += run
            } else {
                let stop = min(index + 8, end)
                while index < stop { packed.append(UInt32(truncatingIfNeeded: values[index])); index += 1 }
            }
        }
        flushPacked(&out)
    }

    /// Definition or repetition levels of a data page v1: a 4-byte little-endian length, then the hybrid encoding.
    static func appendLevels(_ levels: ArraySlice<UInt8>, maxLevel: Int, to out: inout [UInt8]) {
        var body: [UInt8] = []
        appendHybrid(levels, bitWidth: bitWidth(UInt32(maxLevel)), to: &body)
        appendUInt32LE(UInt32(body.count), to: &out)
        out.append(contentsOf: body)
    }

    static func appendUInt32LE(_ value: UInt32, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    static func appendInt64LE(_ value: Int64, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    static func appendDoubleLE(_ value: Double, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
    }

    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 { out.append(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
        out.append(UInt8(v))
    }
}
