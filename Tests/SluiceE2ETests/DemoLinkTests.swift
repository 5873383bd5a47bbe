import Foundation
import SluiceTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The demo is its own executable: nothing of the `SluiceDemo` module is linked into `sluice`.
@Suite struct DemoLinkTests {
    @Test func theSluiceBinaryHoldsNothingOfTheDemo() throws {
        // Every Swift symbol of the module carries its name (mangled `10SluiceDemo...`); the demo app, which
        // links it, is the control that the search finds it when it is there.
        let demo = try Self.occurs("SluiceDemo", in: demoAppBinary())
        #expect(demo, "sluice-demo-app should hold the SluiceDemo module's symbols")
        let sluice = try Self.occurs("SluiceDemo", in: sluiceBinary())
        #expect(!sluice, "the sluice binary links the demo's module SluiceDemo; it must stay out")
    }

    /// Whether `needle` occurs in the file at `path` (memory-mapped; memchr for its first byte, then memcmp).
    static func occurs(_ needle: String, in path: String) throws -> Bool {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        let pattern = Array(needle.utf8)
        return data.withUnsafeBytes { haystack in
            guard let base = haystack.baseAddress, haystack.count >= pattern.count else { return false }
            var offset = 0
            let last = haystack.count - pattern.count
            while offset <= last, let hit = memchr(base + offset, Int32(pattern[0]), last - offset + 1) {
                if memcmp(hit, pattern, pattern.count) == 0 { return true }
                offset = base.distance(to: UnsafeRawPointer(hit)) + 1
            }
            return false
        }
    }
}
