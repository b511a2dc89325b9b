import Foundation
import Testing
import TelemetryCore
import TelemetryTestSupport

/// The one rule from a dimension value to a path component (`StorageLayout.pathComponent`, docs/convert.md
/// "Path components") and the inside-the-root check of every write (issue 17 item 1).
struct PathComponentTests {
    @Test(arguments: [
        // (value, directory component, file-name part, stored value)
        ("../../../../tmp/pwn", "%2E%2E%2F..%2F..%2F..%2Ftmp%2Fpwn", "%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Ftmp%2Fpwn", "../../../../tmp/pwn"),
        ("31.0/beta", "31.0%2Fbeta", "31%2E0%2Fbeta", "31.0/beta"),
        ("..", "%2E%2E", "%2E%2E", ".."),
        (".", "%2E", "%2E", "."),
        (".hidden", "%2Ehidden", "%2Ehidden", ".hidden"),
        ("a\u{0}b", "a_b", "a_b", "a_b"),
        ("50%2F", "50_2F", "50_2F", "50_2F"),
        ("%2E%2E", "_2E_2E", "_2E_2E", "_2E_2E"),
        ("", "UNKNOWN", "UNKNOWN", "UNKNOWN"),
        ("saved-session", "saved_session", "saved_session", "saved_session"),
        ("22.0a1", "22.0a1", "22%2E0a1", "22.0a1"),
        ("20130226031002", "20130226031002", "20130226031002", "20130226031002"),
    ])
    func hostileValuesBecomeOneSafeComponent(_ value: String, _ directory: String, _ fileName: String, _ stored: String) throws {
        #expect(StorageLayout.pathComponent(value, position: .directory) == directory)
        #expect(StorageLayout.pathComponent(value, position: .fileName) == fileName)
        #expect(StorageLayout.storedValue(value) == stored)
        #expect(try StorageLayout.value(ofPathComponent: directory) == stored)
        #expect(try StorageLayout.value(ofPathComponent: fileName) == stored)
    }

    @Test func valuesTooLongForAFileNameAreOther() throws {
        let long = String(repeating: "a", count: 300)
        #expect(StorageLayout.storedValue(long) == "OTHER")
        let fits = String(repeating: "b", count: StorageLayout.maxComponentValueBytes)
        #expect(StorageLayout.storedValue(fits) == fits)
        // Escapes count: 48 dots encode to 144 bytes in a file name.
        #expect(StorageLayout.storedValue(String(repeating: ".", count: 48)) == "OTHER")
        #expect(StorageLayout.storedValue(String(repeating: "é", count: 300)) == "OTHER")
        // The longest file name the writer makes stays under 255 bytes.
        let path = StorageLayout.currentFile(base: "", dimensions: [long, fits, fits], submissionDate: fits, version: 2)
        let name = (path as NSString).lastPathComponent + ".0123456789abcdef0123456789abcdef.xz.partial"
        #expect(name.utf8.count <= 255)
        #expect(path.split(separator: "/").allSatisfy { $0.utf8.count <= 255 })
    }

    @Test func pathsRoundTripThroughTheLayout() throws {
        let values = ["saved-session", "../../x", "31.0/beta", "..", "a.b", "20140102"]
        let path = StorageLayout.currentFile(base: "out", dimensions: Array(values.dropLast()), submissionDate: values.last!, version: 2)
        #expect(path == "out/saved_session/%2E%2E%2F..%2Fx/31.0%2Fbeta/%2E%2E/a%2Eb.20140102.v2.log")
        #expect(try StorageLayout.dimensions(ofFile: path + ".0123.xz", base: "out") == ["saved_session", "../../x", "31.0/beta", "..", "a.b", "20140102"])
        #expect(throws: CoreError.self) { try StorageLayout.dimensions(ofFile: "out/a%41/b.20140102.v2.log", base: "out") }
    }

    @Test func directoryRefusesEveryWayOut() throws {
        let tmp = TemporaryDirectory("path-inside")
        let root = tmp.path + "/out", outside = tmp.path + "/outside"
        try FileManager.default.createDirectory(atPath: root + "/inner", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: root + "/escape", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: root + "/alias", withDestinationPath: root + "/inner")
        for relative in ["escape", "escape/deeper", "..", "a/../..", "a//b", "a\u{0}b", "."] {
            #expect(throws: CoreError.self, "\(relative)") { _ = try StorageLayout.directory(relative, inside: root, create: true) }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: root + "/a"))
        // A symlink that stays inside is followed; new directories are created.
        let real = try StorageLayout.directory("alias/x/y", inside: root, create: true)
        #expect(real.hasSuffix("/out/inner/x/y"))
        #expect(FileManager.default.fileExists(atPath: root + "/inner/x/y"))
        // Checking alone creates nothing.
        _ = try StorageLayout.directory("new/dir", inside: root, create: false)
        #expect(!FileManager.default.fileExists(atPath: root + "/new"))
    }
}
