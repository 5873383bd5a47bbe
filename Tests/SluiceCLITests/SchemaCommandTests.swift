import Foundation
import SluiceTestSupport
import Testing

/// `sluice schema`, run as a subprocess, checked with Python's `jsonschema` (Draft 2020-12) against
/// every example in strategies/ and against variants that must be rejected.
@Suite struct SchemaCommandTests {
    /// Reads YAML as YAML 1.2 does (only true/false are booleans, so `on:` stays a key), as Sluice
    /// and editors' YAML extensions do; validates every document of strategies/*.yaml; then checks
    /// that broken variants of checkout.yaml fail.
    static let script = #"""
        import copy, glob, json, re, sys
        import jsonschema, yaml

        class Loader(yaml.SafeLoader):
            pass

        Loader.yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers
                    if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
            for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }
        Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                     re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))

        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        count = 0
        for path in sorted(glob.glob("strategies/*.yaml")):
            for doc in yaml.load_all(open(path), Loader=Loader):
                if doc is None:
                    continue
                count += 1
                for error in validator.iter_errors(doc):
                    print(f"{path}: {error.json_path}: {error.message}")
        print(f"valid: {count}")

        base = yaml.load(open("strategies/checkout.yaml"), Loader=Loader)
        def variant(change):
            doc = copy.deepcopy(base)
            change(doc)
            return doc
        variants = {
            "unknown key": lambda d: d["spec"].update(stagez=[]),
            "weight 0": lambda d: d["spec"]["stages"][0].update(weight=0),
            "hold not a duration": lambda d: d["spec"]["stages"][0].update(hold="30 minutes"),
            "hold and pause": lambda d: d["spec"]["stages"][0].update(pause=True),
            "two routers": lambda d: d["spec"]["traffic"].update(nginxIngress={"ingress": "a", "canaryService": "b"}),
            "no traffic": lambda d: d["spec"].pop("traffic"),
            "bad name": lambda d: d["metadata"].update(name="Checkout"),
            "no threshold": lambda d: d["spec"]["analysis"]["checks"][0].pop("max"),
            "unknown event": lambda d: d["spec"].update(notifications=[{"webhook": "https://x", "on": ["Nope"]}]),
            "deployment and upstreams": lambda d: d["spec"]["target"].update(upstreams={"stable": ["a:1"], "canary": ["b:1"]}),
        }
        for name, change in variants.items():
            if validator.is_valid(variant(change)):
                print(f"accepted: {name}")
        print(f"variants: {len(variants)}")
        """#

    @Test func theSchemaValidatesEveryExampleAndRejectsBrokenOnes() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let schema = try await runSluice(["schema"])
        #expect(schema.status == 0)
        let schemaPath = directory + "/strategy.schema.json"
        try schema.stdout.write(toFile: schemaPath, atomically: true, encoding: .utf8)

        let object = try JSONSerialization.jsonObject(with: Data(schema.stdout.utf8)) as? [String: Any]
        #expect(object?["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")

        let result = try await run(
            toolPath("python"), ["-c", Self.script, schemaPath], in: repositoryRoot(),
            installHint: "bash scripts/setup (a venv in .tools with jsonschema and pyyaml)"
        )
        #expect(result.status == 0, "\(result.stderr)")
        let documents = try FileManager.default.contentsOfDirectory(atPath: repositoryRoot() + "/strategies")
            .filter { $0.hasSuffix(".yaml") }
            .map { try String(contentsOfFile: repositoryRoot() + "/strategies/" + $0, encoding: .utf8) }
            .map { $0.components(separatedBy: "\nkind: Strategy\n").count - 1 }
            .reduce(0, +)
        #expect(documents >= 6)
        #expect(result.stdout == "valid: \(documents)\nvariants: 10\n")
    }
}
