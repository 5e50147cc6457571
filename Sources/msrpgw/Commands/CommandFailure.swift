import ArgumentParser
import Foundation

/// Runs `work`; an error is written to standard error and ends the command with status 1.
func exitOnFailure(_ work: () throws -> Void) throws {
    do { try work() } catch {
        FileHandle.standardError.write(Data("msrpgw: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// The configuration, or exit status 2 with the reason on standard error.
func loadOrExit(_ path: String?) throws -> DaemonConfiguration {
    do { return try DaemonConfiguration.load(path: path) } catch {
        FileHandle.standardError.write(Data("msrpgw: \(error)\n".utf8))
        throw ExitCode(2)
    }
}
