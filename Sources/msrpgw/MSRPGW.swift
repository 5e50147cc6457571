import ArgumentParser

@main
struct MSRPGW: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "msrpgw",
        abstract: "An MSRP (RFC 4975) gateway.",
        discussion: """
            This build carries the MSRP wire core and transport. `demo` runs two MSRP \
            endpoints on loopback and shows messages, chunking, responses and REPORTs; \
            `receive` and `send` are an MSRP sink and client for scripts.
            """,
        subcommands: [DemoCommand.self, ReceiveCommand.self, SendCommand.self, QueueTortureCommand.self]
    )
}
