import Blobs
import Broker
import Foundation
import Logging
import Pipeline
import Prometheus
import Search
import Storage
public import Workflows

/// How the API runs: where it listens, its keys and its limits. `intellidocs api` fills it from the
/// settings; tests build their own.
public struct APIConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// HS256 key of the access tokens (`INTELLIDOCS_JWT_SECRET`, at least 32 bytes).
    public var jwtSecret: String
    /// HMAC-SHA256 key of `POST /v1/billing/webhook` (`INTELLIDOCS_BILLING_WEBHOOK_SECRET`); without it
    /// the webhook answers `503`.
    public var billingWebhookSecret: String?
    /// `INTELLIDOCS_AMQP_URL`, for readiness and the admin queue routes.
    public var amqpURL: String
    /// `INTELLIDOCS_AMQP_MANAGEMENT_URL`: queue figures with unacked counts (optional).
    public var amqpManagementURL: String?
    public var accessTokenLifetime: Duration = .seconds(15 * 60)
    public var refreshTokenLifetime: Duration = .seconds(30 * 24 * 3600)
    public var invitationLifetime: Duration = .seconds(7 * 24 * 3600)
    /// bcrypt cost, at least 12.
    public var passwordCost: UInt8 = 12
    public var loginThrottle = LoginThrottle.Limits()
    /// Which webhook URLs workflows may call (`INTELLIDOCS_WEBHOOK_ALLOW_PRIVATE`).
    public var webhookAddresses = WebhookAddressPolicy.fromEnvironment()

    public init(
        host: String = "127.0.0.1", port: Int = 8080, jwtSecret: String, billingWebhookSecret: String?, amqpURL: String,
        amqpManagementURL: String? = nil
    ) {
        self.host = host
        self.port = port
        self.jwtSecret = jwtSecret
        self.billingWebhookSecret = billingWebhookSecret
        self.amqpURL = amqpURL
        self.amqpManagementURL = amqpManagementURL
    }
}

/// What the API uses, built once by `buildApplication` and shared by the controllers.
struct APIServices: Sendable {
    let configuration: APIConfiguration
    let database: Database
    let pipeline: PipelineDefinition
    let plans: PlanCatalog
    let quotas: QuotaService
    let tokens: AccessTokens
    let passwords: PasswordHasher
    let broker: BrokerAccess
    let metrics: PrometheusCollectorRegistry
    let logger: Logger
    let blobs: FileBlobStore?
    let publisher: JobPublisher?
    let search: SearchService?

    var users: UserRepository { UserRepository(logger: logger) }
    var memberships: MembershipRepository { MembershipRepository(logger: logger) }
    var organizations: OrganizationAccountRepository { OrganizationAccountRepository(logger: logger) }
    var sessions: RefreshTokenRepository { RefreshTokenRepository(logger: logger) }
    var apiKeys: APIKeyRepository { APIKeyRepository(logger: logger) }
    var invitations: InvitationRepository { InvitationRepository(logger: logger) }
    var subscriptions: SubscriptionRepository { SubscriptionRepository(logger: logger) }
    var audit: AuditLogRepository { AuditLogRepository(logger: logger) }
    var rates: RateWindowRepository { RateWindowRepository(logger: logger) }
    var documents: DocumentCatalog { DocumentCatalog(logger: logger) }

    /// The blob store, or `503` when this API process was started without one.
    func requireBlobs() throws(APIError) -> FileBlobStore {
        guard let blobs else { throw APIError.unavailable("documents are not available on this server: it has no blob store (INTELLIDOCS_BLOB_DIR)") }
        return blobs
    }

    func requirePublisher() throws(APIError) -> JobPublisher {
        guard let publisher else { throw APIError.unavailable("this server cannot queue documents: it has no broker connection (INTELLIDOCS_AMQP_URL)") }
        return publisher
    }
}

/// Short-lived broker connections for readiness and platform administration: rare calls that should not
/// hold a connection open, and must not hang when RabbitMQ is down.
struct BrokerAccess: Sendable {
    let url: String
    let managementURL: String?

    /// `logger` should be the request's, so the broker's log lines carry the request id.
    func withConnection<T: Sendable>(name: String, logger: Logger, _ body: (BrokerConnection) async throws -> T) async throws -> T {
        var configuration = try BrokerConfiguration(url: url)
        configuration.connectionName = name
        configuration.connectTimeoutSeconds = 3
        configuration.commandTimeoutSeconds = 5
        configuration.rpcTimeoutSeconds = 10
        let broker = BrokerConnection(configuration: configuration, logger: logger)
        try await broker.connect()
        do {
            let result = try await body(broker)
            await broker.close()
            return result
        } catch {
            await broker.close()
            throw error
        }
    }

    var virtualHost: String { (try? BrokerConfiguration(url: url).virtualHost) ?? "/" }
}
