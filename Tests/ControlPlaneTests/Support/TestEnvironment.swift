import Storage
import Pipeline
import TestSupport

/// The repository's own definitions, for the API harness (`TestEnvironment` itself is in TestSupport).
extension TestEnvironment {
    /// The pipeline definition of the repository (`pipelines/default.yml`).
    func pipeline() throws -> PipelineDefinition {
        try PipelineDefinition.load(path: repositoryRoot + "/pipelines/default.yml")
    }

    func plans() throws -> PlanCatalog {
        try PlanCatalog.load(path: repositoryRoot + "/config/plans.yml")
    }
}
