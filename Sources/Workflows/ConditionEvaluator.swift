import Foundation
#if canImport(Glibc)
import Glibc
#endif
public import Storage

/// Decides whether a workflow's conditions hold for a document. Pure: no I/O, so it is tested directly.
///
/// - `mime_type equals|starts_with` compare case-insensitively; a document without a type matches nothing.
/// - `filename glob` is `fnmatch(3)` without case (`*.pdf`, `invoice-??.txt`, `[0-9]*`).
/// - `text contains` is a case-insensitive substring; `text regex` an ICU regular expression (use `(?i)`
///   for case-insensitivity). Both see the first million characters of the text. A document without text
///   (on `document.uploaded`, or when extraction found none) matches neither.
/// - `page_count gte|lte|between` need a known page count.
/// - `tag has|lacks` see the tags as they are when the workflow runs, including those added by
///   workflows that ran before it for the same event.
public enum ConditionEvaluator {
    public static func matches(_ conditions: [WorkflowRules.Condition], document: WorkflowDocument) -> Bool {
        conditions.allSatisfy { matches($0, document: document) }
    }

    public static func matches(_ condition: WorkflowRules.Condition, document: WorkflowDocument) -> Bool {
        switch (condition.field, condition.op, condition.value) {
        case (.mimeType, "equals", .text(let value)):
            return document.mimeType?.lowercased() == value.lowercased()
        case (.mimeType, "starts_with", .text(let value)):
            return document.mimeType?.lowercased().hasPrefix(value.lowercased()) ?? false
        case (.filename, "glob", .text(let pattern)):
            return fnmatch(pattern, document.filename, caseFold) == 0
        case (.text, "contains", .text(let value)):
            guard let text = document.text else { return false }
            return text.range(of: value, options: [.caseInsensitive]) != nil
        case (.text, "regex", .text(let pattern)):
            guard let text = document.text, let expression = try? NSRegularExpression(pattern: pattern) else { return false }
            return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        case (.pageCount, "gte", .number(let value)):
            return document.pageCount.map { $0 >= value } ?? false
        case (.pageCount, "lte", .number(let value)):
            return document.pageCount.map { $0 <= value } ?? false
        case (.pageCount, "between", .range(let low, let high)):
            return document.pageCount.map { (low...high).contains($0) } ?? false
        case (.tag, "has", .text(let tag)):
            return document.tags.contains(tag)
        case (.tag, "lacks", .text(let tag)):
            return !document.tags.contains(tag)
        default:
            // Validation refuses other combinations; a stored one that slipped through matches nothing.
            return false
        }
    }

    /// glibc's `FNM_CASEFOLD` (a GNU extension Swift does not import).
    static let caseFold: Int32 = 1 << 4

    /// Whether any condition needs the document's text (which is then read from its pages).
    public static func needsText(_ conditions: [WorkflowRules.Condition]) -> Bool {
        conditions.contains { $0.field == .text }
    }
}
