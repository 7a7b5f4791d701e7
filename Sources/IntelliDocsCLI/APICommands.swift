import ArgumentParser
import ControlPlane
import Foundation
import Logging
import Pipeline
import ServiceLifecycle
import Storage

/// `intellidocs api`: the HTTP control plane, run as a service with graceful shutdown on SIGTERM/SIGINT.
struct APIServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api", abstract: "Run the HTTP API (accounts, organisations, subscriptions, audit, admin).",
        discussion: """
            Needs INTELLIDOCS_JWT_SECRET (at least 32 bytes); reads plans from INTELLIDOCS_PLANS \
            (default config/plans.yml); the billing webhook needs INTELLIDOCS_BILLING_WEBHOOK_SECRET.
            """)

    @OptionGroup var options: GlobalOptions
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Flag(help: "Apply database migrations before serving.") var migrate = false

    func run() async throws {
        try await Services.with(options, label: "intellidocs.api") { services in
            guard let secret = services.settings.jwtSecret else {
                throw CLIError("INTELLIDOCS_JWT_SECRET is not set: the API signs its access tokens with it (at least 32 bytes; `openssl rand -base64 48`)")
            }
            if migrate { try await Migrator().migrate(services.database) }
            let plans = try PlanCatalog.load(path: services.settings.plansPath)
            var logger = services.logger
            logger.logLevel = options.verbose ? .debug : .info
            // One registry for the API's own metrics and the libraries' (swift-metrics, bootstrapped once by
            // `Services.with`); bootstrapping swift-metrics a second time here crashed the command at start.
            let registry = Observability.registry
            var configuration = APIConfiguration(
                host: host, port: port, jwtSecret: secret, billingWebhookSecret: services.settings.billingWebhookSecret,
                amqpURL: services.settings.amqpURL, amqpManagementURL: services.settings.amqpManagementURL)
            configuration.passwordCost = 12
            // Uploads publish their first jobs on one long-lived connection (reconnecting on its own).
            let broker = try await services.connectBroker(name: "intellidocs api pid \(getpid())")
            do {
                try await Topology.apply(services.pipelineDefinition, broker: broker)
                let search = try await services.searchService(longRunning: true)
                let app = try await buildApplication(
                    configuration,
                    APIDependencies(
                        database: services.database, pipeline: services.pipelineDefinition, plans: plans, logger: logger, metrics: registry,
                        blobs: try services.blobStore(), publisher: JobPublisher(broker: broker), search: search))
                logger.info("serving the API", metadata: ["address": "\(host):\(port)"])
                let group = ServiceGroup(
                    configuration: ServiceGroupConfiguration(
                        services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                var stopped: (any Error)?
                do { try await group.run() } catch { stopped = error }
                // A vector graph still being built when the process exits crashes it inside OpenBLAS.
                await search.shutDown()
                if let stopped { throw stopped }
            } catch {
                await broker.close()
                throw error
            }
            await broker.close()
        }
    }
}

/// `intellidocs admin grant|revoke EMAIL`: the platform-admin flag (the first admin can only be made here).
struct PlatformAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin", abstract: "Platform administrators of the API.", subcommands: [Grant.self, Revoke.self])

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a registered user a platform admin.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The user's e-mail address.") var email: String

        func run() async throws {
            try await PlatformAdminCommand.set(email: email, admin: true, options: options)
            print("\(email.lowercased()) is now a platform admin")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Withdraw a user's platform-admin flag.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The user's e-mail address.") var email: String

        func run() async throws {
            try await PlatformAdminCommand.set(email: email, admin: false, options: options)
            print("\(email.lowercased()) is no longer a platform admin")
        }
    }

    static func set(email: String, admin: Bool, options: GlobalOptions) async throws {
        try await Services.with(options) { services in
            let logger = services.logger
            try await services.database.inTransaction { connection in
                guard let user = try await UserRepository(logger: logger).setPlatformAdmin(email: email, admin, on: connection) else {
                    throw CLIError("no user with the e-mail address \(email.lowercased()); register it first (POST /v1/auth/register)")
                }
                try await AuditLogRepository(logger: logger).append(
                    AuditEntry(
                        orgID: nil, actorType: .system, actorID: nil, actorLabel: "intellidocs admin",
                        action: admin ? "platform_admin.granted" : "platform_admin.revoked", targetType: "user",
                        targetID: user.id.uuidString, details: ["email": user.email]),
                    on: connection)
            }
        }
    }
}
