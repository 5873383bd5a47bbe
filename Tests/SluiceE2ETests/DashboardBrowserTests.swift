import Foundation
import SluiceAPI
import SluiceCore
import SluiceHTTP
import SluiceTestSupport
import Testing

/// The dashboard in a real browser (Debian's headless Chromium through chromedriver) against the demo's set-up,
/// every part real: two `sluice-demo-app` pools behind Caddy, Prometheus scraping them, load through Caddy, and
/// `sluice serve` (the binary). Screenshots go to `.build/test-output/dashboard/` (`$SLUICE_TEST_OUTPUT` instead).
@Suite(.serialized) struct DashboardBrowserTests {
    /// The demo's world with the third stage held long, so a test can act while the rollout is in it.
    struct World {
        let demo: DemoWorld
        var directory: String { demo.directory }
        var serve: ServeProcess { demo.serve }
        var caddy: CaddyServer { demo.caddy }
        /// The strategy's checks, in its order.
        var checks: [String] { demo.strategy.analysis.checks.map(\.name) }

        init(hold: String, lastHold: String) async throws {
            demo = try await DemoWorld(
                "sluice-dashboard", hold: hold, rate: 100, people: ["olivia": .oncall, "victor": .viewer]
            ) {
                $0.replacingOccurrences(
                    of: "{name: full, weight: 100, hold: \(hold)}", with: "{name: full, weight: 100, hold: \(lastHold)}")
            }
        }

        func stop() { demo.stop() }

        /// One request to the API with the admin token; the answer's JSON object.
        func api(_ method: String, _ path: String, _ body: String? = nil) async throws -> [String: Any] {
            let token = try String(contentsOfFile: serve.tokenPath, encoding: .utf8)
            let response = try await CurlClient().execute(
                HTTPRequest(
                    method: method, url: serve.url + path,
                    headers: [("Authorization", "Bearer " + token), ("Content-Type", "application/json")],
                    body: body.map { Data($0.utf8) }, retry: .init(maxAttempts: 1)))
            let text = String(decoding: response.body, as: UTF8.self)
            guard (200..<300).contains(response.status),
                let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any]
            else { throw SupportError("\(method) \(path): HTTP \(response.status) \(text)") }
            return object
        }

        /// Starts a rollout of v2 through the API; returns its id.
        func startRollout() async throws -> String {
            let rollout = try await api("POST", "/v1/rollouts", #"{"strategy": "demo", "version": "v2"}"#)
            return try #require(rollout["id"] as? String, "no id in \(rollout)")
        }

        /// The canary pool's weight in Caddy's running config, read from its admin API.
        func caddyCanaryWeight() async throws -> Int? {
            let response = try await CurlClient().execute(
                HTTPRequest(url: caddy.adminURL + "/id/demo/load_balancing/selection_policy/weights"))
            let weights = try JSONSerialization.jsonObject(with: response.body) as? [Int]
            return weights?.last
        }
    }

    /// Where the screenshots go.
    static var outputDirectory: String {
        ProcessInfo.processInfo.environment["SLUICE_TEST_OUTPUT"].map { $0 + "/dashboard" }
            ?? repositoryRoot() + "/.build/test-output/dashboard"
    }

    /// Opens the dashboard and signs in with `token` through the form, as a person would.
    static func signIn(_ browser: Browser, at url: String, token: String) async throws {
        try await browser.open(url + "/")
        try await waitUntil("the sign-in form", timeout: .seconds(20)) {
            try await browser.run("return !document.getElementById('signin').hidden;") as? Bool == true
        }
        try await browser.type("#token", token)
        try await browser.click("#signin-button")
        try await waitUntil("the overview after signing in", timeout: .seconds(20)) {
            try await browser.count("#overview tr[data-strategy]") > 0
        }
    }

    @Test func aRolloutProgressesLiveAndOnCallRollsItBackFromThePage() async throws {
        let world = try await World(hold: "3s", lastHold: "300s")
        defer { world.stop() }
        try await Self.withBrowser(world) { browser in try await progressAndRollBack(world, browser) }
    }

    /// A browser for `body`; when it fails, a screenshot (`failed.png`), the console and the server's log say why.
    static func withBrowser(_ world: World, _ body: (Browser) async throws -> Void) async throws {
        let browser = try await Browser.start(width: 1280, height: 1000, directory: world.directory)
        do {
            try await body(browser)
        } catch {
            try? await browser.screenshot(to: outputDirectory + "/failed.png")
            let console = (try? await browser.console()) ?? []
            await browser.close()
            let diagnosis = await world.demo.diagnosis()
            throw SupportError("\(error)\nbrowser console:\n\(console.joined(separator: "\n"))\n\(diagnosis)")
        }
        await browser.close()
    }

    private func progressAndRollBack(_ world: World, _ browser: Browser) async throws {
        try await Self.signIn(browser, at: world.serve.url, token: world.serve.tokens["olivia"]!)
        #expect(try await browser.text("#who") == "olivia · oncall")
        let id = try await world.startRollout()

        // The overview row follows the rollout without a reload.
        try await waitUntil("the overview to show the rollout", timeout: .seconds(20)) {
            try await browser.count("#overview tr[data-rollout='\(id)']") == 1
        }
        try await browser.click("#overview tr[data-rollout='\(id)'] a[href^='#/rollouts/']")
        try await waitUntil("the rollout page", timeout: .seconds(20)) { try await browser.text("#r-stage") != nil }
        // A reload would forget this.
        try await browser.run("window.sluiceTestMarker = 'same page';")

        // Stage by stage, as the event stream tells the page: 1/3, 2/3, 3/3 all seen in order, each with its weight.
        var seen: [String] = []
        try await waitUntil("the page to show stages 1, 2 and 3", timeout: .seconds(90), interval: .milliseconds(100)) {
            if let stage = try await browser.text("#r-stage"), let first = stage.split(separator: " ").first,
                seen.last != String(first)
            {
                seen.append(String(first))
            }
            return seen.contains("3/3")
        }
        #expect(seen.filter { $0 != "—" }.starts(with: ["1/3", "2/3", "3/3"]), "stages seen: \(seen)")
        try await waitUntil("the router-confirmed 100 %", timeout: .seconds(20)) {
            let observed = try await browser.attribute("#r-weight", "data-observed")
            let confirmed = try await browser.attribute("#r-weight", "data-confirmed")
            return observed == "100" && confirmed == "true"
        }
        #expect(try await browser.count("#timeline tr[data-started='true']") == 3)
        try await waitUntil("a chart per check with samples", timeout: .seconds(20)) {
            try await browser.count("figure.check-chart[data-check] circle") >= 3
        }
        let charts = try await browser.run(
            "return [...document.querySelectorAll('figure.check-chart')].map((f) => f.dataset.check);") as? [String]
        #expect(charts == world.checks, "a chart per check, in the strategy's order")
        try await waitUntil("the overview's live dot", timeout: .seconds(10)) {
            try await browser.text("#live") == "live"
        }
        try await browser.resize(width: 1280, height: 1500)
        try await browser.screenshot(to: Self.outputDirectory + "/rollout-1280.png")
        try await browser.resize(width: 390, height: 1400)
        try await browser.screenshot(to: Self.outputDirectory + "/rollout-390.png")
        try await browser.resize(width: 1280, height: 1000)

        // Rollback: the button opens a dialog; the reason is required; then the router confirms 0 %.
        let reason = "<script>window.sluiceInjected = 1</script> p99 up <b>3x</b>"
        try await browser.click("#action-rollback")
        #expect(try await browser.run("return document.getElementById('rollback-dialog').open;") as? Bool == true)
        try await browser.type("#rollback-reason", "   ")
        try await browser.click("#rollback-confirm")
        #expect(try await browser.text("#rollback-error")?.contains("Say why") == true)
        #expect(try await world.api("GET", "/v1/rollouts/\(id)")["phase"] as? String == "Progressing")
        try await browser.type("#rollback-reason", reason)
        try await browser.click("#rollback-confirm")
        try await waitUntil("the page to show the router-confirmed weight 0", timeout: .seconds(30)) {
            let observed = try await browser.attribute("#r-weight", "data-observed")
            let confirmed = try await browser.attribute("#r-weight", "data-confirmed")
            let phase = try await browser.text("#r-phase")
            return observed == "0" && confirmed == "true" && phase == "RolledBack"
        }
        #expect(try await world.caddyCanaryWeight() == 0, "Caddy's canary weight after the rollback")
        #expect(try await browser.text("#r-weight") == "0%")

        // The reason, with its markup, is shown as text: no element was made of it and no script ran.
        let command = """
            return [...document.querySelectorAll('#commands li')].some((li) =>
              li.querySelector('.actor').textContent === 'olivia'
                && li.querySelector('.message').textContent.includes(arguments[0]));
            """
        try await waitUntil("the command with its actor and reason", timeout: .seconds(10)) {
            try await browser.run(command, [reason]) as? Bool == true
        }
        #expect(try await browser.text("#r-end") == reason)
        #expect(try await browser.run("return window.sluiceInjected === undefined;") as? Bool == true)
        #expect(try await browser.count("#view script, #view b") == 0)
        #expect(try await browser.run("return window.sluiceTestMarker;") as? String == "same page", "the page reloaded")
        #expect(try await browser.count("#event-log li.t-RolledBack") == 1)
        try await browser.screenshot(to: Self.outputDirectory + "/rolled-back-1280.png")

        try await browser.open(world.serve.url + "/ui/#/")
        try await waitUntil("the overview", timeout: .seconds(20)) {
            try await browser.text("#overview tr[data-rollout='\(id)'] .phase") == "RolledBack"
        }
        // Availability at 1 (no errors) is far from its floor of 0.999: a passing bar, not an amber one.
        #expect(
            try await browser.attribute(
                "#overview tr[data-rollout='\(id)'] .check[data-check='availability'] .bar-fill", "class") == "bar-fill v-pass")
        try await browser.screenshot(to: Self.outputDirectory + "/overview-1280.png")
        try await browser.resize(width: 390, height: 900)
        try await browser.screenshot(to: Self.outputDirectory + "/overview-390.png")
        let violations = try await browser.console().filter { $0.contains("Content Security Policy") }
        #expect(violations.isEmpty, "CSP violations: \(violations)")
    }

    @Test func aViewerSeesNoActionsAndForgedPostsAreRefused() async throws {
        let world = try await World(hold: "300s", lastHold: "300s")
        defer { world.stop() }
        let id = try await world.startRollout()
        try await Self.withBrowser(world) { browser in try await viewerAndForgery(world, browser, id) }
    }

    private func viewerAndForgery(_ world: World, _ browser: Browser, _ id: String) async throws {
        try await Self.signIn(browser, at: world.serve.url, token: world.serve.tokens["victor"]!)
        try await browser.open(world.serve.url + "/ui/#/rollouts/\(id)")
        try await waitUntil("the rollout page in stage 1", timeout: .seconds(30)) {
            try await browser.text("#r-stage")?.hasPrefix("1/3") == true
        }
        #expect(try await browser.count("#view button, [id^='action-']") == 0, "a viewer sees no action")
        let shown = try await browser.run("return document.getElementById('view').innerText;") as? String ?? ""
        #expect(!shown.contains("null") && !shown.contains("undefined"), "stray text where a section is left out: \(shown)")
        #expect(try await browser.text("#who") == "victor · viewer")

        // A POST with the viewer's session and its CSRF token: the API refuses the role.
        let forge = """
            const [path, withCSRF, done] = arguments;
            fetch('/v1/session').then((r) => r.json()).then((session) => {
              const headers = {'Content-Type': 'application/json'};
              if (withCSRF) headers['X-CSRF-Token'] = session.csrf;
              return fetch(path, {method: 'POST', headers, body: JSON.stringify({reason: 'forged'})});
            }).then((r) => done(r.status), (e) => done(String(e)));
            """
        let rollback = "/v1/rollouts/\(id)/rollback"
        #expect(try await browser.runAsync(forge, [rollback, true]) as? Int == 403)
        #expect(try await browser.runAsync(forge, [rollback, false]) as? Int == 403)
        try await browser.screenshot(to: Self.outputDirectory + "/viewer-1280.png")

        // On-call's session without the CSRF token: refused too; the same request with it would be let through.
        try await browser.click("#signout")
        try await waitUntil("the sign-in form again", timeout: .seconds(10)) {
            try await browser.run("return !document.getElementById('signin').hidden;") as? Bool == true
        }
        // From the keyboard: the token and Enter.
        try await browser.type("#token", world.serve.tokens["olivia"]! + "\u{E007}")
        try await waitUntil("on-call signed in", timeout: .seconds(20)) {
            try await browser.text("#who") == "olivia · oncall"
        }
        #expect(try await browser.runAsync(forge, [rollback, false]) as? Int == 403)
        #expect(try await browser.runAsync(forge, ["/v1/rollouts/\(id)/pause", false]) as? Int == 403)
        let after = try await world.api("GET", "/v1/rollouts/\(id)")
        #expect(after["phase"] as? String == "Progressing", "the forged requests changed nothing: \(after)")
        try await waitUntil("on-call's rollback button", timeout: .seconds(20)) {
            try await browser.count("#action-rollback") == 1
        }

        // Keyboard only: Tab reaches the rollback button, Enter opens the dialog on the reason, Escape closes it.
        try await browser.run("document.getElementById('main').focus();")
        var reached = false
        for _ in 0..<40 where !reached {
            try await browser.press("\u{E004}")
            reached = try await browser.run("return document.activeElement.id;") as? String == "action-rollback"
        }
        #expect(reached, "Tab never reached the rollback button")
        try await browser.press("\u{E007}")
        #expect(try await browser.run("return document.getElementById('rollback-dialog').open;") as? Bool == true)
        #expect(try await browser.run("return document.activeElement.id;") as? String == "rollback-reason")
        try await browser.press("\u{E00C}")
        try await waitUntil("Escape to close the dialog", timeout: .seconds(5)) {
            try await browser.run("return document.getElementById('rollback-dialog').open;") as? Bool == false
        }
        // Every control is labelled: inputs by a <label>, buttons by their text.
        let unlabelled =
            try await browser.run(
                """
                return [...document.querySelectorAll('input, select, textarea')].filter((e) => e.labels.length === 0)
                  .concat([...document.querySelectorAll('button')].filter((b) => !b.textContent.trim()))
                  .map((e) => e.id || e.outerHTML.slice(0, 80));
                """) as? [String]
        #expect(unlabelled == [], "controls without a label")
        #expect(try await world.api("GET", "/v1/rollouts/\(id)")["phase"] as? String == "Progressing")
    }
}

/// scripts/demo's flags, read before it installs or builds anything: `--keep` is one, anything else is refused.
@Suite struct DemoScriptFlagTests {
    @Test func demoKnowsKeepAndRefusesOtherArguments() async throws {
        let script = repositoryRoot() + "/scripts/demo"
        let help = try await run("/bin/bash", [script, "--help"], timeout: .seconds(10))
        #expect(help.status == 0)
        #expect(help.stdout.contains("--keep"), "\(help.stdout)")
        let wrong = try await run("/bin/bash", [script, "--kepp"], timeout: .seconds(10))
        #expect(wrong.status == 64)
        #expect(wrong.stderr.contains("unknown argument --kepp"), "\(wrong.stderr)")
    }
}
