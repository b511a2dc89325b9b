import Foundation
import Testing
import TelemetryCompression
import TelemetryConvert
import TelemetryTestSupport

struct JSONValueTests {
    @Test(arguments: [
        (#"{"a":1,"b":[true,false,null],"c":"x"}"#, #"{"a":1,"b":[true,false,null],"c":"x"}"#),
        (#"{ "a" : 1.5 , "b" : -0.25e2 }"#, #"{"a":1.5,"b":-25.0}"#),
        (#"[9223372036854775807,-9223372036854775808,0,-0]"#, #"[9223372036854775807,-9223372036854775808,0,0]"#),
        (#"{"log_sum":873.474196434021,"s":4984161763,"t":1e-05}"#, #"{"log_sum":873.474196434021,"s":4984161763,"t":1e-05}"#),
        (#""\u00e9\ud83d\ude00\n\t\"\\\/""#, #""\u00e9\ud83d\ude00\n\t\"\\/""#),
        (#"{"k":"a","k":"b"}"#, #"{"k":"a","k":"b"}"#),
        ("\"\\u0001\"", "\"\\u0001\""),
    ])
    func roundTripsToMinimalJSON(input: String, expected: String) throws {
        #expect(try JSONValue.parse(input).minimalJSON == expected)
    }

    @Test func lookupsUseTheFirstOccurrence() throws {
        let value = try JSONValue.parse(#"{"info":{"OS":"WINNT","OS":"Darwin"}}"#)
        #expect(value["info"]?["OS"] == .string("WINNT"))
        var object = try #require(value["info"]?.objectValue)
        object["OS"] = .string("Linux")
        #expect(JSONValue.object(object).minimalJSON == #"{"OS":"Linux"}"#)
    }

    @Test(arguments: [#"{"a":NaN}"#, #"{"a":1}x"#, #"{"a":18446744073709551616}"#, #"{"a":"\#u{FF}"#, "[", ""])
    func rejectsWhatThePingParserRejects(input: String) {
        #expect(throws: PingParser.Rejection.self) { try JSONValue.parse(input) }
    }

    @Test func realStoragePingsSurviveARoundTrip() throws {
        let path = Fixtures.sharedPath("datasets/real/storage/saved_session/Firefox/nightly/28.0a1/20131029030201.20131029.v2.log.0ab8723b6fb3455bb34b04d97482fda2.lzma")
        let reader = try DecompressingReader(path: path)
        var checked = 0
        let parser = PingParser(fields: [])
        try LineReader(source: reader).forEachLine { line in
            let tab = try #require(line.bytes.firstIndex(of: 0x09))
            let jsonBytes = UnsafeRawBufferPointer(rebasing: line.bytes[(tab + 1)...])
            let json = String(decoding: jsonBytes, as: UTF8.self)
            let value = try JSONValue.parse(jsonBytes, validatingWith: parser).value
            let original = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? NSDictionary
            let again = try JSONSerialization.jsonObject(with: Data(value.minimalJSON.utf8)) as? NSDictionary
            #expect(original == again)
            #expect(value.minimalJSON.utf8.count < json.utf8.count)   // the 2013 files have spaces after separators
            checked += 1
        }
        #expect(checked == 4)
    }
}
