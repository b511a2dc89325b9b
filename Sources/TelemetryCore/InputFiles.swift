import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An input path that is not opened: not a regular file, or a symlink leading out of its tree.
public struct SkippedInput: Sendable, Equatable, CustomStringConvertible {
    public let path: String
    /// What the path is: `a FIFO`, `a socket`, `a character device`, `a block device`, `a dangling symlink`,
    /// `a symlink to a path outside <root>`, `unreadable (errno N)`.
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): skipped: \(reason) (only regular files are read)" }
}

/// Classifies the entries of input trees for `import` and `convert` before anything is opened: opening a FIFO
/// blocks until a writer comes, a device can be endless, a symlink can lead anywhere. Only regular files are
/// read; symlinks are followed only when they resolve inside the tree's root (`realpath`).
public enum InputFiles {
    public enum Kind: Equatable, Sendable {
        case regularFile
        case directory
        case skipped(reason: String)
    }

    /// What `path` is, following a symlink only when it resolves under `root` (itself resolved).
    /// - Parameter root: the input tree's root; nil for a path the user named directly (a symlink is then
    ///   followed wherever it leads: the user chose it).
    public static func kind(of path: String, root: String?) -> Kind {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .skipped(reason: "unreadable (errno \(errno))") }
        if (info.st_mode & S_IFMT) == S_IFLNK {
            guard let resolved = realPath(path) else { return .skipped(reason: "a dangling symlink") }
            if let root, let resolvedRoot = realPath(root), resolved != resolvedRoot, !resolved.hasPrefix(resolvedRoot == "/" ? "/" : resolvedRoot + "/") {
                return .skipped(reason: "a symlink to a path outside \(root)")
            }
            guard stat(resolved, &info) == 0 else { return .skipped(reason: "a dangling symlink") }
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return .regularFile
        case S_IFDIR: return .directory
        case S_IFIFO: return .skipped(reason: "a FIFO")
        case S_IFSOCK: return .skipped(reason: "a socket")
        case S_IFCHR: return .skipped(reason: "a character device")
        case S_IFBLK: return .skipped(reason: "a block device")
        default: return .skipped(reason: "not a regular file")
        }
    }

    /// `realpath(3)` of `path`, nil when it does not resolve.
    public static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The regular files under `root` in sorted, depth-first order, and the entries skipped (see `kind`).
    /// Names starting with `.` and, when `ignore` says so, other names are left out silently; a directory
    /// reached twice through symlinks is visited once.
    /// - Parameter enter: called with each directory's path and depth (0 = under `root`) before it is entered;
    ///   false prunes it.
    public static func walk(root: String, ignore: (String) -> Bool = { _ in false },
                            enter: (String, Int) -> Bool = { _, _ in true }) -> (files: [String], skipped: [SkippedInput]) {
        var files: [String] = []
        var skipped: [SkippedInput] = []
        var visited: Set<String> = []
        func visit(_ directory: String, depth: Int) {
            guard visited.insert(realPath(directory) ?? directory).inserted else { return }
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
                skipped.append(SkippedInput(path: directory, reason: "unreadable directory (errno \(errno))"))
                return
            }
            for name in names.sorted() where !name.hasPrefix(".") && !ignore(name) {
                let path = directory == "/" ? "/" + name : directory + "/" + name
                switch kind(of: path, root: root) {
                case .regularFile: files.append(path)
                case .directory: if enter(path, depth) { visit(path, depth: depth + 1) }
                case let .skipped(reason): skipped.append(SkippedInput(path: path, reason: reason))
                }
            }
        }
        visit(root, depth: 0)
        return (files, skipped)
    }
}
