import NIOConcurrencyHelpers
import Testing

@testable import Gateway

/// The turns of `SendOrder`: each waits for the one taken before it for the
/// same endpoint, endpoints are independent, and nothing stays behind.
@Suite struct SendOrderTests {
    @Test func eachTurnWaitsForTheOneBeforeItAndNothingStays() async {
        let order = SendOrder()
        let places = (0..<50).map { _ in order.take("a") }
        let other = order.take("b")
        #expect(other.previous == nil, "another endpoint waits for nothing")
        #expect(places[0].previous == nil)
        let sent = NIOLockedValueBox<[Int]>([])
        // Started in reverse: each still sends after the one before it.
        await withTaskGroup(of: Void.self) { group in
            for (i, place) in places.enumerated().reversed() {
                group.addTask {
                    await place.previous?.wait()
                    sent.withLockedValue { $0.append(i) }
                    place.mine.sent()
                    place.mine.sent()  // twice is harmless
                }
            }
        }
        #expect(sent.withLockedValue { $0 } == Array(0..<50))
        #expect(order.pending == 1, "only b's unsent turn is left")
        other.mine.sent()
        #expect(order.pending == 0)
        // A turn taken after everything sent waits for nothing that is still owed.
        let late = order.take("a")
        #expect(late.previous == nil)
        late.mine.sent()
        #expect(order.pending == 0)
    }
}
