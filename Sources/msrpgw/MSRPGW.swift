import ArgumentParser

@main
struct MSRPGW: AsyncParsableCommand {
    /// Kept equal to deploy/debian/changelog's (DeployFilesTests checks).
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "msrpgw",
        abstract: "An MSRP (RFC 4975) CPIM gateway with a durable store-and-forward queue.",
        discussion: """
            `demo` runs the whole gateway on loopback with a webhook sink and an MSRP \
            client: messages in, signed webhooks out, REPORTs and IMDNs back. `serve` \
            runs the daemon; `check-config` checks a configuration; `backup` and \
            `restore` copy the queue while it runs and bring a copy back; `send` and \
            `receive` are an MSRP client and sink for scripts.
            """,
        version: version,
        subcommands: [
            ServeCommand.self, CheckConfigCommand.self, BackupCommand.self, RestoreCommand.self, DemoCommand.self, SendCommand.self, ReceiveCommand.self,
            MSRPDemoCommand.self,
        ]
    )
}
