import Foundation
import PackagePlugin

/// Embeds config/msrpgw.toml in the target it is applied to (the daemon) as
/// `EmbeddedDefaults.text`: `msrpgw serve` without --config runs on the file
/// the repository documents, rebuilt whenever the file changes.
@main
struct EmbedDefaults: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let input = context.package.directoryURL.appending(path: "config/msrpgw.toml")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedDefaults.swift")
        return [
            .buildCommand(
                displayName: "Embedding config/msrpgw.toml",
                executable: try context.tool(named: "EmbedText").url,
                arguments: [input.path(), output.path(), "EmbeddedDefaults"],
                inputFiles: [input],
                outputFiles: [output])
        ]
    }
}
