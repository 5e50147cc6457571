import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import TestPeers

/// The files in deploy/ are run, not just shipped: the unit through
/// systemd-analyze, the alert rules through promtool's rule tests, and every
/// metric the rules and the dashboard name against a running gateway's /metrics.
@Suite(.serialized)
struct DeployFilesTests {
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("deploy").path

    @Test func theUnitVerifiesAndItsExposureIsAtMostTwo() async throws {
        let analyze = try Peers.require("systemd-analyze", package: "systemd")
        let unit = Self.deploy + "/systemd/msrpgw.service"
        // Exposure on systemd's 0-100 scale: 20 is the 2.0 it prints.
        let security = try ChildProcess(analyze, ["security", "--offline=yes", "--threshold=20", unit], name: "systemd-analyze security")
        let status = try await security.wait(timeout: .seconds(60))
        let overall = security.stdout.split(separator: "\n").last { $0.contains("Overall exposure level") } ?? ""
        #expect(status == 0, "exposure above 2.0: \(overall)")
        #expect(overall.contains("msrpgw.service: 1.") || overall.contains("msrpgw.service: 0."), "\(overall)")
        // verify checks the command exists: point it at this build's binary (the package test verifies the installed unit).
        let directory = try Scratch.directory("unit")
        try String(contentsOfFile: unit, encoding: .utf8).replacingOccurrences(of: "/usr/bin/msrpgw", with: Executables.msrpgw)
            .write(toFile: directory + "/msrpgw.service", atomically: true, encoding: .utf8)
        let verify = try ChildProcess(analyze, ["verify", directory + "/msrpgw.service"], name: "systemd-analyze verify")
        #expect(try await verify.wait(timeout: .seconds(60)) == 0, "\(verify.stderr)")
        #expect(!verify.stderr.contains("msrpgw.service"), "\(verify.stderr)")
    }

    /// The Kamailio front with the example site settings beside it (every role
    /// on) passes Kamailio's own configuration check; the tests run each role.
    @Test func theKamailioExampleSiteChecks() async throws {
        let kamailio = try Peers.require("kamailio", package: "kamailio")
        let check = try ChildProcess("/bin/sh", ["-c", "cd '\(Self.deploy)/kamailio' && exec \(kamailio) -c -f kamailio.cfg"], name: "kamailio -c")
        #expect(try await check.wait(timeout: .seconds(60)) == 0, "\(check.stderr)")
        #expect((check.stdout + check.stderr).contains("tls: 192.0.2.10"), "\(check.stdout) \(check.stderr)")
    }

    @Test func alertRulesPassTheirTests() async throws {
        let promtool = try Peers.require("promtool", package: "prometheus")
        let check = try ChildProcess(promtool, ["check", "rules", Self.deploy + "/prometheus/alerts.yml"], name: "promtool check")
        #expect(try await check.wait(timeout: .seconds(60)) == 0, "\(check.stdout) \(check.stderr)")
        let test = try ChildProcess(promtool, ["test", "rules", Self.deploy + "/prometheus/alerts.test.yml"], name: "promtool test")
        #expect(try await test.wait(timeout: .seconds(60)) == 0, "\(test.stdout) \(test.stderr)")
    }

    /// Every `msrpgw_*` name in the alert rules and the dashboard is a metric a
    /// gateway exports from its start (before any traffic).
    @Test func everyMetricTheRulesAndDashboardNameIsExported() async throws {
        let gw = try await GatewayProcess(extra: GatewayProcess.routeToNowhere)
        defer { gw.stop() }
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: gw.api + "/metrics"), timeout: .seconds(10))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 22))
        let exported = Set(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { line in
            line.split(whereSeparator: { $0 == "{" || $0 == " " }).first.map(String.init)
        })
        for file in ["/prometheus/alerts.yml", "/grafana/msrpgw.json"] {
            let named = Self.metricNames(in: try String(contentsOfFile: Self.deploy + file, encoding: .utf8))
            #expect(!named.isEmpty)
            let missing = named.subtracting(exported)
            #expect(missing.isEmpty, "\(file) names metrics /metrics does not export: \(missing.sorted())")
        }
    }

    static func metricNames(in text: String) -> Set<String> {
        let pattern = /msrpgw_[a-z_]+/
        return Set(text.matches(of: pattern).map { String($0.output) })
    }
}
