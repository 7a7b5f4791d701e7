import ArgumentParser
import Embedding

@main
struct IntelliDocs: AsyncParsableCommand {
    /// Chooses OpenBLAS's kernels before anything else starts a thread (`SentenceEmbedder.prepareBLAS`).
    static func main() async {
        SentenceEmbedder.prepareBLAS()
        await main(nil)
    }

    static let configuration = CommandConfiguration(
        commandName: "intellidocs",
        abstract: "IntelliDocs: bulk document import, processing pipeline and search.",
        discussion: """
            Settings come from the environment (INTELLIDOCS_DATABASE_URL, INTELLIDOCS_AMQP_URL, INTELLIDOCS_BLOB_DIR, …); \
            for the local stack run: eval "$(deploy/local/stack env)"
            """,
        subcommands: [
            Migrate.self, TopologyCommand.self, Worker.self, Run.self, OrgCommand.self, Import.self, SearchCommand.self,
            Queues.self, Stats.self, DLQ.self, SampleCorpusCommand.self, Bench.self, Eval.self, OCRCommand.self,
            APIServerCommand.self, PlatformAdminCommand.self, TokenizeCommand.self, EmbedCommand.self,
        ])
}
