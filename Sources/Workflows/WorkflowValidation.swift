import Foundation
import Storage

/// Why a workflow definition was refused, naming the field (`actions[1].url`) a person has to fix.
public struct WorkflowError: Error, Sendable, CustomStringConvertible {
    public let field: String
    public let message: String

    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// Checks a workflow before it is stored: every operator fits its field, regular expressions compile,
/// tags and states are well formed, review transitions name defined states and real roles, and webhook
/// URLs are http(s) addresses the server may call (`WebhookAddressPolicy`).
public struct WorkflowValidator: Sendable {
    public let addresses: WebhookAddressPolicy

    public init(addresses: WebhookAddressPolicy) { self.addresses = addresses }

    public static let maximumConditions = 20
    public static let maximumActions = 20
    public static let maximumPatternLength = 500
    static func isStateName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 40, ("a"..."z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    public func validate(name: String, rules: WorkflowRules) async throws(WorkflowError) {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= 100 else { throw WorkflowError(field: "name", message: "must be 1 to 100 characters") }
        guard rules.conditions.count <= Self.maximumConditions else {
            throw WorkflowError(field: "conditions", message: "at most \(Self.maximumConditions) conditions")
        }
        for (index, condition) in rules.conditions.enumerated() {
            try Self.validate(condition, field: "conditions[\(index)]")
        }
        if let review = rules.review { try Self.validate(review) }
        guard !rules.actions.isEmpty, rules.actions.count <= Self.maximumActions else {
            throw WorkflowError(field: "actions", message: "give 1 to \(Self.maximumActions) actions")
        }
        for (index, action) in rules.actions.enumerated() {
            let field = "actions[\(index)]"
            switch action {
            case .addTags(let tags), .removeTags(let tags):
                guard !tags.isEmpty, tags.count <= 20 else { throw WorkflowError(field: "\(field).tags", message: "give 1 to 20 tags") }
                for tag in tags where tag.isEmpty || tag.count > 64 || tag.contains(",") {
                    throw WorkflowError(field: "\(field).tags", message: "a tag is 1 to 64 characters without commas")
                }
            case .setReviewState(let state):
                guard let review = rules.review else {
                    throw WorkflowError(field: "\(field).state", message: "set_review_state needs `review` with its states and transitions in this workflow")
                }
                guard review.states.contains(state) else {
                    throw WorkflowError(field: "\(field).state", message: "'\(state)' is not one of review.states (\(review.states.joined(separator: ", ")))")
                }
            case .assign:
                break  // Membership is checked by the caller, who can see the organisation.
            case .webhook(let url, let secret):
                // Short secrets make weak signatures; the choice is the receiver's, as with GitHub's webhooks.
                guard (1...256).contains(secret.utf8.count) else {
                    throw WorkflowError(field: "\(field).secret", message: "must be 1 to 256 bytes (it keys the HMAC-SHA256 signature; use 32 random bytes)")
                }
                do {
                    try await addresses.check(url)
                } catch {
                    throw WorkflowError(field: "\(field).url", message: error.message)
                }
            }
        }
    }

    static func validate(_ condition: WorkflowRules.Condition, field: String) throws(WorkflowError) {
        let allowed = WorkflowRules.Condition.operators(for: condition.field)
        guard allowed.contains(condition.op) else {
            throw WorkflowError(field: "\(field).op", message: "'\(condition.op)' does not apply to \(condition.field.rawValue) (use \(allowed.joined(separator: ", ")))")
        }
        switch (condition.field, condition.op, condition.value) {
        case (.pageCount, "between", .range(let low, let high)):
            guard low >= 0, low <= high else { throw WorkflowError(field: "\(field).value", message: "[min, max] with 0 ≤ min ≤ max") }
        case (.pageCount, "between", _):
            throw WorkflowError(field: "\(field).value", message: "between takes [min, max]")
        case (.pageCount, _, .number(let number)):
            guard number >= 0 else { throw WorkflowError(field: "\(field).value", message: "must not be negative") }
        case (.pageCount, _, _):
            throw WorkflowError(field: "\(field).value", message: "must be an integer")
        case (.text, "regex", .text(let pattern)):
            guard !pattern.isEmpty, pattern.count <= Self.maximumPatternLength else {
                throw WorkflowError(field: "\(field).value", message: "a regular expression of 1 to \(Self.maximumPatternLength) characters")
            }
            do {
                _ = try NSRegularExpression(pattern: pattern)
            } catch {
                throw WorkflowError(field: "\(field).value", message: "not a valid regular expression (ICU syntax): \(pattern)")
            }
        case (_, _, .text(let text)):
            guard !text.isEmpty, text.count <= Self.maximumPatternLength else {
                throw WorkflowError(field: "\(field).value", message: "must be 1 to \(Self.maximumPatternLength) characters")
            }
        default:
            throw WorkflowError(field: "\(field).value", message: "must be a string")
        }
    }

    static func validate(_ review: WorkflowRules.Review) throws(WorkflowError) {
        guard !review.states.isEmpty, review.states.count <= 20 else { throw WorkflowError(field: "review.states", message: "give 1 to 20 states") }
        guard Set(review.states).count == review.states.count else { throw WorkflowError(field: "review.states", message: "states must be distinct") }
        for state in review.states where !isStateName(state) {
            throw WorkflowError(field: "review.states", message: "'\(state)' is not a state name (lower case letters, digits and _, up to 40)")
        }
        for (index, transition) in review.transitions.enumerated() {
            let field = "review.transitions[\(index)]"
            for (key, state) in [("from", transition.from), ("to", transition.to)] where !review.states.contains(state) {
                throw WorkflowError(field: "\(field).\(key)", message: "'\(state)' is not one of review.states")
            }
            guard transition.from != transition.to else { throw WorkflowError(field: "\(field).to", message: "must differ from `from`") }
            guard !transition.roles.isEmpty else { throw WorkflowError(field: "\(field).roles", message: "name at least one role") }
            for role in transition.roles where MemberRole(rawValue: role) == nil {
                throw WorkflowError(field: "\(field).roles", message: "'\(role)' is not a role (viewer, member, admin, owner)")
            }
        }
        var seen = Set<String>()
        for transition in review.transitions where !seen.insert("\(transition.from)→\(transition.to)").inserted {
            throw WorkflowError(field: "review.transitions", message: "\(transition.from) → \(transition.to) is defined twice")
        }
    }
}
