import Dispatch

/// Runs a test's CPU-bound work (a fuzzer, a long randomized walk) off the
/// cooperative pool, keeping its task (so `#expect` still knows its test).
///
/// Every `await` of every test in the process resumes on that pool, as many
/// threads as cores. A test body that computes for seconds without suspending
/// holds one of them all that time: a full run's two fuzzers and a 50,000-step
/// walk held the pool for ~12 s of CPU early on, and integration tests' awaits
/// came back seconds late (`PoolLatencyProbe`). On a thread of its own the
/// work is time-sliced by the kernel with everything else instead.
public enum OwnThread {
    public static func run<T: Sendable>(_ body: () throws -> T) async rethrows -> T {
        try await withTaskExecutorPreference(SerialThreadExecutor()) { try body() }
    }
}

/// A task executor on a serial Dispatch queue: Dispatch's worker threads, not
/// the cooperative pool's.
private final class SerialThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "msrpgw.tests.own-thread")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
