import Broker
import Foundation
import Hummingbird
import Logging
import Pipeline
import Storage
import Workflows

/// Platform administration (`/v1/admin/…`, platform admins only): organisations, suspension, the
/// pipeline's queues and dead-letter queues.
struct AdminController {
    let services: APIServices

    func register(on router: some RouterMethods<APIRequestContext>) {
        router.get("orgs", use: organizations)
        router.post("orgs/{org}/suspend", use: suspend)
        router.post("orgs/{org}/unsuspend", use: unsuspend)
        router.get("queues", use: queues)
        router.post("dlq/{stage}/replay", use: replay)
        router.delete("dlq/{stage}", use: purge)
    }

    struct AdminOrganization: Encodable, Sendable {
        let organization: OrganizationsController.OrganizationBody
        let members: Int
        func encode(to encoder: any Encoder) throws {
            try organization.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(members, forKey: .members)
        }
        enum CodingKeys: String, CodingKey { case members }
    }

    struct OrganizationPage: Encodable, Sendable {
        let organizations: [AdminOrganization]
        let nextCursor: String?
        enum CodingKeys: String, CodingKey { case organizations, nextCursor = "next_cursor" }
    }

    /// Every organisation by slug; `?cursor=<last slug>&limit=`.
    @Sendable func organizations(_ request: Request, context: APIRequestContext) async throws -> OK<OrganizationPage> {
        let parameters = request.uri.queryParameters
        var limit = 100
        if let raw = parameters["limit"] {
            guard let value = Int(raw), (1...500).contains(value) else { throw APIError.validation("limit", "must be between 1 and 500") }
            limit = value
        }
        let cursor = parameters["cursor"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let rows = try await services.database.withConnection { connection in
            try await services.organizations.all(afterSlug: cursor, limit: limit, on: connection)
        }
        return OK(OrganizationPage(
            organizations: rows.map { AdminOrganization(organization: .init($0.0, role: nil, plans: services.plans), members: $0.1) },
            nextCursor: rows.count == limit ? rows.last?.0.slug : nil))
    }

    @Sendable func suspend(_ request: Request, context: APIRequestContext) async throws -> OK<OrganizationsController.OrganizationBody> {
        OK(try await setStatus(.suspended, request: request, context: context))
    }

    @Sendable func unsuspend(_ request: Request, context: APIRequestContext) async throws -> OK<OrganizationsController.OrganizationBody> {
        OK(try await setStatus(.active, request: request, context: context))
    }

    private func setStatus(_ status: OrganizationStatus, request: Request, context: APIRequestContext) async throws -> OrganizationsController.OrganizationBody {
        guard let slug = context.parameters.get("org") else { throw APIError.notFound("organisation") }
        let account = try await services.database.inTransaction { connection in
            guard let account = try await services.organizations.find(slug: slug, on: connection) else {
                throw APIError.notFound("organisation")
            }
            try await services.organizations.setStatus(orgID: account.id, status, on: connection)
            try await services.audit.append(
                AuditEntry(status == .suspended ? "organization.suspended" : "organization.unsuspended", orgID: account.id,
                           target: .organization(account.id), request: request, context: context),
                on: connection)
            return try await services.organizations.find(id: account.id, on: connection)
        }
        guard let account else { throw APIError.notFound("organisation") }
        return .init(account, role: nil, plans: services.plans)
    }

    /// `queues`: the pipeline's stages (the contract); `event_queues`: workflow events and webhook calls.
    struct QueueList: Encodable, Sendable {
        let queues: [StageQueueStats]
        let eventQueues: [StageQueueStats]
        enum CodingKeys: String, CodingKey { case queues, eventQueues = "event_queues" }
    }

    /// The per-stage figures of `intellidocs queues`.
    @Sendable func queues(_ request: Request, context: APIRequestContext) async throws -> OK<QueueList> {
        do {
            let stats: [StageQueueStats]
            if let management = services.broker.managementURL {
                stats = try await QueueMonitor(pipeline: EventQueues.monitored(services.pipeline), managementURL: management, broker: nil)
                    .snapshot(virtualHost: services.broker.virtualHost)
            } else {
                stats = try await services.broker.withConnection(name: "intellidocs api queues", logger: context.logger) { broker in
                    try await QueueMonitor(pipeline: EventQueues.monitored(services.pipeline), managementURL: nil, broker: broker).snapshot()
                }
            }
            let pipelineStages = Set(services.pipeline.stages.map(\.name))
            return OK(QueueList(queues: stats.filter { pipelineStages.contains($0.stage) }, eventQueues: stats.filter { !pipelineStages.contains($0.stage) }))
        } catch {
            context.logger.error("reading queue figures failed", metadata: ["error": "\(error)"])
            throw APIError.unavailable("the broker's queue figures cannot be read now; is RabbitMQ up?")
        }
    }

    func stage(_ context: APIRequestContext) throws(APIError) -> PipelineDefinition.StageDefinition {
        let known = EventQueues.monitored(services.pipeline)
        guard let name = context.parameters.get("stage"), let stage = known.stage(named: name) else {
            throw APIError.notFound("stage (known: \(known.stages.map(\.name).joined(separator: ", ")))")
        }
        return stage
    }

    /// The stage's parking lot; for `workflow` and `webhook`, one that resets their records, not documents.
    func deadLetters(_ stage: PipelineDefinition.StageDefinition, broker: BrokerConnection, logger: Logger) -> DeadLetterQueue {
        EventQueues.standard.deadLetterQueue(stage.name, broker: broker, database: services.database, logger: logger)
            ?? DeadLetterQueue(broker: broker, database: services.database, stage: stage, logger: logger)
    }

    struct ReplayResult: Encodable, Sendable {
        let stage: String
        let replayed: Int
    }

    /// Moves up to `?limit=` (default 1000) dead letters of the stage back to its work queue.
    @Sendable func replay(_ request: Request, context: APIRequestContext) async throws -> OK<ReplayResult> {
        let stage = try stage(context)
        var limit = 1000
        if let raw = request.uri.queryParameters["limit"] {
            guard let value = Int(raw), (1...100_000).contains(value) else {
                throw APIError.validation("limit", "must be between 1 and 100000")
            }
            limit = value
        }
        let replayed = try await withBroker(context) { broker in
            try await deadLetters(stage, broker: broker, logger: context.logger).replay(limit: limit)
        }
        try await services.database.inTransaction { connection in
            try await services.audit.append(
                AuditEntry("dlq.replayed", orgID: nil, target: .stage(stage.name), details: ["count": String(replayed)],
                           request: request, context: context),
                on: connection)
        }
        return OK(ReplayResult(stage: stage.name, replayed: replayed))
    }

    struct PurgeResult: Encodable, Sendable {
        let stage: String
        let purged: Int
    }

    @Sendable func purge(_ request: Request, context: APIRequestContext) async throws -> OK<PurgeResult> {
        let stage = try stage(context)
        let purged = try await withBroker(context) { broker in
            try await deadLetters(stage, broker: broker, logger: context.logger).purge()
        }
        try await services.database.inTransaction { connection in
            try await services.audit.append(
                AuditEntry("dlq.purged", orgID: nil, target: .stage(stage.name), details: ["count": String(purged)],
                           request: request, context: context),
                on: connection)
        }
        return OK(PurgeResult(stage: stage.name, purged: purged))
    }

    private func withBroker<T: Sendable>(_ context: APIRequestContext, _ body: (BrokerConnection) async throws -> T) async throws -> T {
        do {
            return try await services.broker.withConnection(name: "intellidocs api dlq", logger: context.logger, body)
        } catch let error as APIError {
            throw error
        } catch {
            context.logger.error("dead-letter operation failed", metadata: ["error": "\(error)"])
            throw APIError.unavailable("the dead-letter queue cannot be reached now; is RabbitMQ up?")
        }
    }
}
