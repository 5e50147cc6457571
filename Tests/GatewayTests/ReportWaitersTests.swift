import Testing
@testable import Gateway

/// Success REPORTs awaited by Message-ID: one that comes before the wait
/// (read before the SEND's 200), after it, never, or the session ends.
struct ReportWaitersTests {
    @Test func aReportBeforeOrAfterTheWait() async {
        let w = ReportWaiters()
        w.expect("early")
        w.resolve("early", status: 200)
        #expect(await w.wait(for: "early", within: .seconds(5)) == 200)
        w.expect("late")
        async let late = w.wait(for: "late", within: .seconds(5))
        try? await Task.sleep(for: .milliseconds(50))
        w.resolve("late", status: 481)
        #expect(await late == 481)
        w.resolve("unknown", status: 200)  // a REPORT for nothing we wait on: dropped
        #expect(await w.wait(for: "unknown", within: .seconds(5)) == nil)
    }

    /// The wait ends by itself (a loaded full run delayed a 100 ms timer by 12 s:
    /// no bound on when, only that it ends).
    @Test(.timeLimit(.minutes(1))) func noReportWithinTheWait() async {
        let w = ReportWaiters()
        w.expect("quiet")
        #expect(await w.wait(for: "quiet", within: .milliseconds(100)) == nil)
    }

    @Test func theSessionEnds() async {
        let w = ReportWaiters()
        w.expect("a")
        async let a = w.wait(for: "a", within: .seconds(30))
        try? await Task.sleep(for: .milliseconds(50))
        w.endAll()
        #expect(await a == nil)
        w.expect("b")
        w.forget("b")
        #expect(await w.wait(for: "b", within: .seconds(30)) == nil)
    }
}
