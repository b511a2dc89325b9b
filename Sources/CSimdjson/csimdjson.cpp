// simdjson behind a C API. See include/csimdjson.h for the contract.
#include "csimdjson.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

using namespace simdjson;
#define CSJ_STR2(x) #x
#define CSJ_STR(x) CSJ_STR2(x)

struct csj_parser {
    dom::parser dom;
    std::vector<std::string> fields;
    std::vector<std::vector<std::string_view>> keyScratch;  // one vector per depth, reused
    bool histograms = false;
    std::vector<uint8_t> histogramOut;   // encoded histograms of the last parse
    std::vector<uint8_t> body;           // scratch: one histogram's body
    std::vector<int64_t> values;         // scratch: one histogram's numbers
};

extern "C" int csj_parser_set_histograms(csj_parser *parser, int enabled) {
    parser->histograms = enabled != 0;
    return 0;
}

extern "C" size_t csj_padding(void) { return SIMDJSON_PADDING; }
extern "C" const char *csj_version(void) { return CSJ_STR(SIMDJSON_VERSION); }

extern "C" csj_parser *csj_parser_new(void) {
    try {
        auto *p = new csj_parser();
        p->keyScratch.resize(CSJ_MAX_DEPTH + 2);  // never resized later: walk() holds references into it
        return p;
    } catch (...) {
        return nullptr;
    }
}

extern "C" void csj_parser_free(csj_parser *parser) { delete parser; }

extern "C" int csj_parser_set_fields(csj_parser *parser, const char *const *names, size_t n) {
    if (n > CSJ_MAX_FIELDS) return -1;
    parser->fields.clear();
    for (size_t i = 0; i < n; i++) parser->fields.emplace_back(names[i]);
    return 0;
}

namespace {

void setMessage(csj_ping *out, const char *fmt, size_t offset, const char *detail = nullptr) {
    if (detail)
        std::snprintf(out->message, sizeof out->message, fmt, detail, offset);
    else
        std::snprintf(out->message, sizeof out->message, fmt, offset);
}

// ---------------------------------------------------------------------------------------------
// Error locator: a small iterative RFC 8259 scanner run only on documents simdjson rejected (or
// on a value simdjson accepted that we do not, such as an integer above INT64_MAX), to name the
// first offending byte. Never recursive, so hostile nesting cannot exhaust the stack.
// ---------------------------------------------------------------------------------------------
struct Locator {
    const unsigned char *s;
    size_t n;
    size_t i = 0;
    csj_ping *out;

    bool fail(int status, const char *fmt, const char *detail = nullptr) {
        out->status = status;
        out->error_offset = i;
        setMessage(out, fmt, i, detail);
        return false;
    }
    void ws() { while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++; }

    bool string() {  // at '"'
        i++;
        while (i < n) {
            unsigned char c = s[i];
            if (c == '"') { i++; return true; }
            if (c == '\\') {
                if (i + 1 >= n) break;
                unsigned char e = s[i + 1];
                if (e == 'u') {
                    for (int k = 2; k < 6; k++)
                        if (i + k >= n || !std::isxdigit(s[i + k])) { i += 1; return fail(CSJ_INVALID_JSON, "invalid \\u escape at byte %zu"); }
                    i += 6;
                    continue;
                }
                if (!std::strchr("\"\\/bfnrt", e) || e == 0) { i += 1; return fail(CSJ_INVALID_JSON, "invalid escape at byte %zu"); }
                i += 2;
                continue;
            }
            if (c < 0x20) return fail(CSJ_INVALID_JSON, "control character in string at byte %zu");
            if (c < 0x80) { i++; continue; }
            // UTF-8 sequence
            int len = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
            if (len == 0 || i + len > n) return fail(CSJ_INVALID_UTF8, "invalid UTF-8 at byte %zu");
            for (int k = 1; k < len; k++)
                if ((s[i + k] & 0xC0) != 0x80) return fail(CSJ_INVALID_UTF8, "invalid UTF-8 at byte %zu");
            if (c == 0xE0 && s[i + 1] < 0xA0) return fail(CSJ_INVALID_UTF8, "invalid UTF-8 at byte %zu");
            if (c == 0xED && s[i + 1] > 0x9F) return fail(CSJ_INVALID_UTF8, "invalid UTF-8 (surrogate) at byte %zu");
            if (c == 0xF0 && s[i + 1] < 0x90) return fail(CSJ_INVALID_UTF8, "invalid UTF-8 at byte %zu");
            if (c == 0xF4 && s[i + 1] > 0x8F) return fail(CSJ_INVALID_UTF8, "invalid UTF-8 at byte %zu");
            i += len;
        }
        return fail(CSJ_INVALID_JSON, "unterminated string at byte %zu");
    }

    bool number() {
        size_t start = i;
        bool neg = false;
        if (s[i] == '-') { neg = true; i++; }
        if (i >= n || !std::isdigit(s[i])) { i = start; return fail(CSJ_INVALID_JSON, "invalid number at byte %zu"); }
        size_t intStart = i;
        if (s[i] == '0') i++;
        else while (i < n && std::isdigit(s[i])) i++;
        size_t intEnd = i;
        bool isFloat = false;
        if (i < n && s[i] == '.') {
            isFloat = true; i++;
            if (i >= n || !std::isdigit(s[i])) return fail(CSJ_INVALID_JSON, "invalid number at byte %zu");
            while (i < n && std::isdigit(s[i])) i++;
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
            isFloat = true; i++;
            if (i < n && (s[i] == '+' || s[i] == '-')) i++;
            if (i >= n || !std::isdigit(s[i])) return fail(CSJ_INVALID_JSON, "invalid number at byte %zu");
            while (i < n && std::isdigit(s[i])) i++;
        }
        if (!isFloat) {
            std::string digits(reinterpret_cast<const char *>(s + intStart), intEnd - intStart);
            const std::string limit = neg ? "9223372036854775808" : "9223372036854775807";
            if (digits.size() > limit.size() || (digits.size() == limit.size() && digits > limit)) {
                i = start;
                return fail(CSJ_INT_RANGE, "integer out of int64 range at byte %zu");
            }
        } else {
            std::string text(reinterpret_cast<const char *>(s + start), i - start);
            double d = std::strtod(text.c_str(), nullptr);
            if (std::isinf(d)) { i = start; return fail(CSJ_INVALID_JSON, "number out of double range at byte %zu"); }
        }
        return true;
    }

    bool literal() {
        static const char *words[] = {"true", "false", "null"};
        for (const char *w : words) {
            size_t l = std::strlen(w);
            if (i + l <= n && std::memcmp(s + i, w, l) == 0) { i += l; return true; }
        }
        // Name the token: letters up to a delimiter.
        size_t e = i;
        while (e < n && e - i < 16 && (std::isalnum(s[e]) || s[e] == '-' || s[e] == '+' || s[e] == '_')) e++;
        std::string tok(reinterpret_cast<const char *>(s + i), e - i);
        if (tok.empty()) return fail(CSJ_INVALID_JSON, "unexpected character at byte %zu");
        return fail(CSJ_INVALID_JSON, "invalid token %s at byte %zu", tok.c_str());
    }

    // Iterative value scanner. Stack holds '{' or '['.
    void run() {
        std::vector<char> stack;
        ws();
        if (i >= n) { fail(CSJ_INVALID_JSON, "empty document at byte %zu"); return; }
        if (s[i] != '{') {
            // Scan it anyway to report JSON errors first; then report "not an object".
        }
        bool expectValue = true;
        for (;;) {
            ws();
            if (expectValue) {
                if (i >= n) { fail(CSJ_INVALID_JSON, "unexpected end of JSON at byte %zu"); return; }
                unsigned char c = s[i];
                if (c == '{' || c == '[') {
                    if (stack.size() >= CSJ_MAX_DEPTH) { fail(CSJ_TOO_DEEP, "nesting deeper than 1024 at byte %zu"); return; }
                    stack.push_back(char(c)); i++; ws();
                    if (i < n && s[i] == (c == '{' ? '}' : ']')) { stack.pop_back(); i++; expectValue = false; }
                    else if (c == '{') {
                        if (i >= n || s[i] != '"') { fail(CSJ_INVALID_JSON, "expected object key at byte %zu"); return; }
                        if (!string()) return;
                        ws();
                        if (i >= n || s[i] != ':') { fail(CSJ_INVALID_JSON, "expected ':' at byte %zu"); return; }
                        i++;
                    }
                    continue;
                }
                if (c == '"') { if (!string()) return; }
                else if (c == '-' || std::isdigit(c)) { if (!number()) return; }
                else if (!literal()) return;
                expectValue = false;
                continue;
            }
            // after a value
            if (stack.empty()) {
                if (i < n) { fail(CSJ_INVALID_JSON, "trailing characters at byte %zu"); return; }
                return;
            }
            if (i >= n) { fail(CSJ_INVALID_JSON, "unexpected end of JSON at byte %zu"); return; }
            char top = stack.back();
            if (s[i] == ',') {
                i++;
                if (top == '{') {
                    ws();
                    if (i >= n || s[i] != '"') { fail(CSJ_INVALID_JSON, "expected object key at byte %zu"); return; }
                    if (!string()) return;
                    ws();
                    if (i >= n || s[i] != ':') { fail(CSJ_INVALID_JSON, "expected ':' at byte %zu"); return; }
                    i++;
                }
                expectValue = true;
                continue;
            }
            if ((top == '{' && s[i] == '}') || (top == '[' && s[i] == ']')) { stack.pop_back(); i++; continue; }
            fail(CSJ_INVALID_JSON, top == '{' ? "expected ',' or '}' at byte %zu" : "expected ',' or ']' at byte %zu");
            return;
        }
    }
};

void locate(const char *buf, size_t len, csj_ping *out, error_code simdError) {
    Locator loc{reinterpret_cast<const unsigned char *>(buf), len, 0, out};
    out->status = CSJ_OK;
    loc.run();
    if (out->status != CSJ_OK) return;
    // The scanner found nothing: trust simdjson's verdict, without an offset.
    out->error_offset = SIZE_MAX;
    switch (simdError) {
    case UTF8_ERROR: out->status = CSJ_INVALID_UTF8; break;
    case DEPTH_ERROR: out->status = CSJ_TOO_DEEP; break;
    case MEMALLOC: case CAPACITY: out->status = CSJ_INTERNAL; break;
    default: out->status = CSJ_INVALID_JSON; break;
    }
    std::snprintf(out->message, sizeof out->message, "%s", error_message(simdError));
}

// Walks the DOM once: counts duplicate keys and rejects integers above INT64_MAX.
// Returns false (with `bigInt` set) on an out-of-range integer.
bool walk(csj_parser *p, dom::element el, size_t depth, uint32_t &dups, bool &bigInt) {
    switch (el.type()) {
    case dom::element_type::OBJECT: {
        dom::object obj(el);
        auto &keys = p->keyScratch[depth];
        keys.clear();
        for (auto field : obj) {
            keys.push_back(field.key);
            if (!walk(p, field.value, depth + 1, dups, bigInt)) return false;
        }
        auto &again = keys;
        if (again.size() > 1) {
            if (again.size() <= 8) {
                for (size_t a = 1; a < again.size(); a++)
                    for (size_t b = 0; b < a; b++)
                        if (again[a] == again[b]) { dups++; break; }
            } else {
                std::sort(again.begin(), again.end());
                for (size_t a = 1; a < again.size(); a++)
                    if (again[a] == again[a - 1]) dups++;
            }
        }
        return true;
    }
    case dom::element_type::ARRAY:
        for (auto child : dom::array(el))
            if (!walk(p, child, depth + 1, dups, bigInt)) return false;
        return true;
    case dom::element_type::UINT64:
        bigInt = true;
        return false;
    default:
        return true;
    }
}

void extract(dom::element value, csj_value &out) {
    switch (value.type()) {
    case dom::element_type::STRING: {
        std::string_view sv(value);
        out.kind = CSJ_STRING; out.str = sv.data(); out.len = sv.size();
        break;
    }
    case dom::element_type::INT64: out.kind = CSJ_INT; out.i = int64_t(value); break;
    case dom::element_type::UINT64: out.kind = CSJ_DOUBLE; out.d = double(uint64_t(value)); break;
    case dom::element_type::DOUBLE: out.kind = CSJ_DOUBLE; out.d = double(value); break;
    case dom::element_type::BOOL: out.kind = CSJ_BOOL; out.i = bool(value) ? 1 : 0; break;
    case dom::element_type::NULL_VALUE: out.kind = CSJ_NULL; break;
    default: out.kind = CSJ_COMPOUND; break;
    }
}

inline void putVarint(std::vector<uint8_t> &out, uint64_t v) {
    while (v >= 0x80) { out.push_back(uint8_t(v) | 0x80); v >>= 7; }
    out.push_back(uint8_t(v));
}
inline uint64_t zigzag(int64_t v) { return (uint64_t(v) << 1) ^ uint64_t(v >> 63); }
template <typename T> inline void putRaw(std::vector<uint8_t> &out, T v) {
    uint8_t bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));   // little-endian hosts (checked at build: x86-64/arm64 Linux)
    out.insert(out.end(), bytes, bytes + sizeof(T));
}

// Encodes the storage-format histograms of `root` into p->histogramOut (see csimdjson.h).
uint32_t extractHistograms(csj_parser *p, dom::element root, bool checkDuplicates) {
    p->histogramOut.clear();
    dom::element object;
    if (dom::object(root)["histograms"].get(object) != SUCCESS || object.type() != dom::element_type::OBJECT) {
        dom::element payload;
        if (dom::object(root)["payload"].get(payload) != SUCCESS || payload.type() != dom::element_type::OBJECT ||
            dom::object(payload)["histograms"].get(object) != SUCCESS || object.type() != dom::element_type::OBJECT)
            return 0;
    }
    uint32_t count = 0;
    std::vector<std::string_view> seen;
    for (auto field : dom::object(object)) {
        if (field.value.type() != dom::element_type::ARRAY || field.key.size() > 0xFFFF) continue;
        if (checkDuplicates) {
            if (std::find(seen.begin(), seen.end(), field.key) != seen.end()) continue;
            seen.push_back(field.key);
        }
        dom::array array(field.value);
        auto &values = p->values;
        values.clear();
        uint8_t flags = 0;
        bool ok = true;
        size_t length = array.size();
        if (length < 6) continue;
        size_t n = length - 5, i = 0;
        for (auto element : array) {
            auto type = element.type();
            if (type == dom::element_type::INT64) {
                values.push_back(int64_t(element));
            } else if (i >= n && type == dom::element_type::DOUBLE) {
                double d = double(element);
                int64_t bits;
                std::memcpy(&bits, &d, 8);
                values.push_back(bits);
                flags |= uint8_t(1u << (i - n));
            } else { ok = false; break; }
            i++;
        }
        if (!ok || values.size() != length) continue;
        auto &body = p->body;
        body.clear();
        body.push_back(flags);
        uint64_t nonzero = 0;
        for (size_t b = 0; b < n; b++) nonzero += values[b] != 0;
        putVarint(body, nonzero);
        size_t next = 0;
        for (size_t b = 0; b < n; b++) {
            if (values[b] == 0) continue;
            putVarint(body, b - next);
            putVarint(body, zigzag(values[b]));
            next = b + 1;
        }
        for (size_t s = 0; s < 5; s++) {
            if (flags & (1u << s)) putRaw<int64_t>(body, values[n + s]);
            else putVarint(body, zigzag(values[n + s]));
        }
        auto &out = p->histogramOut;
        putRaw<uint16_t>(out, uint16_t(field.key.size()));
        out.insert(out.end(), field.key.begin(), field.key.end());
        putRaw<uint32_t>(out, uint32_t(n));
        putRaw<uint32_t>(out, uint32_t(body.size()));
        out.insert(out.end(), body.begin(), body.end());
        count++;
    }
    return count;
}

}  // namespace

extern "C" int csj_parse_ping(csj_parser *parser, const char *buf, size_t len, int padded, csj_ping *out) {
    out->status = CSJ_OK;
    out->error_offset = SIZE_MAX;
    out->message[0] = 0;
    out->duplicate_keys = 0;
    out->histograms = nullptr;
    out->histograms_len = 0;
    out->histogram_count = 0;
    for (size_t f = 0; f < parser->fields.size(); f++) out->fields[f].kind = CSJ_ABSENT;
    try {
        dom::element root;
        auto error = parser->dom.parse(buf, len, padded == 0).get(root);
        if (error) {
            locate(buf, len, out, error);
            return out->status;
        }
        uint32_t dups = 0;
        bool bigInt = false;
        if (!walk(parser, root, 0, dups, bigInt)) {
            locate(buf, len, out, NUMBER_ERROR);  // names the offending integer's offset
            if (out->status == CSJ_INVALID_JSON && std::strcmp(out->message, error_message(NUMBER_ERROR)) == 0) {
                out->status = CSJ_INT_RANGE;
                std::snprintf(out->message, sizeof out->message, "integer out of int64 range");
            }
            return out->status;
        }
        out->duplicate_keys = dups;
        if (root.type() != dom::element_type::OBJECT) {
            out->status = CSJ_NOT_OBJECT;
            out->error_offset = 0;
            std::snprintf(out->message, sizeof out->message, "top level is not a JSON object");
            return out->status;
        }
        if (parser->histograms) {
            out->histogram_count = extractHistograms(parser, root, dups > 0);
            out->histograms = parser->histogramOut.data();
            out->histograms_len = parser->histogramOut.size();
        }
        dom::element info;
        if (!parser->fields.empty() && dom::object(root)["info"].get(info) == SUCCESS &&
            info.type() == dom::element_type::OBJECT) {
            dom::object infoObject(info);
            for (size_t f = 0; f < parser->fields.size(); f++) {
                // First occurrence wins (also for duplicate keys): iterate instead of at_key's
                // unspecified choice.
                for (auto field : infoObject) {
                    if (field.key == parser->fields[f]) { extract(field.value, out->fields[f]); break; }
                }
            }
        }
        return CSJ_OK;
    } catch (const std::exception &e) {
        out->status = CSJ_INTERNAL;
        std::snprintf(out->message, sizeof out->message, "simdjson: %s", e.what());
        return out->status;
    }
}
