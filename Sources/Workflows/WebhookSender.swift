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
    let addresses: WebhookAddressPolicy
    let logger: Logger
    let timeout: TimeAmount

    public init(database: Database, addresses: WebhookAddressPolicy, logger: Logger, timeout: TimeAmount = .seconds(10)) {
        self.database = database
        self.addresses = addresses
        self.logger = logger
        self.timeout = timeout
    }

    /// No redirects, short timeouts; `pinning` sends a host's connections to the given address (TLS still
    /// checks the certificate against the host name).
    static func configuration(pinning: [String: String]) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(10)))
        configuration.decompression = .disabled
        configuration.dnsOverride = pinning
        return configuration
    }

    /// POSTs `payload` to `url` at the address the policy vetted, and returns the receiver's status code
    /// and reason. A client of its own, pinned to that address, so the connection cannot follow a name
    /// that was re-pointed since the check (a shared client would look the name up again). Deliveries are
    /// few; a client per call costs little next to the call itself.
    static func post(
        _ payload: String, headers: [(String, String)], to url: String, at destination: WebhookAddressPolicy.Destination, timeout: TimeAmount
    ) async throws -> (code: Int, reason: String) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(string: payload))
        // Keyed by the host as written and lowercased, whichever form the client compares.
        var pinning = [destination.host: destination.pinnedAddress]
        pinning[destination.host.lowercased()] = destination.pinnedAddress
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration(pinning: pinning))
        do {
            let response = try await client.execute(request, timeout: timeout)
            // Read (a bounded part of) the body: the receiver may wait for it to be read before it closes.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            try? await client.shutdown()
            return (Int(response.status.code), response.status.reasonPhrase)
        } catch {
            try? await client.shutdown()
            throw error
        }
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
            let destination = try await addresses.check(delivery.url)
            let headers = [
                ("Content-Type", "application/json"), ("User-Agent", "IntelliDocs-Webhook/1"), ("X-IntelliDocs-Signature", delivery.signature),
                ("X-IntelliDocs-Delivery", delivery.id.uuidString.lowercased()), ("X-IntelliDocs-Attempt", "\(job.attempt)"),
            ]
            let status = try await Self.post(delivery.payload, headers: headers, to: delivery.url, at: destination, timeout: timeout)
            responseStatus = status.code
            if (200..<300).contains(status.code) {
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
            failure = .transient("the receiver answered \(status.code) \(status.reason); it must answer 2xx")
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
