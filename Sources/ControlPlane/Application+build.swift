public import Blobs
public import Hummingbird
public import Logging
public import Pipeline
public import Prometheus
public import Search
public import Storage

/// Everything the API needs from outside, built by the caller (`intellidocs api`, or a test).
public struct APIDependencies: Sendable {
    /// A running pool (inside `Database.withRunning`).
    public var database: Database
    public var pipeline: PipelineDefinition
    public var plans: PlanCatalog
    public var logger: Logger
    /// Where `/metrics` reads from; the CLI also bootstraps swift-metrics with it.
    public var metrics: PrometheusCollectorRegistry
    /// Documents: the originals (uploads, `/content`). Without it the document routes answer `503`.
    public var blobs: FileBlobStore?
    /// Publishes the first stage's jobs of uploads and reprocessing, with confirms.
    public var publisher: JobPublisher?
    /// `POST …/search`; without it search answers `503`.
    public var search: SearchService?

    public init(
        database: Database, pipeline: PipelineDefinition, plans: PlanCatalog, logger: Logger,
        metrics: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), blobs: FileBlobStore? = nil,
        publisher: JobPublisher? = nil, search: SearchService? = nil
    ) {
        self.database = database
        self.pipeline = pipeline
        self.plans = plans
        self.logger = logger
        self.metrics = metrics
        self.blobs = blobs
        self.publisher = publisher
        self.search = search
    }
}

/// The router with every route, grouped by resource. `buildApplication` serves it; the OpenAPI test
/// reads its `routes`.
public func buildRouter(_ configuration: APIConfiguration, _ dependencies: APIDependencies) async throws -> Router<APIRequestContext> {
    let routes = RouteTable()
    let services = APIServices(
        configuration: configuration, database: dependencies.database, pipeline: dependencies.pipeline, plans: dependencies.plans,
        quotas: QuotaService(plans: dependencies.plans, logger: dependencies.logger),
        tokens: try await AccessTokens(secret: configuration.jwtSecret, lifetime: configuration.accessTokenLifetime),
        passwords: PasswordHasher(cost: configuration.passwordCost),
        broker: BrokerAccess(url: configuration.amqpURL, managementURL: configuration.amqpManagementURL),
        metrics: dependencies.metrics, logger: dependencies.logger, blobs: dependencies.blobs, publisher: dependencies.publisher,
        search: dependencies.search)

    let router = Router(context: APIRequestContext.self)
    router.add(middleware: RequestMetricsMiddleware(registry: dependencies.metrics))
    router.add(middleware: EdgeMiddleware(routes: routes))

    SystemController(services: services).register(on: router)

    let v1 = router.group("v1")
    AuthController(services: services).register(on: v1.group("auth"))
    SubscriptionsController(services: services).registerPlans(on: v1)
    SubscriptionsController(services: services).registerBilling(on: v1)
    ShareLinksController(services: services).registerPublic(on: v1)

    let authenticated = v1.group().add(middleware: AuthenticationMiddleware(services: services))
    MeController(services: services).register(on: authenticated)
    OrganizationsController(services: services).registerCollection(on: authenticated)
    InvitationsController(services: services).registerAccept(on: authenticated)

    let organization = authenticated.group("orgs/{org}").add(middleware: OrganizationAccessMiddleware(services: services))
    OrganizationsController(services: services).registerItem(on: organization)
    MembersController(services: services).register(on: organization)
    InvitationsController(services: services).registerOrganizationRoutes(on: organization)
    APIKeysController(services: services).register(on: organization)
    SubscriptionsController(services: services).registerOrganizationRoutes(on: organization)
    AuditLogController(services: services).register(on: organization)
    DocumentsController(services: services).register(on: organization)
    SearchController(services: services).register(on: organization)
    ShareLinksController(services: services).register(on: organization)
    ImportsController(services: services).register(on: organization)
    AnalyticsController(services: services).register(on: organization)
    WorkflowsController(services: services).register(on: organization)

    let admin = authenticated.group("admin").add(middleware: PlatformAdminMiddleware())
    AdminController(services: services).register(on: admin)

    routes.set(router.routes.map { (method: $0.method.rawValue, path: $0.path.description) })
    return router
}

/// The HTTP control plane as a Hummingbird application: a `Service` that `intellidocs api` runs in its
/// `ServiceGroup` (graceful shutdown on SIGTERM/SIGINT) and that the tests run with HummingbirdTesting.
public func buildApplication(_ configuration: APIConfiguration, _ dependencies: APIDependencies) async throws -> some ApplicationProtocol {
    let router = try await buildRouter(configuration, dependencies)
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "IntelliDocs"),
        logger: dependencies.logger)
}
