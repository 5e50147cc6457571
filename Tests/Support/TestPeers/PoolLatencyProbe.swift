import Foundation

/// Says on stderr when the test process's cooperative pool answers late.
///
/// Every test's `await` resumes on one pool of as many threads as cores, shared
/// by every test of the process. CPU-bound test code queued there delays the
/// others' continuations: a check that a time-out fired within N seconds then
/// fails although the time-out itself (on an event loop) fired on time. This
/// probe sleeps 100 ms in a loop and reports each wake-up that came more than
/// two seconds late, so such a failure in a CI log can be told from a product
/// that is slow.
public enum PoolLatencyProbe {
    /// Starts the probe once per process (the first use).
    public static let started: Void = {
        let start = ContinuousClock.now
        Task {  // the priority of the test that started it, as the tests' own continuations
            while true {
                let asked = ContinuousClock.now
                try? await Task.sleep(for: .milliseconds(100))
                let late = ContinuousClock.now - asked - .milliseconds(100)
                if late > .seconds(2) {
                    let line = "test process: the cooperative pool answered \(seconds(late)) late (\(seconds(asked - start)) after the first child process, priority \(Task.currentPriority))\n"
                    FileHandle.standardError.write(Data(line.utf8))
                }
            }
        }
    }()

    private static func seconds(_ d: Duration) -> String {
        String(format: "%.1f s", Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }
}
