import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// A parsed XML element: just names, text and children, which is all the AWS query APIs need.
struct XMLElementTree: Sendable {
    var name: String
    var text: String
    var children: [XMLElementTree]

    /// Parses `data`; nil when it is not well-formed XML.
    static func parse(_ data: Data) -> XMLElementTree? {
        let builder = Builder()
        let parser = XMLParser(data: data)
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else { return nil }
        return root
    }

    /// The first direct child named `name`.
    func child(_ name: String) -> XMLElementTree? { children.first { $0.name == name } }

    /// The direct children named `name`.
    func children(_ name: String) -> [XMLElementTree] { children.filter { $0.name == name } }

    /// Follows a path of direct children, e.g. `["ForwardConfig", "TargetGroups"]`.
    func path(_ names: String...) -> XMLElementTree? {
        names.reduce(Optional(self)) { element, name in element?.child(name) }
    }

    /// The first element named `name` at any depth, this one included (depth first).
    func first(_ name: String) -> XMLElementTree? {
        if self.name == name { return self }
        for child in children {
            if let found = child.first(name) { return found }
        }
        return nil
    }

    /// The trimmed text of the direct child `name`.
    func value(_ name: String) -> String? {
        child(name).map { $0.text.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    private final class Builder: NSObject, XMLParserDelegate {
        var stack: [XMLElementTree] = []
        var root: XMLElementTree?

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
            qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]
        ) {
            stack.append(XMLElementTree(name: elementName, text: "", children: []))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            guard !stack.isEmpty else { return }
            stack[stack.count - 1].text += string
        }

        func parser(
            _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?
        ) {
            guard let element = stack.popLast() else { return }
            if stack.isEmpty {
                root = element
            } else {
                stack[stack.count - 1].children.append(element)
            }
        }
    }
}
