public import Broker
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One stage's queue figures (`intellidocs queues`).
public struct StageQueueStats: Sendable, Codable, Equatable {
    public var stage: String
    public var ready: Int
    public var unacked: Int
    public var consumers: Int
    public var retrying: Int
    public var deadLettered: Int
    /// Messages per second into and out of (acked from) the work queue, when the management API says.
    public var inRate: Double?
    public var outRate: Double?

    enum CodingKeys: String, CodingKey {
        case stage, ready, unacked, consumers, retrying, deadLettered = "dead_lettered"
    }

    public init(stage: String, ready: Int, unacked: Int, consumers: Int, retrying: Int, deadLettered: Int, inRate: Double? = nil, outRate: Double? = nil) {
        self.stage = stage
        self.ready = ready
        self.unacked = unacked
        self.consumers = consumers
        self.retrying = retrying
        self.deadLettered = deadLettered
        self.inRate = inRate
        self.outRate = outRate
    }
}

/// Reads queue figures from the RabbitMQ management API (which knows unacked counts), or, without it,
/// from passive declares over AMQP (ready and consumers only; unacked then reads 0).
public struct QueueMonitor: Sendable {
    let pipeline: PipelineDefinition
    let managementURL: String?
    let broker: BrokerConnection?

    public init(pipeline: PipelineDefinition, managementURL: String?, broker: BrokerConnection?) {
        self.pipeline = pipeline
        self.managementURL = managementURL
        self.broker = broker
    }

    public func snapshot(virtualHost: String = "/") async throws -> [StageQueueStats] {
        if let managementURL {
            let queues = try await managementQueues(managementURL, virtualHost: virtualHost)
            return pipeline.stages.map { stage in
                let work = queues[stage.queue]
                return StageQueueStats(
                    stage: stage.name, ready: work?.ready ?? 0, unacked: work?.unacked ?? 0,
                    consumers: work?.consumers ?? 0,
                    retrying: stage.retryQueues.reduce(0) { $0 + (queues[$1]?.messages ?? 0) },
                    deadLettered: queues[stage.deadLetterQueue]?.messages ?? 0,
                    inRate: work?.inRate, outRate: work?.outRate)
            }
        }
        guard let broker else {
            throw PipelineError(code: .topology, message: "no way to read queue figures: set INTELLIDOCS_AMQP_MANAGEMENT_URL")
        }
        var stats: [StageQueueStats] = []
        for stage in pipeline.stages {
            let work = try await broker.queueInfo(stage.queue)
            var retrying = 0
            for queue in stage.retryQueues { retrying += try await broker.queueInfo(queue)?.messageCount ?? 0 }
            let dead = try await broker.queueInfo(stage.deadLetterQueue)
            stats.append(StageQueueStats(
                stage: stage.name, ready: work?.messageCount ?? 0, unacked: 0, consumers: work?.consumerCount ?? 0,
                retrying: retrying, deadLettered: dead?.messageCount ?? 0))
        }
        return stats
    }

    struct ManagementQueue: Decodable {
        struct Rate: Decodable { let rate: Double? }
        struct MessageStats: Decodable {
            let publishDetails: Rate?
            let ackDetails: Rate?
            enum CodingKeys: String, CodingKey { case publishDetails = "publish_details", ackDetails = "ack_details" }
        }
        let name: String
        let messages: Int?
        let messagesReady: Int?
        let messagesUnacknowledged: Int?
        let consumers: Int?
        let messageStats: MessageStats?
        enum CodingKeys: String, CodingKey {
            case name, messages, consumers
            case messagesReady = "messages_ready", messagesUnacknowledged = "messages_unacknowledged"
            case messageStats = "message_stats"
        }
    }

    struct QueueFigures {
        let ready: Int, unacked: Int, consumers: Int, messages: Int
        let inRate: Double?, outRate: Double?
    }

    private func managementQueues(_ base: String, virtualHost: String) async throws -> [String: QueueFigures] {
        guard var components = URLComponents(string: base) else {
            throw PipelineError(code: .topology, message: "INTELLIDOCS_AMQP_MANAGEMENT_URL is not a URL")
        }
        let user = components.user ?? "guest"
        let password = components.password ?? "guest"
        components.user = nil
        components.password = nil
        let vhost = virtualHost.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "%2F"
        guard let url = URL(string: (components.string ?? base) + "/api/queues/\(vhost)?columns=name,messages,messages_ready,messages_unacknowledged,consumers,message_stats") else {
            throw PipelineError(code: .topology, message: "INTELLIDOCS_AMQP_MANAGEMENT_URL is not a URL")
        }
        var request = URLRequest(url: url, timeoutInterval: 5)
        request.setValue("Basic " + Data("\(user):\(password)".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw PipelineError(code: .topology, message: "the RabbitMQ management API at \(url.host ?? "?"):\(url.port ?? 0) is not reachable (\(error.localizedDescription)); is the broker up (`deploy/local/stack status`)?")
        }
        guard let http = response as? HTTPURLResponse, http.statusCode == 200 else {
            throw PipelineError(code: .topology, message: "the RabbitMQ management API answered \((response as? HTTPURLResponse)?.statusCode ?? 0); check INTELLIDOCS_AMQP_MANAGEMENT_URL's user and password")
        }
        let queues = try JSONDecoder().decode([ManagementQueue].self, from: data)
        var result: [String: QueueFigures] = [:]
        for queue in queues {
            result[queue.name] = QueueFigures(
                ready: queue.messagesReady ?? 0, unacked: queue.messagesUnacknowledged ?? 0, consumers: queue.consumers ?? 0,
                messages: queue.messages ?? 0, inRate: queue.messageStats?.publishDetails?.rate,
                outRate: queue.messageStats?.ackDetails?.rate)
        }
        return result
    }
}
