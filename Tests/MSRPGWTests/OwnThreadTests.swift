import Foundation
import Testing
import TestPeers

/// `OwnThread` (test support): the work still belongs to its test.
@Suite struct OwnThreadTests {
    @Test func anExpectationInsideIsTheTests() async {
        await withKnownIssue("recorded inside OwnThread.run, attributed to this test") {
            await OwnThread.run { #expect(Bool(false), "inside") }
        }
    }

    @Test func itReturnsWhatTheWorkReturns() async throws {
        struct Failed: Error {}
        #expect(await OwnThread.run { (1...1000).reduce(0, +) } == 500_500)
        await #expect(throws: Failed.self) { try await OwnThread.run { throw Failed() } }
    }
}
