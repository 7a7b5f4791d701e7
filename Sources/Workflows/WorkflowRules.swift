public import Foundation

/// What fires a workflow.
public enum WorkflowTrigger: String, Sendable, Codable, CaseIterable {
    /// A new document was registered (upload or import); its text is not known yet.
    case uploaded = "document.uploaded"
    /// The pipeline's last stage committed the document.
    case processed = "document.processed"
    /// A stage gave up on the document (dead-lettered).
    case failed = "document.failed"
}

/// The body of a workflow, as stored (`workflows.definition`): conditions that must all hold, actions
/// applied in order, and optional review states with their transitions.
public struct WorkflowRules: Sendable, Codable, Equatable {
    public var conditions: [Condition]
    public var actions: [Action]
    public var review: Review?

    public init(conditions: [Condition], actions: [Action], review: Review? = nil) {
        self.conditions = conditions
        self.actions = actions
        self.review = review
    }

    /// One test on the document; a workflow matches when every condition holds.
    public struct Condition: Sendable, Codable, Equatable {
        public enum Field: String, Sendable, Codable, CaseIterable {
            case mimeType = "mime_type", filename, text, pageCount = "page_count", tag
        }
        public var field: Field
        public var op: String
        public var value: Value

        public init(field: Field, op: String, value: Value) {
            self.field = field
            self.op = op
            self.value = value
        }

        /// Other names clients use for an operator, by field (`eq` for `equals`, `matches` for `regex`, …):
        /// the API stores the canonical one.
        public static func canonicalOperator(_ op: String, for field: Field) -> String {
            let lowered = op.lowercased()
            switch (field, lowered) {
            case (.mimeType, "eq"), (.mimeType, "is"), (.mimeType, "=="): return "equals"
            case (.mimeType, "prefix"), (.mimeType, "startswith"): return "starts_with"
            case (.filename, "matches"), (.filename, "like"): return "glob"
            case (.text, "matches"), (.text, "regexp"), (.text, "re"): return "regex"
            case (.text, "includes"): return "contains"
            case (.pageCount, ">="), (.pageCount, "min"): return "gte"
            case (.pageCount, "<="), (.pageCount, "max"): return "lte"
            case (.pageCount, "range"), (.pageCount, "in_range"): return "between"
            case (.tag, "contains"), (.tag, "includes"), (.tag, "equals"), (.tag, "is"): return "has"
            case (.tag, "not_has"), (.tag, "missing"), (.tag, "excludes"): return "lacks"
            default: return lowered
            }
        }

        /// The operators each field accepts.
        public static func operators(for field: Field) -> [String] {
            switch field {
            case .mimeType: ["equals", "starts_with"]
            case .filename: ["glob"]
            case .text: ["contains", "regex"]
            case .pageCount: ["gte", "lte", "between"]
            case .tag: ["has", "lacks"]
            }
        }
    }

    /// A condition's value: text, a number, or a `[min, max]` range.
    public enum Value: Sendable, Codable, Equatable {
        case text(String)
        case number(Int)
        case range(Int, Int)

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .text(text)
            } else if let number = try? container.decode(Int.self) {
                self = .number(number)
            } else if let pair = try? container.decode([Int].self), pair.count == 2 {
                self = .range(pair[0], pair[1])
            } else if let bounds = try? container.decode([String: Int].self), let low = bounds["min"], let high = bounds["max"] {
                self = .range(low, high)
            } else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "a string, an integer, [min, max] or {\"min\", \"max\"}")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .text(let text): try container.encode(text)
            case .number(let number): try container.encode(number)
            case .range(let low, let high): try container.encode([low, high])
            }
        }
    }

    /// What a matching workflow does, in order.
    public enum Action: Sendable, Codable, Equatable {
        case addTags([String])
        case removeTags([String])
        case setReviewState(String)
        /// A member of the organisation, by user id (the API resolves an email to it).
        case assign(userID: UUID)
        /// A signed POST through the webhook queue; `secret` keys the HMAC and is never shown again.
        case webhook(url: String, secret: String)

        enum CodingKeys: String, CodingKey { case type, tags, state, userID = "user_id", url, secret }

        public var type: String {
            switch self {
            case .addTags: "add_tags"
            case .removeTags: "remove_tags"
            case .setReviewState: "set_review_state"
            case .assign: "assign"
            case .webhook: "webhook"
            }
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let type = try container.decode(String.self, forKey: .type)
            switch type {
            case "add_tags": self = .addTags(try container.decode([String].self, forKey: .tags))
            case "remove_tags": self = .removeTags(try container.decode([String].self, forKey: .tags))
            case "set_review_state": self = .setReviewState(try container.decode(String.self, forKey: .state))
            case "assign": self = .assign(userID: try container.decode(UUID.self, forKey: .userID))
            case "webhook": self = .webhook(url: try container.decode(String.self, forKey: .url), secret: try container.decode(String.self, forKey: .secret))
            default:
                throw DecodingError.dataCorruptedError(
                    forKey: .type, in: container,
                    debugDescription: "unknown action type '\(type)' (add_tags, remove_tags, set_review_state, assign, webhook)")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(type, forKey: .type)
            switch self {
            case .addTags(let tags), .removeTags(let tags): try container.encode(tags, forKey: .tags)
            case .setReviewState(let state): try container.encode(state, forKey: .state)
            case .assign(let userID): try container.encode(userID, forKey: .userID)
            case .webhook(let url, let secret):
                try container.encode(url, forKey: .url)
                try container.encode(secret, forKey: .secret)
            }
        }
    }

    /// Review states and who may move a document between them.
    public struct Review: Sendable, Codable, Equatable {
        public var states: [String]
        public var transitions: [Transition]

        public init(states: [String], transitions: [Transition]) {
            self.states = states
            self.transitions = transitions
        }

        public struct Transition: Sendable, Codable, Equatable {
            public var from: String
            public var to: String
            /// Roles allowed to take it; roles are cumulative, so a listed role also admits every role above it.
            public var roles: [String]

            public init(from: String, to: String, roles: [String]) {
                self.from = from
                self.to = to
                self.roles = roles
            }
        }

        /// The transition from `state` to `target`, if the workflow defines one.
        public func transition(from state: String, to target: String) -> Transition? {
            transitions.first { $0.from == state && $0.to == target }
        }

        /// The states reachable from `state`.
        public func targets(from state: String) -> [String] {
            transitions.filter { $0.from == state }.map(\.to)
        }
    }

    /// The stored JSON.
    public func encoded() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings, numbers and arrays of them always encode.
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public static func decode(stored json: String) throws -> WorkflowRules {
        try JSONDecoder().decode(WorkflowRules.self, from: Data(json.utf8))
    }
}
