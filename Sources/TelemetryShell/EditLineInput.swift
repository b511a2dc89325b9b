import CEditLine
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The terminal, read through libedit's native API (`histedit.h`): Emacs keys, history kept in a file, Tab
/// completion, Ctrl-C at the prompt. Used only when standard input is a terminal (STYLE.md §5).
///
/// - History: `historyPath` (normally `~/.telemetry_history`) is loaded at start and saved after every entry, so
///   a session killed later still keeps it; at most `historySize` entries (older ones drop off); consecutive
///   duplicates are kept once; the file is made private (0600). A multi-line statement is one entry, and Up
///   recalls it whole.
/// - Ctrl-C: while a line is edited the terminal's `isig` is off (`setty -d -isig`), so Ctrl-C is a key, bound to
///   `telemetry-interrupt`: it marks the line `^C`, ends it, and `next` reports `.interrupt`. While a query runs
///   the terminal is back in its normal mode and Ctrl-C raises SIGINT (`InterruptWatcher`).
/// - Important: Not `Sendable`; one per process, used on the session's thread. Owns the `EditLine*` and
///   `History*` (`el_end`, `history_end` in `deinit`).
public final class EditLineInput: InputSource {
    /// Entries kept in the history file.
    public static let historySize: Int32 = 1000
    /// The main prompt.
    public static let prompt = "telemetry> "
    /// The prompt while a statement is unfinished, as wide as `prompt`.
    public static let continuationPrompt = "      ...> "

    public var name: String? { nil }
    public var isTerminal: Bool { true }

    /// What Tab completes; `nil` disables completion.
    public var completer: Completer?

    private let editor: OpaquePointer
    private let history: OpaquePointer
    private var event = HistEvent()
    private let historyPath: String?
    private var promptText: UnsafeMutablePointer<CChar>?
    /// Text of the unfinished statement's earlier lines, for completion context.
    private var pendingText = ""
    fileprivate var interruptPressed = false

    /// Sets up libedit on standard input/output/error.
    /// - Parameter historyPath: the history file (created on the first entry); `nil` keeps no history.
    /// - Returns: `nil` when libedit cannot be initialised (no usable terminal).
    public init?(historyPath: String?, completer: Completer?) {
        setlocale(LC_CTYPE, "")   // libedit needs the locale's multibyte encoding for UTF-8 input
        guard let editor = el_init("telemetry", cedit_stdin(), cedit_stdout(), cedit_stderr()) else { return nil }
        guard let history = history_init() else {
            el_end(editor)
            return nil
        }
        self.editor = editor
        self.history = history
        self.historyPath = historyPath
        self.completer = completer
        _ = cedit_hist_setsize(history, &event, Self.historySize)
        _ = cedit_hist_unique(history, &event, 1)
        if let historyPath { _ = cedit_hist_load(history, &event, historyPath) }
        _ = cedit_set_clientdata(editor, Unmanaged.passUnretained(self).toOpaque())
        _ = cedit_set_editor(editor, "emacs")
        _ = cedit_set_prompt(editor, promptCallback)
        _ = cedit_set_hist(editor, history)
        _ = cedit_edit_mode_no_isig(editor)
        _ = cedit_set_addfn_bind(editor, "telemetry-complete", "Complete the word before the cursor", completeCallback, "^I")
        _ = cedit_set_addfn_bind(editor, "telemetry-interrupt", "Discard the line (Ctrl-C)", interruptCallback, "^C")
        _ = cedit_bind(editor, "^R", "em-inc-search-prev")     // readline's reverse search (libedit: redisplay)
        _ = cedit_bind(editor, "^W", "ed-delete-prev-word")    // readline's word rub-out (libedit: kill region)
        _ = el_source(editor, nil)   // the user's ~/.editrc, as other libedit programs read it
    }

    deinit {
        el_end(editor)
        history_end(history)
        free(promptText)
    }

    public func next(continuation: Bool) -> InputEvent {
        setPrompt(continuation ? Self.continuationPrompt : Self.prompt)
        if !continuation { pendingText = "" }
        interruptPressed = false
        el_resize(editor)   // the terminal may have changed size since the last line
        var count: Int32 = 0
        guard let line = el_gets(editor, &count), count > 0 else {
            if interruptPressed { return .interrupt(discardedText: false) }
            FileDescriptorSink.standardOutput().write("\n")   // leave the prompt line before exiting
            return .end
        }
        var text = String(decoding: UnsafeRawBufferPointer(start: line, count: Int(count)), as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        if interruptPressed {
            let typed = text.hasSuffix("^C") ? String(text.dropLast(2)) : text
            return .interrupt(discardedText: !typed.trimmingCharacters(in: .whitespaces).isEmpty || continuation)
        }
        pendingText += text + "\n"
        return .line(text)
    }

    public func addHistory(_ entry: String) {
        let trimmed = entry.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return }
        _ = cedit_hist_enter(history, &event, trimmed)
        guard let historyPath else { return }
        if cedit_hist_save(history, &event, historyPath) >= 0 { chmod(historyPath, 0o600) }
    }

    private func setPrompt(_ text: String) {
        free(promptText)
        promptText = strdup(text)
    }

    fileprivate var currentPrompt: UnsafePointer<CChar>? { promptText.map { UnsafePointer($0) } }

    /// Tab: replace the word with the only candidate or the candidates' common prefix, else list them.
    fileprivate func complete() -> UInt8 {
        guard let completer, let info = el_line(editor), let buffer = info.pointee.buffer, let cursor = info.pointee.cursor else {
            return UInt8(CC_REFRESH_BEEP)
        }
        let before = String(decoding: UnsafeRawBufferPointer(start: buffer, count: max(0, cursor - buffer)), as: UTF8.self)
        let pending = pendingText
        let completion = completer.complete(pending: pending, line: before)
        guard !completion.candidates.isEmpty else { return UInt8(CC_REFRESH_BEEP) }
        if let insertion = completion.insertion {
            el_deletestr(editor, Int32(completion.word.unicodeScalars.count))
            _ = el_insertstr(editor, insertion)
            return UInt8(CC_REFRESH)
        }
        let width = FileDescriptorSink.standardOutput().terminalWidth ?? 80
        // Redisplay moves the cursor up to the first row of a wrapped line before redrawing it: blank lines under
        // the list give it room, so the list is not drawn over.
        let cursorRow = (Self.prompt.count + before.count) / max(width, 1)
        FileDescriptorSink.standardOutput().write("\n" + Self.columns(completion.candidates.map(\.text), width: width)
            + String(repeating: "\n", count: cursorRow))
        return UInt8(CC_REDISPLAY)
    }

    /// Ctrl-C: move to the end, show `^C`, and end the line (the pushed newline runs libedit's own newline key,
    /// which leaves the cursor on a fresh line).
    fileprivate func interrupt() -> UInt8 {
        interruptPressed = true
        if let info = el_line(editor), let cursor = info.pointee.cursor, let last = info.pointee.lastchar, last > cursor {
            let tail = String(decoding: UnsafeRawBufferPointer(start: cursor, count: last - cursor), as: UTF8.self)
            _ = el_cursor(editor, Int32(tail.unicodeScalars.count))
        }
        _ = el_insertstr(editor, "^C")
        el_push(editor, "\n")
        return UInt8(CC_REFRESH)
    }

    /// Candidates laid out in columns across `width`, at most 200 shown.
    static func columns(_ items: [String], width: Int) -> String {
        let limit = 200
        let shown = Array(items.prefix(limit))
        let cell = (shown.map(\.count).max() ?? 0) + 2
        let perLine = max(1, width / max(cell, 1))
        let rows = (shown.count + perLine - 1) / perLine
        var out = ""
        for row in 0..<rows {
            var line = ""
            for column in 0..<perLine {
                let index = column * rows + row
                guard index < shown.count else { continue }
                let item = shown[index]
                line += item + String(repeating: " ", count: max(0, cell - item.count))
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        if items.count > limit { out += "… and \(items.count - limit) more\n" }
        return out
    }
}

private func input(_ editor: OpaquePointer?) -> EditLineInput? {
    guard let editor, let data = cedit_get_clientdata(editor) else { return nil }
    return Unmanaged<EditLineInput>.fromOpaque(data).takeUnretainedValue()
}

private let promptCallback: @convention(c) (OpaquePointer?) -> UnsafePointer<CChar>? = { editor in
    input(editor)?.currentPrompt
}

private let completeCallback: @convention(c) (OpaquePointer?, Int32) -> UInt8 = { editor, _ in
    input(editor)?.complete() ?? UInt8(CC_ERROR)
}

private let interruptCallback: @convention(c) (OpaquePointer?, Int32) -> UInt8 = { editor, _ in
    input(editor)?.interrupt() ?? UInt8(CC_ERROR)
}
