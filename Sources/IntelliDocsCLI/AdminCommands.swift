import ArgumentParser
import Broker
import ControlPlane
import Foundation
import Pipeline
import Storage
import Workflows

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply database migrations (idempotent).")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await Services.with(options) { services in
            let migrator = try Migrator()
            let applied = try await migrator.migrate(services.database)
            if applied.isEmpty {
                print("schema is current (version \(migrator.latestVersion))")
            } else {
                print("applied migrations \(applied.map(String.init).joined(separator: ", ")); schema at version \(migrator.latestVersion)")
            }
        }
    }
}

struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology", abstract: "Broker queues of the pipeline.", subcommands: [Apply.self])

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Declare the pipeline's queues (idempotent).")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            try await Services.with(options) { services in
                try await services.withBroker(name: "intellidocs topology") { broker in
                    try await Topology.apply(services.pipelineDefinition, broker: broker)
                    try await EventQueues.standard.apply(broker: broker)
                }
                for stage in services.pipelineDefinition.stages + EventQueues.standard.asPipeline.stages {
                    print("\(stage.name): \(stage.queue), \(stage.retryQueues.joined(separator: ", ")), \(stage.deadLetterQueue)")
                }
            }
        }
    }
}

struct OrgCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "org", abstract: "Organisations.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an organisation.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "Slug: lower-case letters, digits and '-'.") var slug: String
        @Option(help: "Display name (default: the slug).") var name: String?
        @Option(help: "Subscription plan from the plans file (INTELLIDOCS_PLANS; default: its default plan).") var plan: String?
        @Flag(help: "Print the organisation as JSON.") var json = false

        func run() async throws {
            try await Services.with(options) { services in
                let plans = try PlanCatalog.load(path: services.settings.plansPath)
                let chosen = try plan.map { name in
                    guard let found = plans.plan(named: name) else {
                        throw CLIError("plan '\(name)' is not in \(services.settings.plansPath) (it has: \(plans.plans.map(\.name).joined(separator: ", ")))")
                    }
                    return found
                } ?? plans.defaultPlan
                let organization = try await OrganizationRepository(services.database).create(slug: slug, name: name ?? slug)
                try await services.database.withConnection { connection in
                    try await SubscriptionRepository(logger: services.logger).setPlan(orgID: organization.id, plan: chosen.name, on: connection)
                }
                if json {
                    try printJSON(organization)
                } else {
                    print("created organisation \(organization.slug) (\(organization.id)) on plan \(chosen.name)")
                }
            }
        }
    }
}
