import Dispatch
import Foundation

/// Progress of long work on standard error. On a terminal: one line redrawn in place, also every
/// half second between updates so that the rate and the time left keep moving while a batch is
/// applied. Off a terminal (a script, a service's journal): a line every
/// `$SYNCNODE_PROGRESS_SECONDS` (default 10) while the work lasts, so a long job shows it is alive.
/// With `--json` nothing is drawn: standard error stays for errors.
final class ProgressDisplay: @unchecked Sendable {
    private let lock = NSLock()
    private let onTerminal: Bool
    private let started = Date()
    private var render: (@Sendable (Double) -> String)?
    private var timer: DispatchSourceTimer?
    private var drawn = false

    init(enabled: Bool) {
        onTerminal = isatty(2) == 1
        guard enabled else { return }
        let seconds =
            onTerminal
            ? 0.5 : ProcessInfo.processInfo.environment["SYNCNODE_PROGRESS_SECONDS"].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } ?? 10
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + seconds, repeating: seconds)
        timer.setEventHandler { [weak self] in self?.draw() }
        timer.resume()
        self.timer = timer
    }

    /// The text now, given the seconds since the work started.
    func update(_ render: @escaping @Sendable (Double) -> String) {
        lock.withLock { self.render = render }
        if onTerminal { draw() }
    }

    /// Stops drawing and clears the line.
    func finish() {
        lock.withLock {
            timer?.cancel()
            timer = nil
            if drawn && onTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            drawn = false
            render = nil
        }
    }

    deinit { timer?.cancel() }

    private func draw() {
        lock.withLock {
            guard timer != nil, let render else { return }
            let text = render(Date().timeIntervalSince(started))
            FileHandle.standardError.write(Data((onTerminal ? "\r\u{1B}[K" + text : text + "\n").utf8))
            drawn = true
        }
    }
}
