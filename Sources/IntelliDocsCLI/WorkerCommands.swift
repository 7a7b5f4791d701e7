import ArgumentParser
import Broker
import Foundation
import Logging
import Pipeline
import ServiceLifecycle
import Stages
import Storage
import Workflows

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the worker of one stage (any number may share a stage's queue, on any machine).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The stage, as named in the pipeline definition, or `workflow` / `webhook` (workflow events and webhook calls).") var stage: String
    @Option(help: "Batch processors in this process (default: the pipeline's concurrency).") var concurrency: Int?
    @OptionGroup var metrics: MetricsOptions

    func run() async throws {
        try await runWorkers(options: options, stages: [stage], concurrency: concurrency, metrics: metrics)
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every stage of the pipeline in one process (the single-machine default).")
    @OptionGroup var options: GlobalOptions
    @Option(help: "Batch processors per stage (default: the pipeline's concurrency).") var concurrency: Int?
    @OptionGroup var metrics: MetricsOptions

    func run() async throws {
        try await runWorkers(options: options, stages: nil, concurrency: concurrency, metrics: metrics)
    }
}

/// Starts the workers of `stages` (all when nil) and runs them until SIGTERM or SIGINT, which drains
/// in-flight batches before exiting.
func runWorkers(options: GlobalOptions, stages: [String]?, concurrency: Int?, metrics: MetricsOptions) async throws {
    if let concurrency, concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
    try await Services.with(options, label: "intellidocs.worker") { services in
        let names = stages ?? (services.pipelineDefinition.stages.map(\.name) + ["workflow", "webhook"])
        let eventNames = names.filter { $0 == "workflow" || $0 == "webhook" }
        var (workers, brokers) = try await makeWorkers(services, stages: names.filter { !eventNames.contains($0) }, concurrency: concurrency)
        if !eventNames.isEmpty {
            do {
                let (eventWorkers, broker) = try await makeEventWorkers(services, names: eventNames)
                workers += eventWorkers
                brokers.append(broker)
            } catch {
                for broker in brokers { await broker.close() }
                throw error
            }
        }
        if let port = metrics.resolvedPort, port > 0 {
            workers.append(MetricsServer(host: metrics.metricsHost, port: port, logger: services.logger))
            workers.append(QueueMetricsPoller(
                monitor: QueueMonitor(pipeline: EventQueues.monitored(services.pipelineDefinition), managementURL: services.settings.amqpManagementURL, broker: nil),
                virtualHost: (try? BrokerConfiguration(url: services.settings.amqpURL).virtualHost) ?? "/",
                logger: services.logger))
        }
        do {
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: workers.map { .init(service: $0) },
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: services.logger))
            services.logger.info("workers running; SIGTERM or Ctrl-C drains and stops them", metadata: ["stages": "\(names.joined(separator: ","))"])
            try await group.run()
        } catch {
            for broker in brokers { await broker.close() }
            throw error
        }
        for broker in brokers { await broker.close() }
    }
}

/// Builds one worker per stage, each with its own broker connection, after checking the schema and
/// declaring the topology. The caller runs the workers and closes the connections.
func makeWorkers(
    _ services: Services, stages names: [String], concurrency: Int?, counters: WorkerCounters = WorkerCounters()
) async throws -> ([any Service], [BrokerConnection]) {
    let pipeline = services.pipelineDefinition
    for name in names where pipeline.stage(named: name) == nil {
        throw CLIError("stage '\(name)' is not in pipeline '\(pipeline.name)' (it has: \(pipeline.stages.map(\.name).joined(separator: ", ")))")
    }
    let migrator = try Migrator()
    let version = try await migrator.currentVersion(services.database)
    if version < migrator.latestVersion {
        throw CLIError("the database schema is at version \(version) but this binary needs \(migrator.latestVersion); run `intellidocs migrate`")
    }
    let catalog = StageCatalog(blobs: try services.blobStore(), modelDirectory: services.settings.modelDirectory)
    var brokers: [BrokerConnection] = []
    var workers: [any Service] = []
    do {
        for name in names {
            let broker = try await services.connectBroker(name: "intellidocs worker \(name) pid \(getpid())")
            brokers.append(broker)
            if brokers.count == 1 { try await Topology.apply(pipeline, broker: broker) }
            workers.append(try catalog.worker(
                for: name, pipeline: pipeline, broker: broker, database: services.database, logger: services.logger,
                concurrency: concurrency, counters: counters))
        }
    } catch {
        for broker in brokers { await broker.close() }
        throw error
    }
    return (workers, brokers)
}

/// The consumers of workflow events and webhook calls named in `names`, with the outbox relay that feeds
/// them (any number of processes may run these: the relay and the handlers are safe to run twice).
func makeEventWorkers(_ services: Services, names: [String]) async throws -> ([any Service], BrokerConnection) {
    let migrator = try Migrator()
    let version = try await migrator.currentVersion(services.database)
    if version < migrator.latestVersion {
        throw CLIError("the database schema is at version \(version) but this binary needs \(migrator.latestVersion); run `intellidocs migrate`")
    }
    let queues = EventQueues.standard
    let broker = try await services.connectBroker(name: "intellidocs events pid \(getpid())")
    do {
        try await queues.apply(broker: broker)
    } catch {
        await broker.close()
        throw error
    }
    var workers: [any Service] = [
        OutboxRelay(database: services.database, publisher: JobPublisher(broker: broker), queues: queues, logger: services.logger)
    ]
    if names.contains("workflow") {
        let engine = WorkflowEngine(database: services.database, logger: services.logger)
        workers.append(QueueConsumer(definition: queues.workflow, broker: broker, logger: services.logger) { job, _ in await engine.handle(job) })
    }
    if names.contains("webhook") {
        let sender = WebhookSender(database: services.database, addresses: .fromEnvironment(), logger: services.logger)
        workers.append(QueueConsumer(definition: queues.webhook, broker: broker, logger: services.logger) { job, last in
            await sender.handle(job, lastAttempt: last)
        })
    }
    return (workers, broker)
}

/// Where a worker process serves `/metrics`.
struct MetricsOptions: ParsableArguments {
    @Option(help: "Port for GET /metrics (default: INTELLIDOCS_METRICS_PORT or 9464; 0 turns it off).")
    var metricsPort: Int?

    @Option(help: "Address to serve /metrics on (0.0.0.0 in containers).")
    var metricsHost = "127.0.0.1"

    var resolvedPort: Int? {
        metricsPort ?? ProcessInfo.processInfo.environment["INTELLIDOCS_METRICS_PORT"].flatMap(Int.init) ?? 9464
    }
}
