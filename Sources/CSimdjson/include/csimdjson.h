// Pure C interface to simdjson (libsimdjson-dev) for parsing pings.
// Swift sees only this header; the implementation is Sources/CSimdjson/csimdjson.cpp.
#ifndef CSIMDJSON_H
#define CSIMDJSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Most `info` fields one parser extracts per document.
#define CSJ_MAX_FIELDS 32
/// Largest nesting depth accepted (simdjson's default limit).
#define CSJ_MAX_DEPTH 1024

typedef struct csj_parser csj_parser;

/// Outcome of `csj_parse_ping`.
typedef enum {
    CSJ_OK = 0,
    CSJ_INVALID_JSON = 1,   ///< not RFC 8259 JSON (bad token, trailing characters, unterminated, ...)
    CSJ_INVALID_UTF8 = 2,   ///< a byte sequence that is not UTF-8
    CSJ_TOO_DEEP = 3,       ///< nesting deeper than CSJ_MAX_DEPTH
    CSJ_INT_RANGE = 4,      ///< an integer outside the int64 range
    CSJ_NOT_OBJECT = 5,     ///< valid JSON whose top level is not an object
    CSJ_INTERNAL = 6        ///< allocation failure or other library error
} csj_status;

/// Kind of an extracted value.
typedef enum {
    CSJ_ABSENT = 0, CSJ_STRING = 1, CSJ_INT = 2, CSJ_DOUBLE = 3, CSJ_BOOL = 4, CSJ_NULL = 5, CSJ_COMPOUND = 6
} csj_kind;

/// One extracted value. `str` points into the parser's memory and stays valid until the next parse.
typedef struct {
    int kind;          ///< csj_kind
    const char *str;   ///< CSJ_STRING: UTF-8 bytes, not NUL-terminated
    size_t len;        ///< CSJ_STRING: byte length
    int64_t i;         ///< CSJ_INT, CSJ_BOOL (0/1)
    double d;          ///< CSJ_DOUBLE
} csj_value;

/// Result of parsing one document.
typedef struct {
    int status;                     ///< csj_status
    size_t error_offset;            ///< 0-based byte offset of the first error in the document, or SIZE_MAX
    char message[192];              ///< NUL-terminated human-readable reason (empty when CSJ_OK)
    uint32_t duplicate_keys;        ///< object keys that repeat an earlier key of the same object
    csj_value fields[CSJ_MAX_FIELDS]; ///< values of the configured `info` fields, first occurrence wins
    /// When histogram extraction is on (`csj_parser_set_histograms`): the ping's storage-format histograms,
    /// encoded (format below); points into the parser's memory, valid until the next parse. NULL/0 otherwise.
    const uint8_t *histograms;
    size_t histograms_len;
    uint32_t histogram_count;
} csj_ping;

/// Histogram extraction (docs/sql.md "Column files"). The histograms are the members of the top-level
/// `histograms` object, else of `payload.histograms`, whose value is an array of n >= 1 int64 bucket counts
/// followed by 5 numbers (spec/histograms.md §4); other members are skipped; of repeated names the first wins.
/// Each is one entry: u16 name length, name bytes, u32 n, u32 body length, body. Body (a column row without
/// its ping id): u8 flags (bit i: statistic i is a double), varint k = nonzero buckets, k pairs (varint gap
/// from the previous nonzero bucket + 1, zigzag varint count), then the 5 statistics (double: 8 bytes
/// little-endian IEEE; integer: zigzag varint). Varints are unsigned LEB128. All integers little-endian.
int csj_parser_set_histograms(csj_parser *parser, int enabled);

/// simdjson's required readable slack after the document, in bytes.
size_t csj_padding(void);
/// A new parser, or NULL when out of memory. Not thread-safe: one parser per thread.
csj_parser *csj_parser_new(void);
void csj_parser_free(csj_parser *parser);
/// Names (inside the top-level `info` object) to extract, in order; copied. Returns 0, or -1 when n > CSJ_MAX_FIELDS.
int csj_parser_set_fields(csj_parser *parser, const char *const *names, size_t n);
/// Parses and fully validates `buf[0..<len]` as one JSON document whose top level is an object.
/// When `padded` is non-zero, `buf` has at least `csj_padding()` readable bytes after `len`.
/// Returns `out->status`.
int csj_parse_ping(csj_parser *parser, const char *buf, size_t len, int padded, csj_ping *out);
/// Library version string, e.g. "3.0.1".
const char *csj_version(void);

#ifdef __cplusplus
}
#endif
#endif
