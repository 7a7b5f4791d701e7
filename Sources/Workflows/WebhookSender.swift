public import AsyncHTTPClient
import Foundation
public import Logging
public import NIOCore
import NIOHTTP1
public import Pipeline
public import Storage

/// Calls one webhook delivery (a `webhook` job whose job id is the delivery id): a POST of the stored
/// payload with `X-IntelliDocs-Signature`, `X-IntelliDocs-Event` and `X-IntelliDocs-Delivery` headers.
///
/// A 2xx answer delivers it. Anything else — another status, a timeout, a refused connection — is a
/// transient failure, retried with the webhook queue's backoff; after the last attempt the delivery is
/// `failed` and dead-lettered with the reason. An address the policy refuses fails at once. Deliveries are
/// at least once: receivers deduplicate by `X-IntelliDocs-Delivery`. Redirects are not followed (they could
/// lead to an address the policy refuses).
public struct WebhookSender: Sendable {
    let database: Database
    let client: HTTPClient
    let addresses: WebhookAddressPolicy
    let logger: Logger
    let timeout: TimeAmount

    public init(database: Database, client: HTTPClient, addresses: WebhookAddressPolicy, logger: Logger, timeout: TimeAmount = .seconds(10)) {
        self.database = database
        self.client = client
        self.addresses = addresses
        self.logger = logger
        self.timeout = timeout
    }

    /// An HTTP client suited to webhooks: no redirects, short connect timeout. The caller shuts it down.
    public static func makeClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(10)))
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    public func handle(_ job: Job, lastAttempt: Bool) async -> StageFailure? {
        let repository = WorkflowRepository(logger: logger)
        let delivery: WebhookDeliveryRecord?
        do {
            delivery = try await database.withConnection { try await repository.delivery(job.jobID, orgID: job.orgID, on: $0) }
        } catch {
            return .transient("database unavailable: \(error)")
        }
        // Deleted with its workflow or organisation, or already delivered or given up by another copy.
        guard let delivery, delivery.status == "pending" else { return nil }

        let failure: StageFailure
        var responseStatus: Int?
        do {
            try await addresses.check(delivery.url)
            var request = HTTPClientRequest(url: delivery.url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "IntelliDocs-Webhook/1")
            request.headers.add(name: "X-IntelliDocs-Signature", value: delivery.signature)
            request.headers.add(name: "X-IntelliDocs-Delivery", value: delivery.id.uuidString.lowercased())
            request.headers.add(name: "X-IntelliDocs-Attempt", value: "\(job.attempt)")
            request.body = .bytes(ByteBuffer(string: delivery.payload))
            let response = try await client.execute(request, timeout: timeout)
            // Read (a bounded part of) the body so the connection can be reused.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            responseStatus = Int(response.status.code)
            if (200..<300).contains(response.status.code) {
                do {
                    try await database.withConnection {
                        try await repository.recordAttempt(delivery.id, status: "delivered", responseStatus: responseStatus, error: nil, on: $0)
                    }
                } catch {
                    // Delivered but not recorded: the retry calls it again, which receivers tolerate (at least once).
                    return .transient("delivered, but recording it failed: \(error)")
                }
                return nil
            }
            failure = .transient("the receiver answered \(response.status.code) \(response.status.reasonPhrase); it must answer 2xx")
        } catch let refusal as WebhookAddressPolicy.Refusal {
            failure = refusal.permanent ? .permanent(refusal.message) : .transient(refusal.message)
        } catch {
            failure = .transient("calling \(delivery.url) failed: \(error); check that the receiver is up and reachable")
        }
        let final = lastAttempt || failure.kind == .permanent
        do {
            try await database.withConnection {
                try await repository.recordAttempt(
                    delivery.id, status: final ? "failed" : "pending", responseStatus: responseStatus, error: failure.reason, on: $0)
            }
        } catch {
            logger.warning("could not record a webhook attempt", metadata: ["delivery_id": "\(delivery.id)", "error": "\(error)"])
        }
        return failure
    }
}
