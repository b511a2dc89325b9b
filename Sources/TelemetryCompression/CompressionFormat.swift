/// The compression of a storage or raw-log file, decided by its magic bytes (`spec/storage.md` §3).
public enum CompressionFormat: String, Sendable, Equatable, CustomStringConvertible {
    /// xz container, magic `FD 37 7A 58 5A 00`. May hold several concatenated streams with padding.
    case xz
    /// Legacy LZMA-alone (`.lzma`, what the real 2013 files use): props byte, dictionary size, 8-byte size.
    case lzmaAlone = "lzma"
    /// gzip, magic `1F 8B`; multi-member files are read to the end.
    case gzip
    /// Not compressed.
    case plain

    public var description: String { rawValue }

    /// Detects the format from the first bytes of a file (at least 13 bytes when available).
    /// LZMA-alone has no magic: a header is accepted when the props byte is < 225 (lc/lp/pb valid), the
    /// dictionary size is a power of two or 2^n + 2^(n-1) (as xz's own `.lzma` check), and the
    /// uncompressed size is unknown (all FF) or below 256 GiB. `suffix` (".lzma", ".xz", ".gz") breaks ties
    /// for inputs too short to judge.
    public static func detect<C: Collection>(prefix bytes: C, suffix: String? = nil) -> CompressionFormat where C.Element == UInt8 {
        let b = Array(bytes.prefix(13))
        if b.count >= 6 && b[0] == 0xFD && b[1] == 0x37 && b[2] == 0x7A && b[3] == 0x58 && b[4] == 0x5A && b[5] == 0x00 { return .xz }
        if b.count >= 2 && b[0] == 0x1F && b[1] == 0x8B { return .gzip }
        if b.count >= 13 && looksLikeLZMAAlone(b) { return .lzmaAlone }
        if b.count < 13, let suffix {
            switch suffix.lowercased() {
            case ".lzma": return .lzmaAlone
            case ".xz": return .xz
            case ".gz", ".gzip": return .gzip
            default: break
            }
        }
        return .plain
    }

    private static func looksLikeLZMAAlone(_ b: [UInt8]) -> Bool {
        guard b[0] < 225 else { return false }
        let dict = UInt32(b[1]) | UInt32(b[2]) << 8 | UInt32(b[3]) << 16 | UInt32(b[4]) << 24
        var dictOK = dict == UInt32.max
        if !dictOK && dict >= 4096 {
            let top = UInt32(1) << (31 - UInt32(dict.leadingZeroBitCount))
            dictOK = dict == top || dict == top | (top >> 1)
        }
        guard dictOK else { return false }
        var size: UInt64 = 0
        for i in 0..<8 { size |= UInt64(b[5 + i]) << (8 * UInt64(i)) }
        return size == UInt64.max || size < (UInt64(1) << 38)
    }
}
