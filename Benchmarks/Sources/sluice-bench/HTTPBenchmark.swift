import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import SluiceHTTP

/// `sluice-bench http`: CurlClient and AsyncHTTPClient side by side against the same keep-alive loopback server.
struct HTTPBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http",
        abstract: "Requests per second and p50/p99 latency of CurlClient vs AsyncHTTPClient over loopback."
    )

    @Option(help: "Requests measured per client, concurrency and round.")
    var requests = 20_000

    @Option(help: "Rounds; the table shows medians over rounds.")
    var rounds = 5

    @Option(parsing: .upToNextOption, help: "Requests in flight.")
    var concurrency = [1, 16, 128]

    @Option(help: "Event-loop threads of the loopback server.")
    var serverThreads = 1

    func run() async throws {
        let server = try BenchServer(threads: serverThreads)
        defer { try? server.shutdown() }
        let url = "http://127.0.0.1:\(server.port)/bench"
        let curl = try CurlClient()
        var configuration = AsyncHTTPClient.HTTPClient.Configuration()
        // The same connection budget as curl's (unlimited per host): one connection per request in flight.
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency.max() ?? 1)
        let ahc = AsyncHTTPClient.HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)

        let clients: [(name: String, send: @Sendable () async throws -> Void)] = [
            ("CurlClient", {
                let response = try await curl.execute(SluiceHTTP.HTTPRequest(url: url))
                guard response.status == 200, response.body.count == 2 else { throw BenchError("curl: bad answer") }
            }),
            ("AsyncHTTPClient 1.37", {
                let response = try await ahc.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
                let body = try await response.body.collect(upTo: 1 << 20)
                guard response.status == .ok, body.readableBytes == 2 else { throw BenchError("ahc: bad answer") }
            }),
        ]

        print("sluice-bench http: \(requests) requests per client, concurrency and round; \(rounds) rounds; "
            + "server: SwiftNIO, \(serverThreads) thread(s); \(ProcessInfo.processInfo.activeProcessorCount) cores")
        var samples: [String: [Int: [Sample]]] = [:]
        var ratios: [Int: [Double]] = [:]
        for round in 1...rounds {
            for level in concurrency {
                // Alternate who goes first so neither client always runs on a warmer machine.
                let order = round % 2 == 1 ? clients : clients.reversed()
                var roundSamples: [String: Sample] = [:]
                for client in order {
                    _ = try await measure(concurrency: level, requests: max(level * 20, 500), send: client.send)
                    let sample = try await measure(concurrency: level, requests: requests, send: client.send)
                    samples[client.name, default: [:]][level, default: []].append(sample)
                    roundSamples[client.name] = sample
                    print(String(format: "round %d  c=%-4d %-22@ %9.0f req/s  p50 %7.1f us  p99 %7.1f us",
                        round, level, client.name as NSString, sample.rps, sample.p50, sample.p99))
                }
                if let mine = roundSamples[clients[0].name], let theirs = roundSamples[clients[1].name] {
                    ratios[level, default: []].append(mine.rps / theirs.rps)
                }
            }
        }
        print("")
        print("| in flight | client | req/s (median) | p50 µs | p99 µs | CurlClient/AHC req/s (median of rounds) |")
        print("|---:|---|---:|---:|---:|---:|")
        for level in concurrency {
            for client in clients {
                let runs = samples[client.name]?[level] ?? []
                let ratio = client.name == clients[0].name
                    ? String(format: "%.2f×", median(ratios[level] ?? [])) : ""
                print(String(format: "| %d | %@ | %.0f | %.1f | %.1f | %@ |", level, client.name as NSString,
                    median(runs.map(\.rps)), median(runs.map(\.p50)), median(runs.map(\.p99)), ratio as NSString))
            }
        }
        try await ahc.shutdown()
    }

    /// Runs `requests` requests with `concurrency` workers, each sending its share back to back.
    private func measure(concurrency: Int, requests: Int, send: @escaping @Sendable () async throws -> Void)
        async throws -> Sample
    {
        let clock = ContinuousClock()
        let start = clock.now
        var latencies = try await withThrowingTaskGroup(of: [Duration].self) { group in
            for worker in 0..<concurrency {
                let share = requests / concurrency + (worker < requests % concurrency ? 1 : 0)
                group.addTask {
                    var latencies: [Duration] = []
                    latencies.reserveCapacity(share)
                    for _ in 0..<share {
                        let sent = clock.now
                        try await send()
                        latencies.append(clock.now - sent)
                    }
                    return latencies
                }
            }
            var all: [Duration] = []
            for try await part in group { all += part }
            return all
        }
        let elapsed = clock.now - start
        latencies.sort()
        func micros(_ quantile: Double) -> Double {
            let index = min(latencies.count - 1, Int(Double(latencies.count) * quantile))
            return latencies[index].seconds * 1_000_000
        }
        return Sample(rps: Double(latencies.count) / elapsed.seconds, p50: micros(0.5), p99: micros(0.99))
    }
}

struct Sample {
    var rps: Double
    var p50: Double
    var p99: Double
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
