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
///   (on `document.uploaded`, or when extraction found none) matches neither. ICU backtracks, so a pattern
///   with nested repetition (`(x+x+)+y`) can take exponential time on some texts: a regex gets
///   `regexTimeLimit` per document and is stopped after it (`Outcome.stopped`), so one organisation's
///   pattern cannot hold a workflow worker that serves every organisation.
/// - `page_count gte|lte|between` need a known page count.
/// - `tag has|lacks` see the tags as they are when the workflow runs, including those added by
///   workflows that ran before it for the same event.
public enum ConditionEvaluator {
    /// What the conditions came to for one document.
    public enum Outcome: Sendable, Equatable {
        case matched
        case notMatched
        /// A condition could not be decided in time; the reason says which and what to do.
        case stopped(String)
    }

    /// How long one `text regex` condition may run on one document.
    public static let regexTimeLimit: Duration = .milliseconds(250)

    /// All conditions hold (`matched`), or the first that does not (`notMatched`) or could not be decided.
    public static func evaluate(
        _ conditions: [WorkflowRules.Condition], document: WorkflowDocument, regexTimeLimit: Duration = regexTimeLimit
    ) -> Outcome {
        for condition in conditions {
            let outcome = evaluate(condition, document: document, regexTimeLimit: regexTimeLimit)
            if outcome != .matched { return outcome }
        }
        return .matched
    }

    /// Whether all conditions hold; one that could not be decided in time does not.
    public static func matches(_ conditions: [WorkflowRules.Condition], document: WorkflowDocument) -> Bool {
        evaluate(conditions, document: document) == .matched
    }

    public static func matches(_ condition: WorkflowRules.Condition, document: WorkflowDocument) -> Bool {
        evaluate(condition, document: document, regexTimeLimit: regexTimeLimit) == .matched
    }

    static func evaluate(_ condition: WorkflowRules.Condition, document: WorkflowDocument, regexTimeLimit: Duration) -> Outcome {
        if case (.text, "regex", .text(let pattern)) = (condition.field, condition.op, condition.value) {
            guard let text = document.text, let expression = try? NSRegularExpression(pattern: pattern) else { return .notMatched }
            return firstMatch(expression, in: text, limit: regexTimeLimit)
        }
        return decide(condition, document: document) ? .matched : .notMatched
    }

    /// Searches with ICU's progress reports on (`reportProgress`): ICU calls back every few thousand steps
    /// of a match attempt, and stopping there ends the search. Measured: a runaway pattern was stopped
    /// within a millisecond of a 200 ms limit (about 800 reports in that time).
    static func firstMatch(_ expression: NSRegularExpression, in text: String, limit: Duration) -> Outcome {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        var found = false
        var stopped = false
        expression.enumerateMatches(in: text, options: [.reportProgress], range: NSRange(text.startIndex..., in: text)) { result, _, stop in
            if result != nil {
                found = true
                stop.pointee = true
            } else if clock.now >= deadline {
                stopped = true
                stop.pointee = true
            }
        }
        if found { return .matched }
        if stopped {
            return .stopped(
                "the text regex '\(expression.pattern)' ran longer than \(limit) on this document and was stopped; simplify it (avoid nested repetition such as (x+)+)")
        }
        return .notMatched
    }

    static func decide(_ condition: WorkflowRules.Condition, document: WorkflowDocument) -> Bool {
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
