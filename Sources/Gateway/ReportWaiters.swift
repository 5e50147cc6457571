import NIOConcurrencyHelpers

/// Success REPORTs (RFC 4975 §7.1.2) awaited for messages the gateway sent on
/// one session: the `msrp` adapter asks for one when the message's sender, on
/// another network, wants to know that it reached the MSRP user (an XMPP
/// receipt). The REPORT names the message by its Message-ID; it may come before
/// the SEND's 200 is read, so a message is expected before it is sent.
final class ReportWaiters: Sendable {
    private enum Slot {
        case expected
        case arrived(Int)
        case waiting(CheckedContinuation<Int?, Never>, timer: Task<Void, Never>?)
    }

    private let slots = NIOLockedValueBox<[String: Slot]>([:])

    /// Before the SEND: a REPORT for `messageID` is kept until waited for.
    func expect(_ messageID: String) {
        slots.withLockedValue { $0[messageID] = .expected }
    }

    /// The status of the REPORT for an expected message, or nil when none came
    /// within `timeout` (or the session ended).
    func wait(for messageID: String, within timeout: Duration) async -> Int? {
        await withCheckedContinuation { k in
            let now: Int?? = slots.withLockedValue { s in
                switch s[messageID] {
                case .arrived(let status):
                    s[messageID] = nil
                    return .some(status)
                case .expected:
                    s[messageID] = .waiting(k, timer: nil)
                    return nil
                case .waiting, nil:
                    return .some(nil)
                }
            }
            if let now {
                k.resume(returning: now)
                return
            }
            // The time-out is cancelled when the REPORT comes: thousands of sleeping
            // tasks would otherwise outlive their messages by the whole wait.
            let timer = Task { [weak self] in
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                self?.resolve(messageID, status: nil)
            }
            let stillWaiting = slots.withLockedValue { s -> Bool in
                guard case .waiting(let k, nil) = s[messageID] else { return false }
                s[messageID] = .waiting(k, timer: timer)
                return true
            }
            if !stillWaiting { timer.cancel() }
        }
    }

    /// A REPORT came (nil: none will).
    func resolve(_ messageID: String, status: Int?) {
        let waiter = slots.withLockedValue { s -> CheckedContinuation<Int?, Never>? in
            switch s[messageID] {
            case .expected:
                s[messageID] = status.map { .arrived($0) }
                return nil
            case .waiting(let k, let timer):
                s[messageID] = nil
                timer?.cancel()
                return k
            case .arrived, nil:
                return nil
            }
        }
        waiter?.resume(returning: status)
    }

    /// Not waited for after all (the SEND failed).
    func forget(_ messageID: String) {
        resolve(messageID, status: nil)
        slots.withLockedValue { $0[messageID] = nil }
    }

    /// The session ended: no REPORT will come for anything.
    func endAll() {
        let waiters = slots.withLockedValue { s -> [CheckedContinuation<Int?, Never>] in
            defer { s = [:] }
            return s.values.compactMap {
                guard case .waiting(let k, let timer) = $0 else { return nil }
                timer?.cancel()
                return k
            }
        }
        for k in waiters { k.resume(returning: nil) }
    }
}
