/// The HTML elements that change how text is laid out; every other element is inline and only its text
/// matters, so the scanner reports it as nil.
struct HTMLElement: Equatable {
    enum Role {
        /// Content is never shown: `<script>`, `<style>`, `<noscript>`, `<template>`… Skipped as raw text.
        case hidden
        /// `<title>`: not part of the page text; `HTMLText.title(from:)` reads it.
        case title
        /// Block elements that separate paragraphs (`<p>`, headings, lists, tables, sections).
        case paragraph
        /// Blocks that usually hold one line each (`<div>`, `<li>`, `<tr>`, `<dd>`).
        case line
        /// `<br>`.
        case lineBreak
        /// Table cells: a space keeps neighbouring cells' words apart.
        case cell
        /// `<pre>` and friends: line breaks inside are kept.
        case preformatted
    }

    let name: String
    let role: Role

    /// The lowercase name, for matching end tags of raw-text elements.
    var nameBytes: [UInt8] { Array(name.utf8) }

    /// Looks up a tag name case-insensitively. Names longer than 15 bytes are never layout elements (and
    /// stay small strings, so the lookup does not allocate).
    init?(nameBytes: UnsafeBufferPointer<UInt8>) {
        guard !nameBytes.isEmpty, nameBytes.count <= 15 else { return nil }
        let name = String(decoding: nameBytes.lazy.map(\.lowercasedASCII), as: UTF8.self)
        guard let role = Self.roles[name] else { return nil }
        self.name = name
        self.role = role
    }

    private static let roles: [String: Role] = {
        var roles: [String: Role] = [:]
        for name in ["script", "style", "noscript", "template", "iframe", "noembed", "noframes"] {
            roles[name] = .hidden
        }
        roles["title"] = .title
        for name in [
            "p", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer", "nav", "aside",
            "main", "blockquote", "ul", "ol", "dl", "menu", "table", "caption", "form", "fieldset", "figure",
            "address", "hr", "details", "hgroup", "center", "html", "body",
        ] {
            roles[name] = .paragraph
        }
        for name in [
            "div", "li", "dt", "dd", "tr", "thead", "tbody", "tfoot", "figcaption", "summary", "legend",
            "option", "optgroup",
        ] {
            roles[name] = .line
        }
        roles["br"] = .lineBreak
        roles["td"] = .cell
        roles["th"] = .cell
        for name in ["pre", "listing", "textarea"] {
            roles[name] = .preformatted
        }
        return roles
    }()
}
