import Testing
import TelemetryCore

/// `AllowedValues.allows` (`spec/storage.md` §2): exact strings, lists, inclusive ranges compared as strings
/// (byte order) for string bounds and numerically for number bounds.
struct AllowedValuesTests {
    /// A deterministic generator so a failing property prints a reproducible value.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    // MARK: exact strings and lists

    @Test(arguments: [
        ("one_specific_build", true),
        ("two_specific_build", false),
        ("*", false),                      // "*" as a value is not a wildcard
        ("one_specific_build ", false),
        (" one_specific_build", false),
        ("ONE_SPECIFIC_BUILD", false),
        ("one-specific-build", false),     // no sanitising on the value side
        ("", false),
    ])
    func exactStringAllowsOnlyThatString(_ value: String, _ allowed: Bool) {
        #expect(AllowedValues.exact("one_specific_build").allows(value, as: .text) == allowed)
    }

    @Test func exactStringAllowsNonASCII() {
        #expect(AllowedValues.exact("caf\u{E9}").allows("caf\u{E9}", as: .text))
        #expect(!AllowedValues.exact("caf\u{E9}").allows("caf", as: .text))
    }

    @Test func anyAllowsEverything() {
        for value in ["", "*", "OTHER", "UNKNOWN", "saved-session", "\u{0}", String(repeating: "z", count: 10_000)] {
            #expect(AllowedValues.any.allows(value, as: .text), "\(value.prefix(20))")
        }
    }

    @Test func listAllowsExactlyItsMembers() {
        let list = AllowedValues.list(["release", "beta", "nightly", "aurora"])
        for member in ["release", "beta", "nightly", "aurora"] { #expect(list.allows(member, as: .text)) }
        for other in ["Release", "esr", "nightly-cck", "", "*", "aurora "] { #expect(!list.allows(other, as: .text), "\(other)") }
        #expect(!AllowedValues.list([]).allows("", as: .text))
        #expect(!AllowedValues.list([]).allows("x", as: .text))
    }

    // MARK: string ranges

    @Test func stringRangeIsInclusiveAndLexicographic() {
        let dates = AllowedValues.range(min: .string("20130908"), max: .string("20140401"))
        #expect(dates.allows("20130908", as: .text))
        #expect(dates.allows("20140401", as: .text))
        #expect(dates.allows("20131231", as: .text))
        #expect(!dates.allows("20130907", as: .text))
        #expect(!dates.allows("20140402", as: .text))
        // Lexicographic, not numeric: a longer string with the same prefix sorts after the bound.
        #expect(!dates.allows("201404010", as: .text))
        #expect(dates.allows("2014", as: .text))                    // "2014" < "20140401" but > "20130908"
        #expect(!dates.allows("3", as: .text))
        // spec/storage.md §2: "20140301031002" >= "20140228" is true.
        #expect(AllowedValues.range(min: .string("20140228"), max: nil).allows("20140301031002", as: .text))
        #expect(!AllowedValues.range(min: .string("20140228"), max: nil).allows("20140227235959", as: .text))
        // "9" > "10" as strings even though 9 < 10 as numbers.
        #expect(AllowedValues.range(min: .string("10"), max: nil).allows("9", as: .text))
        #expect(!AllowedValues.range(min: nil, max: .string("10")).allows("9", as: .text))
    }

    @Test func stringRangeUsesByteOrder() {
        let lower = AllowedValues.range(min: .string("a"), max: .string("z"))
        #expect(!lower.allows("Z", as: .text))          // 0x5A < 0x61
        #expect(lower.allows("m", as: .text))
        #expect(lower.allows("a", as: .text))
        #expect(!lower.allows("", as: .text))           // the empty string sorts first
        #expect(lower.allows("z", as: .text))
        #expect(!lower.allows("za", as: .text))
        // UTF-8 byte order: U+00E9 (C3 A9) sorts after every ASCII character.
        #expect(!lower.allows("\u{E9}", as: .text))
        #expect(AllowedValues.range(min: .string("z"), max: nil).allows("\u{E9}", as: .text))
        // Byte order also for canonically equivalent forms (Swift's `==` calls them equal): precomposed
        // U+00E9 (C3 A9) sorts after decomposed e + U+0301 (65 CC 81).
        #expect(AllowedValues.range(min: .string("caf\u{E9}"), max: nil).allows("caf\u{E9}", as: .text))
        #expect(!AllowedValues.range(min: .string("caf\u{E9}"), max: nil).allows("cafe\u{301}", as: .text))
        #expect(!AllowedValues.range(min: nil, max: .string("cafe\u{301}")).allows("caf\u{E9}", as: .text))
        #expect(AllowedValues.range(min: .string("cafe\u{301}"), max: .string("cafe\u{301}")).allows("cafe\u{301}", as: .text))
    }

    /// Property: for random strings, a string range allows exactly what byte-order comparison says.
    @Test func stringRangeMatchesByteOrderForRandomValues() {
        var rng = SplitMix64(state: 42)
        let alphabet = Array("0129abyzAZ_-.\u{E9}")
        func randomString() -> String {
            String((0..<Int.random(in: 0...6, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
        }
        func lessOrEqual(_ a: String, _ b: String) -> Bool {
            !Array(b.utf8).lexicographicallyPrecedes(Array(a.utf8))
        }
        for _ in 0..<2_000 {
            let (lo, hi, value) = (randomString(), randomString(), randomString())
            let expected = lessOrEqual(lo, value) && lessOrEqual(value, hi)
            #expect(AllowedValues.range(min: .string(lo), max: .string(hi)).allows(value, as: .text) == expected, "\(lo) ≤ \(value) ≤ \(hi)")
            #expect(AllowedValues.range(min: .string(lo), max: nil).allows(value, as: .text) == lessOrEqual(lo, value))
            #expect(AllowedValues.range(min: nil, max: .string(hi)).allows(value, as: .text) == lessOrEqual(value, hi))
        }
    }

    // MARK: numeric ranges

    @Test(arguments: [
        ("448", true), ("500", true), ("449", true), ("470.5", true), ("4.48e2", true), ("448.0", true),
        ("447", false), ("501", false), ("447.999", false), ("500.001", false), ("-448", false),
        ("abc", false), ("", false), ("448MB", false), (" 448", false), ("nan", false),
    ])
    func numericRangeComparesNumbers(_ value: String, _ allowed: Bool) {
        // worker-test-schema.json's memsize: {"min": 448, "max": 500}.
        #expect(AllowedValues.range(min: .number(448), max: .number(500)).allows(value, as: .text) == allowed)
    }

    @Test func numericRangeIsNotLexicographic() {
        let range = AllowedValues.range(min: .number(9), max: .number(100))
        #expect(range.allows("10", as: .text))          // "10" < "9" as strings, 10 > 9 as numbers
        #expect(range.allows("99", as: .text))
        #expect(!range.allows("1000", as: .text))
        #expect(!range.allows("8", as: .text))
    }

    @Test func halfOpenNumericRanges() {
        let atLeast = AllowedValues.range(min: .number(-1.5), max: nil)
        #expect(atLeast.allows("-1.5", as: .text))
        #expect(atLeast.allows("1e300", as: .text))
        #expect(!atLeast.allows("-2", as: .text))
        #expect(!atLeast.allows("text", as: .text))     // a value with no numeric reading is never in a numeric range
        let atMost = AllowedValues.range(min: nil, max: .number(0))
        #expect(atMost.allows("0", as: .text))
        #expect(atMost.allows("-0", as: .text))
        #expect(atMost.allows("-1e300", as: .text))
        #expect(!atMost.allows("0.0001", as: .text))
    }

    /// Property: for random integers, a numeric range allows exactly what integer comparison says.
    @Test func numericRangeMatchesIntegerOrderForRandomValues() {
        var rng = SplitMix64(state: 7)
        for _ in 0..<2_000 {
            let lo = Int.random(in: -1_000...1_000, using: &rng)
            let hi = Int.random(in: -1_000...1_000, using: &rng)
            let value = Int.random(in: -1_200...1_200, using: &rng)
            let range = AllowedValues.range(min: .number(Double(lo)), max: .number(Double(hi)))
            #expect(range.allows(String(value), as: .text) == (lo <= value && value <= hi), "\(lo) ≤ \(value) ≤ \(hi)")
        }
    }

    @Test func mixedBounds() {
        // A string lower bound and a numeric upper bound: each bound compares in its own way.
        let mixed = AllowedValues.range(min: .string("1"), max: .number(50))
        #expect(mixed.allows("20", as: .text))
        #expect(!mixed.allows("60", as: .text))
        #expect(!mixed.allows("0", as: .text))          // "0" < "1" as strings
        #expect(mixed.allows("1", as: .text))
    }

    @Test func unboundedRangeAllowsAnything() {
        for value in ["", "x", "12", "-3"] { #expect(AllowedValues.range(min: nil, max: nil).allows(value, as: .text)) }
    }

    // MARK: filter form

    @Test func filterFormSanitisesOnlyLists() {
        #expect(AllowedValues.list(["saved-session", "idle daily", "a/b.c"]).sanitizedForFilter
            == .list(["saved_session", "idle_daily", "a/b.c"]))
        #expect(AllowedValues.exact("saved-session").sanitizedForFilter == .exact("saved-session"))
        #expect(AllowedValues.any.sanitizedForFilter == .any)
        let range = AllowedValues.range(min: .string("2013-09-08"), max: .number(3))
        #expect(range.sanitizedForFilter == range)
    }

    @Test func schemaAllowsPositionally() {
        let schema = DimensionSchema.seed
        #expect(schema.allows(["saved-session", "Firefox", "nightly", "28.0a1", "20131029030201", "20131029"]))
        #expect(!schema.allows(["saved-session", "Firefox", "esr", "28.0a1", "20131029030201", "20131029"]))
        #expect(!schema.allows(["saved-session", "Firefox", "nightly", "28.0a1", "20131029030201"]))      // count differs
        #expect(schema.allows("aurora", at: 2))
        #expect(!schema.allows("aurora", at: 1))
        #expect(!schema.allows("x", at: 6))                                                             // no such dimension
        #expect(schema.allowedValue("x", at: 6) == DimensionSchema.other)
        #expect(schema.apply(["ftu", "B2G", "beta", "1", "2", "3", "extra"]) == ["ftu", "B2G", "beta", "1", "2", "3"])
    }

    @Test func fieldsLookUpByName() throws {
        let schema = DimensionSchema.seed
        let values = ["saved-session", "Firefox OS", "esr"]       // shorter than the schema
        #expect(try schema.fields(["appName", "appBuildID"], in: values, limitToAllowed: false, sanitize: false)
            == ["appName": "Firefox OS", "appBuildID": "OTHER"])
        #expect(try schema.fields(["appName", "appUpdateChannel"], in: values, limitToAllowed: true, sanitize: false)
            == ["appName": "OTHER", "appUpdateChannel": "OTHER"])
        #expect(try schema.fields(["reason", "appName"], in: values, limitToAllowed: false, sanitize: true)
            == ["reason": "saved_session", "appName": "Firefox_OS"])
        #expect(throws: CoreError.unknownDimension(name: "OS", known: schema.fieldNames)) {
            try schema.fields(["reason", "OS"], in: values, limitToAllowed: false, sanitize: false)
        }
    }

    @Test func dimensionsFromInfoUseUnknownForMissingFields() {
        let info = ["reason": "main", "appName": "Firefox", "appVersion": "40.0"]
        #expect(DimensionSchema.seed.dimensions(fromInfo: info, submissionDate: "20150801")
            == ["main", "Firefox", "UNKNOWN", "40.0", "UNKNOWN", "20150801"])
        // UNKNOWN is then OTHER under a list, kept under "*" (spec/storage.md §2).
        #expect(DimensionSchema.seed.apply(["main", "Firefox", "UNKNOWN", "40.0", "UNKNOWN", "20150801"])
            == ["main", "Firefox", "OTHER", "40.0", "UNKNOWN", "20150801"])
    }

    @Test(arguments: [
        ("Hello World!", "Hello_World_"),
        ("what\nam\ni", "what_am_i"),
        ("saved-session", "saved_session"),
        ("a/b.c_d-e f!\u{E9}", "a/b.c_d_e_f__"),
        ("cafe\u{301}", "cafe_"),            // one underscore per Unicode scalar
        ("\u{1F600}x", "_x"),                 // a 4-byte scalar is one underscore
        ("", ""),
        ("AZaz09_/.", "AZaz09_/."),
        ("\t\r\u{0}", "___"),
    ])
    func safeFilenameReplacesEveryOtherScalar(_ value: String, _ expected: String) {
        #expect(StorageLayout.safeFilename(value) == expected)
    }
}
