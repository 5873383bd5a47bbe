import ArgumentParser
import Foundation
import Logging
import SluiceCore
import SluiceDemo
import SluiceHTTP

/// `sluice-demo-app`: the demo service (default), a bounded load generator, and the demo's report.
@main
struct DemoAppCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-demo-app",
        abstract: "The service, the load and the report of Sluice's demo.",
        subcommands: [Serve.self, Load.self, Report.self],
        defaultSubcommand: Serve.self
    )
}

extension DemoAppCommand {
    /// `sluice-demo-app [serve] --port P --version V [--error-rate R] [--latency-ms N] [--app NAME]`.
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve GET / (answering with its version), /metrics and /control on 127.0.0.1.")

        @Option(help: "Port on 127.0.0.1.") var port: Int
        @Option(help: "The version this instance answers with (body and X-Demo-Version).") var version: String
        @Option(help: "Share of requests answered with 500, 0...1.") var errorRate: Double = 0
        @Option(help: "Latency added to every request, in milliseconds.") var latencyMs: Int = 0
        @Option(help: "The `app` label of the metrics.") var app: String = "demo"

        func run() async throws {
            guard (1...65535).contains(port) else { throw ValidationError("--port must be within 1...65535") }
            let behaviour: DemoBehaviour
            do { behaviour = try DemoBehaviour(errorRate: errorRate, latencyMs: latencyMs) } catch {
                throw ValidationError("\(error)")
            }
            var logger = Logger(label: "sluice-demo-app")
            logger.logLevel = .warning
            let demo = DemoApp(app: app, version: version, behaviour: behaviour)
            try await demo.buildApplication(port: port, logger: logger).runService()
        }
    }

    /// `sluice-demo-app load --url U --rps N --duration S [--log FILE]`.
    struct Load: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a bounded load and log each answer's time, version and status.")

        @Option(help: "Where to send GET requests.") var url: String
        @Option(help: "Requests per second.") var rps: Int = 300
        @Option(help: "Seconds of load at most.") var duration: Int = 300
        @Option(help: "Requests at most (default rps × duration).") var maxRequests: Int?
        @Option(help: "Append one line per answer: UNIX_MS VERSION STATUS RETRIES [FAILURE].") var log: String?
        @Option(help: "Send a GET again at most this often when the connection was refused or reset unanswered.")
        var retries: Int = 2

        func run() async throws {
            let generator: LoadGenerator
            do {
                generator = try LoadGenerator(
                    url: url, rate: rps, duration: .seconds(duration), maxRequests: maxRequests,
                    connectionRetries: retries)
            } catch { throw ValidationError("\(error)") }
            let sink = try log.map(LogSink.init(path:))
            let traffic = TrafficLog()
            let client = try CurlClient()
            // SIGTERM/SIGINT end the load early and still print the summary.
            let task = Task { await generator.run(client: client) { sample in
                traffic.append(sample)
                sink?.write(sample.line)
            } }
            let signals = [SIGTERM, SIGINT].map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number)
                source.setEventHandler { task.cancel() }
                source.resume()
                return source
            }
            let sent = await task.value
            signals.forEach { $0.cancel() }
            var counts = traffic.counts(from: 0, to: .max).map { "\($0.key)=\($0.value)" }
            counts.sort()
            print(
                "load: \(sent) requests, \(traffic.failures) failed, \(traffic.retried) answered after a connection "
                    + "retry; answers by version: \(counts.joined(separator: " "))")
        }
    }

    /// `sluice-demo-app report --events FILE --traffic FILE`.
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time per stage, the split measured at the load balancer, and breach-to-stable time.")

        @Option(help: "The output of `sluice events -o json`.") var events: String
        @Option(help: "The traffic log of `sluice-demo-app load --log`.") var traffic: String

        func run() throws {
            guard let data = FileManager.default.contents(atPath: events) else {
                throw ValidationError("cannot read the event log \(events)")
            }
            var parsed: [Event] = []
            for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
                do { parsed.append(try Event.fromLogLine(line)) } catch {
                    throw ValidationError("\(events):\(index + 1): not an event: \(error)")
                }
            }
            print(DemoReport(events: parsed, traffic: try TrafficLog(contentsOf: traffic)).text, terminator: "")
        }
    }
}

/// An append-only file the load generator writes its answers to.
final class LogSink: @unchecked Sendable {
    private let handle: FileHandle
    private let lock = NSLock()

    init(path: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationError("cannot write \(path)") }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    func write(_ line: String) {
        lock.lock()
        handle.write(Data(line.utf8))
        lock.unlock()
    }
}
