import Broker
import Foundation
import Pipeline
import Testing
import Workflows
import Yams
import TestSupport

/// `deploy/` as an operator uses it: every file parses; every command a container runs is a real
/// `intellidocs` subcommand with real options (asked of the built binary's `--help`); every `INTELLIDOCS_*`
/// variable a manifest sets is one the sources read; the dashboard and alerts use only metrics the sources
/// define; every pipeline stage has its worker, autoscaler and queues; probes hit the real endpoints.
///
/// Needs no services, only `.build/debug/intellidocs` (deploy/local/test builds it first).
@Suite(.serialized)
struct DeployManifestTests {
    // MARK: - The checks

    @Test func everyDeployFileParses() throws {
        let deploy = try DeployFiles.load()
        for required in [
            "docker/Dockerfile", "docker/docker-compose.yml", "rabbitmq/definitions.json", "rabbitmq/rabbitmq.conf",
            "rabbitmq/CLUSTER.md", "monitoring/prometheus.yml",
        ] {
            #expect(FileManager.default.fileExists(atPath: DeployFiles.folder + "/" + required), "deploy/\(required) is missing")
        }
        #expect(deploy.yamlFiles.count >= 10, "expected the compose file, the k8s manifests and the monitoring files, found \(deploy.yamlFiles.map(\.path))")
        #expect(!deploy.dashboards.isEmpty, "no Grafana dashboard (a JSON file with `panels`) under deploy/monitoring")
        #expect(deploy.kubernetes.count >= 10, "expected the k8s manifests, found \(deploy.kubernetes.count) documents")

        for document in deploy.kubernetes {
            let place = "\(document.path) (\(document.kind) \(document.name))"
            #expect(!document.kind.isEmpty && document.object["apiVersion"] is String, "\(place): needs apiVersion and kind")
            #expect(!document.name.isEmpty, "\(place): needs metadata.name")
            if document.kind != "Namespace" {
                #expect(document.namespace == "intellidocs", "\(place): metadata.namespace should be intellidocs")
            }
        }
        let services = yamlMap(deploy.compose["services"]) ?? [:]
        #expect(services.count >= 8, "docker-compose.yml: expected postgres, rabbitmq, migrate, topology, api and the stage workers")
        for name in ["postgres", "rabbitmq", "migrate", "api"] {
            #expect(services[name] != nil, "docker-compose.yml has no service \(name)")
        }
    }

    @Test func everyCommandIsARealSubcommand() throws {
        let deploy = try DeployFiles.load()
        let cli = try IntelliDocsHelp()
        let invocations = deploy.invocations()
        #expect(invocations.count >= 10, "found only \(invocations.count) intellidocs invocations in deploy/")
        for invocation in invocations {
            for problem in cli.check(invocation.arguments) {
                Issue.record("\(invocation.source) runs `intellidocs \(invocation.arguments.joined(separator: " "))`: \(problem)")
            }
        }
        for problem in deploy.invocationProblems {
            Issue.record("\(problem)")
        }
    }

    @Test func everyVariableSetIsOneTheBinaryReads() throws {
        let deploy = try DeployFiles.load()
        let read = try SourceScan.environmentVariables()
        #expect(read.contains("INTELLIDOCS_DATABASE_URL"), "the scan of Sources/ for \"INTELLIDOCS_…\" literals found nothing sensible: \(read.sorted())")
        let set = deploy.variablesSet()
        #expect(set.contains { $0.name == "INTELLIDOCS_AMQP_URL" }, "no manifest sets INTELLIDOCS_AMQP_URL?")
        for entry in set where entry.name.hasPrefix("INTELLIDOCS_") && !read.contains(entry.name) {
            Issue.record("\(entry.source) sets \(entry.name), which no source file reads (no \"\(entry.name)\" literal under Sources/)")
        }
        // Tesseract needs OMP_THREAD_LIMIT=1; the image sets it for every role.
        #expect(set.contains { $0.source.hasPrefix("deploy/docker/Dockerfile") && $0.name == "OMP_THREAD_LIMIT" && $0.value == "1" },
                "the Dockerfile must set ENV OMP_THREAD_LIMIT=1")

        // envFrom references resolve to a ConfigMap or Secret of the manifests.
        let configMaps = Set(deploy.kubernetes.filter { $0.kind == "ConfigMap" }.map(\.name))
        let secrets = Set(deploy.kubernetes.filter { $0.kind == "Secret" }.map(\.name))
        for container in deploy.containers() {
            for source in yamlList(container.spec["envFrom"]) {
                let entry = yamlMap(source) ?? [:]
                if let name = yamlMap(entry["configMapRef"])?["name"] as? String {
                    #expect(configMaps.contains(name), "\(container.source): envFrom names ConfigMap \(name), which deploy/k8s does not define")
                }
                if let name = yamlMap(entry["secretRef"])?["name"] as? String {
                    #expect(secrets.contains(name), "\(container.source): envFrom names Secret \(name), which deploy/k8s does not define")
                }
            }
        }
    }

    @Test func dashboardsAndAlertsUseMetricsTheSourcesDefine() throws {
        let deploy = try DeployFiles.load()
        let defined = try SourceScan.metricNames()
        #expect(!defined.isEmpty, "no metric names found under Sources/")
        let dashboard = deploy.dashboardExpressions()
        #expect(dashboard.count >= 10, "the dashboard has only \(dashboard.count) queries")
        var shown = Set<String>()
        for (source, expression) in dashboard + deploy.alertExpressions() {
            for metric in regexMatches(#"\bintellidocs_[a-z0-9_]+"#, in: expression).map({ $0[0] }) {
                if dashboard.contains(where: { $0.source == source }) { shown.insert(metric) }
                let base = ["_bucket", "_sum", "_count"].first { metric.hasSuffix($0) }.map { String(metric.dropLast($0.count)) }
                if !defined.contains(metric) && !(base.map(defined.contains) ?? false) {
                    Issue.record("\(source) queries \(metric), which no source file defines (known: \(defined.sorted().joined(separator: ", ")))")
                }
            }
        }
        // What the dashboard is for (issue 8): stage throughput, backlog, durations, retries and dead letters, API latency.
        for metric in [
            "intellidocs_jobs_total", "intellidocs_job_duration_seconds_bucket", "intellidocs_queue_messages_ready",
            "intellidocs_queue_retrying", "intellidocs_queue_dead_lettered", "intellidocs_http_request_duration_seconds_bucket",
        ] {
            #expect(shown.contains(metric), "the dashboard does not show \(metric)")
        }
    }

    @Test func everyStageHasWorkersAutoscalingAndQueues() throws {
        let deploy = try DeployFiles.load()
        // The pipeline's stages and the queues of workflow events and webhook calls.
        let pipeline = EventQueues.monitored(try PipelineDefinition.load(path: DeployFiles.repository + "/pipelines/default.yml"))
        let stages = Set(pipeline.stages.map(\.name))

        // Kubernetes: a Deployment per stage, scaled by KEDA on that stage's queue.
        var deploymentOfStage: [String: String] = [:]
        for container in deploy.containers() where container.arguments.first == "worker" && container.arguments.count >= 2 {
            let stage = container.arguments[1]
            #expect(stages.contains(stage), "\(container.source) runs `worker \(stage)`, not a stage of pipelines/default.yml (\(stages.sorted()))")
            #expect(container.owner.kind == "Deployment", "\(container.source): stage workers run as Deployments")
            deploymentOfStage[stage] = container.owner.name
        }
        let scaledObjects = deploy.kubernetes.filter { $0.kind == "ScaledObject" }
        let authentications = deploy.kubernetes.filter { $0.kind == "TriggerAuthentication" }
        for stage in pipeline.stages {
            guard let deployment = deploymentOfStage[stage.name] else {
                Issue.record("deploy/k8s has no Deployment running `worker \(stage.name)`")
                continue
            }
            let scalers = scaledObjects.filter { yamlMap($0.object["spec"]).flatMap { yamlMap($0["scaleTargetRef"]) }?["name"] as? String == deployment }
            #expect(scalers.count == 1, "deploy/k8s: expected one ScaledObject for Deployment \(deployment), found \(scalers.count)")
            for scaler in scalers {
                let triggers = yamlList(yamlMap(scaler.object["spec"])?["triggers"]).compactMap(yamlMap)
                let rabbit = triggers.filter { $0["type"] as? String == "rabbitmq" }
                #expect(!rabbit.isEmpty, "\(scaler.path): ScaledObject \(scaler.name) has no rabbitmq trigger")
                for trigger in rabbit {
                    let metadata = yamlMap(trigger["metadata"]) ?? [:]
                    #expect(metadata["queueName"] as? String == stage.queue, "\(scaler.path): trigger should watch queue \(stage.queue), watches \(metadata["queueName"] ?? "nothing")")
                    #expect(metadata["value"] is String, "\(scaler.path): KEDA wants the trigger's value as a string")
                    let reference = yamlMap(trigger["authenticationRef"])?["name"] as? String
                    #expect(authentications.contains { $0.name == reference }, "\(scaler.path): authenticationRef \(reference ?? "(none)") is not a TriggerAuthentication of deploy/k8s")
                }
            }
        }
        for authentication in authentications {
            for reference in yamlList(yamlMap(authentication.object["spec"])?["secretTargetRef"]).compactMap(yamlMap) {
                let secret = deploy.kubernetes.first { $0.kind == "Secret" && $0.name == reference["name"] as? String }
                let keys = Array((yamlMap(secret?.object["stringData"]) ?? [:]).keys) + Array((yamlMap(secret?.object["data"]) ?? [:]).keys)
                #expect(keys.contains { $0 == reference["key"] as? String }, "\(authentication.path): secretTargetRef \(reference) does not resolve to a Secret key")
            }
        }

        // docker-compose: a service per stage, scalable (no fixed host port), scraped by Prometheus.
        let prometheus = try String(contentsOfFile: DeployFiles.folder + "/monitoring/prometheus.yml", encoding: .utf8)
        let services = yamlMap(deploy.compose["services"]) ?? [:]
        for stage in pipeline.stages {
            let running = services.filter { arguments(ofComposeService: yamlMap($0.value) ?? [:]).prefix(2) == ["worker", stage.name] }
            #expect(running.count == 1, "docker-compose.yml: expected one service running `worker \(stage.name)`, found \(running.keys.sorted())")
            for (name, service) in running {
                #expect(yamlMap(service)?["ports"] == nil, "docker-compose.yml: \(name) publishes host ports, so `--scale \(name)=N` would collide")
                #expect(prometheus.contains(name), "deploy/monitoring/prometheus.yml does not scrape \(name)")
            }
        }
        for (name, service) in services {
            let args = arguments(ofComposeService: yamlMap(service) ?? [:])
            if args.first == "worker", args.count >= 2 {
                #expect(stages.contains(args[1]), "docker-compose.yml: \(name) runs `worker \(args[1])`, not a stage of pipelines/default.yml")
            }
        }
    }

    @Test func rabbitDefinitionsMatchTheTopology() throws {
        let pipeline = EventQueues.monitored(try PipelineDefinition.load(path: DeployFiles.repository + "/pipelines/default.yml"))
        let definitions = yamlMap(try DeployFiles.json("rabbitmq/definitions.json")) ?? [:]
        var queues: [String: [String: Any]] = [:]
        for queue in yamlList(definitions["queues"]).compactMap(yamlMap) {
            if let name = queue["name"] as? String { queues[name] = queue }
        }
        var expected: [(name: String, arguments: AMQPTable)] = []
        for stage in pipeline.stages {
            expected.append((stage.queue, Topology.workQueueArguments(stage)))
            for delay in stage.retryDelays {
                expected.append((stage.retryQueue(delay: delay), Topology.retryQueueArguments(stage, delay: delay)))
            }
            // As `Topology.apply` declares the parking lot.
            expected.append((stage.deadLetterQueue, ["x-queue-type": .string("quorum")]))
        }
        for (name, arguments) in expected {
            guard let queue = queues[name] else {
                Issue.record("deploy/rabbitmq/definitions.json lacks queue \(name)")
                continue
            }
            #expect(queue["vhost"] as? String == "/", "definitions.json: queue \(name) should be in vhost /")
            #expect(queue["durable"] as? Bool == true && queue["auto_delete"] as? Bool == false, "definitions.json: queue \(name) must be durable, not auto-delete")
            let actual = yamlMap(queue["arguments"]) ?? [:]
            #expect(Set(actual.keys) == Set(arguments.keys), "definitions.json: queue \(name) has arguments \(actual.keys.sorted()), the topology declares \(arguments.keys.sorted())")
            for (key, value) in arguments {
                #expect(actual[key].map { same($0, value) } ?? false, "definitions.json: queue \(name) argument \(key) is \(actual[key] ?? "missing"), the topology declares \(value)")
            }
        }
        let stale = Set(queues.keys).subtracting(expected.map(\.name))
        #expect(stale.isEmpty, "definitions.json declares queues the pipeline does not have: \(stale.sorted())")

        // The quorum queues are covered by a policy that does not fight the queue arguments.
        let policies = yamlList(definitions["policies"]).compactMap(yamlMap)
        #expect(!policies.isEmpty, "definitions.json has no policies")
        for stage in pipeline.stages {
            for queue in [stage.queue, stage.deadLetterQueue] {
                let covering = policies.filter { policy in
                    (policy["pattern"] as? String).map { !regexMatches($0, in: queue).isEmpty } ?? false
                }
                #expect(!covering.isEmpty, "definitions.json: no policy pattern matches quorum queue \(queue)")
            }
        }
        for policy in policies {
            let keys = Set((yamlMap(policy["definition"]) ?? [:]).keys)
            let conflicting = keys.intersection(["delivery-limit", "dead-letter-exchange", "dead-letter-routing-key", "message-ttl", "queue-mode"])
            #expect(conflicting.isEmpty, "definitions.json: policy \(policy["name"] ?? "?") sets \(conflicting.sorted()), which the topology sets as queue arguments")
        }

        // The compose stack logs in as a user the definitions create.
        let users = Set(yamlList(definitions["users"]).compactMap { yamlMap($0)?["name"] as? String })
        let deploy = try DeployFiles.load()
        for (source, name, value) in deploy.variablesSet() where name == "INTELLIDOCS_AMQP_URL" && source.contains("docker-compose") {
            let user = URLComponents(string: value)?.user ?? ""
            #expect(users.contains(user), "\(source): INTELLIDOCS_AMQP_URL logs in as '\(user)', which definitions.json does not create")
        }
    }

    @Test func probesHitTheRealEndpoints() throws {
        let deploy = try DeployFiles.load()
        let routes = try SourceScan.apiRoutes()
        #expect(routes.contains("/healthz") && routes.contains("/readyz"), "the API routes found under Sources/ControlPlane: \(routes.sorted())")
        let metricsPortSetting = deploy.kubernetes.first { $0.kind == "ConfigMap" }
            .flatMap { yamlMap($0.object["data"])?["INTELLIDOCS_METRICS_PORT"] as? String }

        var api = 0
        var workers = 0
        for container in deploy.containers() {
            let role = container.arguments.first ?? ""
            guard role == "api" || role == "worker" || role == "run" else { continue }
            let port: Int?
            if role == "api" {
                api += 1
                port = option("--port", in: container.arguments).flatMap { Int($0) }
                #expect(port != nil, "\(container.source): pass --port to `intellidocs api` so probes and Service agree with it")
            } else {
                workers += 1
                port = option("--metrics-port", in: container.arguments).flatMap { Int($0) } ?? metricsPortSetting.flatMap { Int($0) } ?? 9464
            }
            let ports = yamlList(container.spec["ports"]).compactMap(yamlMap)
            func resolve(_ value: Any?) -> Int? {
                if let number = value as? Int { return number }
                guard let name = value as? String else { return nil }
                return ports.first { $0["name"] as? String == name }?["containerPort"] as? Int
            }
            for kind in ["livenessProbe", "readinessProbe"] {
                guard let probe = yamlMap(container.spec[kind]), let get = yamlMap(probe["httpGet"]) else {
                    Issue.record("\(container.source): needs an httpGet \(kind)")
                    continue
                }
                let path = get["path"] as? String ?? ""
                if role == "api" {
                    #expect(path == (kind == "livenessProbe" ? "/healthz" : "/readyz"), "\(container.source): the API's \(kind) should use \(kind == "livenessProbe" ? "/healthz" : "/readyz"), uses \(path)")
                    #expect(routes.contains(path), "\(container.source): \(kind) path \(path) is not an API route (\(routes.sorted()))")
                } else {
                    #expect(path == "/metrics", "\(container.source): a worker serves only /metrics, the \(kind) uses \(path)")
                }
                #expect(resolve(get["port"]) != nil && resolve(get["port"]) == port, "\(container.source): \(kind) port \(get["port"] ?? "none") is not the port the process listens on (\(port.map { "\($0)" } ?? "?"))")
            }
            let annotations = yamlMap(yamlMap(container.podTemplate["metadata"])?["annotations"]) ?? [:]
            if let scraped = annotations["prometheus.io/port"] as? String {
                #expect(Int(scraped) == port, "\(container.source): prometheus.io/port \(scraped) is not the metrics port \(port.map { "\($0)" } ?? "?")")
            }
            if let path = annotations["prometheus.io/path"] as? String {
                #expect(path == "/metrics", "\(container.source): prometheus.io/path should be /metrics, is \(path)")
            }
        }
        #expect(api >= 1 && workers >= 1, "found \(api) API and \(workers) worker containers in deploy/k8s")

        // docker-compose healthchecks.
        for (name, value) in yamlMap(deploy.compose["services"]) ?? [:] {
            let service = yamlMap(value) ?? [:]
            let args = arguments(ofComposeService: service)
            guard let role = args.first, role == "api" || role == "worker" else { continue }
            let test = yamlList(yamlMap(service["healthcheck"])?["test"]).compactMap { $0 as? String }.joined(separator: " ")
            let urls = regexMatches(#"http://[^/:\s]+:(\d+)(/[A-Za-z0-9._/-]*)"#, in: test)
            #expect(!urls.isEmpty, "docker-compose.yml: \(name) needs a healthcheck on its HTTP endpoint")
            for url in urls {
                if role == "api" {
                    #expect(url[1] == (option("--port", in: args) ?? "8080") && routes.contains(url[2]), "docker-compose.yml: \(name) healthcheck \(url[0]) is not an API route on its --port")
                } else {
                    #expect(url[1] == "9464" && url[2] == "/metrics", "docker-compose.yml: \(name) healthcheck \(url[0]) should be the worker's :9464/metrics")
                }
            }
        }
    }
}

// MARK: - The files under deploy/

/// Everything under deploy/, parsed once per test.
fileprivate struct DeployFiles {
    static let repository: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static var folder: String { repository + "/deploy" }

    struct YAMLFile {
        let path: String
        let documents: [Any]
    }

    struct KubernetesObject {
        let path: String
        let object: [String: Any]
        var kind: String { object["kind"] as? String ?? "" }
        var metadata: [String: Any] { yamlMap(object["metadata"]) ?? [:] }
        var name: String { metadata["name"] as? String ?? "" }
        var namespace: String? { metadata["namespace"] as? String }
    }

    struct Container {
        let owner: KubernetesObject
        let podTemplate: [String: Any]
        let spec: [String: Any]
        let arguments: [String]
        var source: String { "\(owner.path) \(owner.kind) \(owner.name) container \(spec["name"] as? String ?? "?")" }
    }

    let yamlFiles: [YAMLFile]
    let jsonFiles: [(path: String, value: Any)]
    let compose: [String: Any]
    let kubernetes: [KubernetesObject]
    let dashboards: [(path: String, value: [String: Any])]
    let dockerfile: String

    static func load() throws -> DeployFiles {
        var yamlFiles: [YAMLFile] = []
        var jsonFiles: [(path: String, value: Any)] = []
        for relative in files(under: folder) {
            let path = folder + "/" + relative
            let label = "deploy/" + relative
            switch URL(fileURLWithPath: relative).pathExtension {
            case "yml", "yaml":
                let text = try String(contentsOfFile: path, encoding: .utf8)
                var sequence = try Yams.load_all(yaml: text)
                var documents: [Any] = []
                while let document = sequence.next() {
                    if !(document is NSNull) { documents.append(document) }
                }
                if let error = sequence.error {
                    throw DeployTestFailure("\(label) is not valid YAML: \(error)")
                }
                if documents.isEmpty { throw DeployTestFailure("\(label) holds no YAML document") }
                yamlFiles.append(YAMLFile(path: label, documents: documents))
            case "json":
                do {
                    jsonFiles.append((label, try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))))
                } catch {
                    throw DeployTestFailure("\(label) is not valid JSON: \(error)")
                }
            default:
                continue
            }
        }
        guard let composeFile = yamlFiles.first(where: { $0.path == "deploy/docker/docker-compose.yml" }),
            let compose = yamlMap(composeFile.documents.first)
        else { throw DeployTestFailure("deploy/docker/docker-compose.yml is missing or not a mapping") }
        var kubernetes: [KubernetesObject] = []
        for file in yamlFiles where file.path.hasPrefix("deploy/k8s/") {
            for document in file.documents {
                guard let object = yamlMap(document) else { throw DeployTestFailure("\(file.path): a document is not a mapping") }
                kubernetes.append(KubernetesObject(path: file.path, object: object))
            }
        }
        let dashboards = jsonFiles.compactMap { file -> (path: String, value: [String: Any])? in
            guard file.path.hasPrefix("deploy/monitoring/"), let object = yamlMap(file.value), object["panels"] != nil else { return nil }
            return (file.path, object)
        }
        let dockerfile = try String(contentsOfFile: folder + "/docker/Dockerfile", encoding: .utf8)
        return DeployFiles(
            yamlFiles: yamlFiles, jsonFiles: jsonFiles, compose: compose, kubernetes: kubernetes, dashboards: dashboards,
            dockerfile: dockerfile)
    }

    static func json(_ relative: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/" + relative)))
    }

    /// Files under `folder`, relative, sorted; skips deploy/local (shell scripts, no manifests).
    static func files(under folder: String, skipping skipped: String? = "local/") -> [String] {
        let enumerator = FileManager.default.enumerator(atPath: folder)
        var result: [String] = []
        while let relative = enumerator?.nextObject() as? String {
            if let skipped, relative.hasPrefix(skipped) { continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory), !isDirectory.boolValue {
                result.append(relative)
            }
        }
        return result.sorted()
    }

    /// Dockerfile instructions with continuation lines joined, comments dropped.
    var dockerInstructions: [String] {
        var instructions: [String] = []
        var current = ""
        for line in dockerfile.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("#") { continue }
            if trimmed.hasSuffix("\\") {
                current += String(trimmed.dropLast()) + " "
            } else {
                current += trimmed
                if !current.trimmingCharacters(in: .whitespaces).isEmpty { instructions.append(current) }
                current = ""
            }
        }
        return instructions
    }

    /// Pod specs' containers (and init containers) that run the IntelliDocs image.
    func containers() -> [Container] {
        var result: [Container] = []
        for object in kubernetes {
            let spec = yamlMap(object.object["spec"]) ?? [:]
            let template: [String: Any]?
            switch object.kind {
            case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
                template = yamlMap(spec["template"])
            case "CronJob":
                template = yamlMap(yamlMap(yamlMap(spec["jobTemplate"])?["spec"])?["template"])
            case "Pod":
                template = object.object
            default:
                template = nil
            }
            guard let template, let podSpec = yamlMap(template["spec"]) else { continue }
            for container in (yamlList(podSpec["initContainers"]) + yamlList(podSpec["containers"])).compactMap(yamlMap) {
                guard (container["image"] as? String)?.contains("intellidocs") == true else { continue }
                let command = yamlList(container["command"]).map { "\($0)" }
                let args = yamlList(container["args"]).map { "\($0)" }
                result.append(Container(owner: object, podTemplate: template, spec: container, arguments: Array(command.dropFirst()) + args))
            }
        }
        return result
    }

    /// Every `intellidocs` command line in deploy/: compose services, k8s containers, the Dockerfile's CMD.
    func invocations() -> [(source: String, arguments: [String])] {
        var result: [(source: String, arguments: [String])] = []
        for (name, value) in (yamlMap(compose["services"]) ?? [:]).sorted(by: { $0.key < $1.key }) {
            let service = yamlMap(value) ?? [:]
            guard isIntelliDocs(service) else { continue }
            result.append(("deploy/docker/docker-compose.yml service \(name)", arguments(ofComposeService: service)))
        }
        for container in containers() {
            result.append((container.source, container.arguments))
        }
        for instruction in dockerInstructions where instruction.hasPrefix("CMD ") {
            let array = (try? JSONSerialization.jsonObject(with: Data(instruction.dropFirst(4).utf8))) as? [String]
            result.append(("deploy/docker/Dockerfile CMD", array ?? ["<CMD is not a JSON array>"]))
        }
        return result
    }

    /// Containers or services that run something other than the binary (a shell, another entrypoint).
    var invocationProblems: [String] {
        var problems: [String] = []
        for (name, value) in yamlMap(compose["services"]) ?? [:] {
            let service = yamlMap(value) ?? [:]
            guard isIntelliDocs(service), let entrypoint = service["entrypoint"] else { continue }
            let first = (entrypoint as? String) ?? yamlList(entrypoint).first.map { "\($0)" } ?? ""
            if !first.hasSuffix("intellidocs") {
                problems.append("docker-compose.yml service \(name) replaces the entrypoint with \(first)")
            }
        }
        for container in containers() {
            if let command = yamlList(container.spec["command"]).first.map({ "\($0)" }), !command.hasSuffix("intellidocs") {
                problems.append("\(container.source) runs \(command) instead of the intellidocs binary")
            }
            if container.arguments.isEmpty {
                problems.append("\(container.source) runs no intellidocs subcommand (the image's CMD prints help and exits)")
            }
        }
        let entrypoint = dockerInstructions.first { $0.hasPrefix("ENTRYPOINT ") }
            .flatMap { (try? JSONSerialization.jsonObject(with: Data($0.dropFirst(11).utf8))) as? [String] }
        if entrypoint?.count != 1 || !(entrypoint?.first?.hasSuffix("/intellidocs") ?? false) {
            problems.append("deploy/docker/Dockerfile: ENTRYPOINT should be the intellidocs binary as a JSON array, is \(entrypoint ?? [])")
        }
        return problems
    }

    /// (where, name, value) of every environment variable a file sets.
    func variablesSet() -> [(source: String, name: String, value: String)] {
        var result: [(source: String, name: String, value: String)] = []
        for (name, value) in yamlMap(compose["services"]) ?? [:] {
            let service = yamlMap(value) ?? [:]
            let source = "deploy/docker/docker-compose.yml service \(name)"
            if let environment = yamlMap(service["environment"]) {
                for (key, value) in environment { result.append((source, key, "\(value)")) }
            } else {
                for entry in yamlList(service["environment"]).map({ "\($0)" }) where !entry.isEmpty {
                    let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
                    result.append((source, parts[0], parts.count > 1 ? parts[1] : ""))
                }
            }
        }
        for container in containers() {
            for entry in yamlList(container.spec["env"]).compactMap(yamlMap) {
                result.append((container.source, entry["name"] as? String ?? "", "\(entry["value"] ?? "")"))
            }
        }
        for object in kubernetes where object.kind == "ConfigMap" || object.kind == "Secret" {
            for key in ["data", "stringData"] {
                for (name, value) in yamlMap(object.object[key]) ?? [:] {
                    result.append(("\(object.path) \(object.kind) \(object.name)", name, "\(value)"))
                }
            }
        }
        for instruction in dockerInstructions where instruction.hasPrefix("ENV ") {
            let words = instruction.dropFirst(4).split(whereSeparator: \.isWhitespace).map(String.init)
            if let first = words.first, !first.contains("=") {
                result.append(("deploy/docker/Dockerfile ENV", first, words.dropFirst().joined(separator: " ")))
            } else {
                for word in words {
                    let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
                    result.append(("deploy/docker/Dockerfile ENV", parts[0], parts.count > 1 ? parts[1] : ""))
                }
            }
        }
        return result
    }

    /// (where, PromQL) of every dashboard query and template variable.
    func dashboardExpressions() -> [(source: String, expression: String)] {
        var result: [(source: String, expression: String)] = []
        func walk(_ value: Any, _ path: String) {
            if let object = yamlMap(value) {
                for (key, child) in object {
                    if key == "expr" || key == "definition", let text = child as? String {
                        result.append((path, text))
                    } else if key == "query", let text = child as? String, text.contains("(") {
                        result.append((path, text))
                    } else {
                        walk(child, path)
                    }
                }
            } else if let array = value as? [Any] {
                for child in array { walk(child, path) }
            }
        }
        for dashboard in dashboards { walk(dashboard.value, dashboard.path) }
        return result
    }

    /// (where, PromQL) of every Prometheus rule under deploy/monitoring.
    func alertExpressions() -> [(source: String, expression: String)] {
        var result: [(source: String, expression: String)] = []
        for file in yamlFiles where file.path.hasPrefix("deploy/monitoring/") {
            for document in file.documents {
                for group in yamlList(yamlMap(document)?["groups"]).compactMap(yamlMap) {
                    for rule in yamlList(group["rules"]).compactMap(yamlMap) {
                        if let expression = rule["expr"] as? String {
                            result.append(("\(file.path) \(rule["alert"] ?? rule["record"] ?? "rule")", expression))
                        }
                    }
                }
            }
        }
        return result
    }
}

/// A compose service that runs the IntelliDocs image.
private func isIntelliDocs(_ service: [String: Any]) -> Bool {
    service["build"] != nil || (service["image"] as? String)?.contains("intellidocs") == true
}

/// The arguments a compose service passes to the binary (its `command`).
private func arguments(ofComposeService service: [String: Any]) -> [String] {
    guard isIntelliDocs(service) else { return [] }
    let entrypoint = (service["entrypoint"] as? String).map { $0.split(separator: " ").map(String.init) } ?? yamlList(service["entrypoint"]).map { "\($0)" }
    let command = (service["command"] as? String).map { $0.split(separator: " ").map(String.init) } ?? yamlList(service["command"]).map { "\($0)" }
    return Array(entrypoint.dropFirst()) + command
}

/// The value after `name` (`--port 8080` or `--port=8080`).
private func option(_ name: String, in arguments: [String]) -> String? {
    for (index, argument) in arguments.enumerated() {
        if argument == name, index + 1 < arguments.count { return arguments[index + 1] }
        if argument.hasPrefix(name + "=") { return String(argument.dropFirst(name.count + 1)) }
    }
    return nil
}

// MARK: - The real command tree, from the built binary

/// `intellidocs … --help`, parsed: subcommands and options of every command a manifest uses.
fileprivate final class IntelliDocsHelp {
    let binary = DeployFiles.repository + "/.build/debug/intellidocs"
    private var helps: [[String]: String] = [:]

    init() throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw DeployTestFailure("\(binary) is missing: build it first (`swift build --product intellidocs`; deploy/local/test does)")
        }
    }

    func help(_ path: [String]) throws -> String {
        if let cached = helps[path] { return cached }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = path + ["--help"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw DeployTestFailure("`intellidocs \((path + ["--help"]).joined(separator: " "))` failed: \(text)")
        }
        helps[path] = text
        return text
    }

    /// Names listed under SUBCOMMANDS: (two-space indent; wrapped abstracts are indented further).
    func subcommands(_ path: [String]) throws -> [String] {
        var names: [String] = []
        var inside = false
        for line in try help(path).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("SUBCOMMANDS:") {
                inside = true
                continue
            }
            guard inside else { continue }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { break }
            if let name = regexMatches(#"^  ([a-z][a-z0-9-]*)(\s|$)"#, in: String(line)).first?[1] { names.append(name) }
        }
        return names
    }

    func options(_ path: [String]) throws -> Set<String> {
        Set(regexMatches(#"(?<![A-Za-z0-9-])--[a-z0-9][a-z0-9-]*"#, in: try help(path)).map { $0[0] }).union(["-h", "--help"])
    }

    /// What is wrong with `intellidocs arguments…`, if anything.
    func check(_ arguments: [String]) -> [String] {
        do {
            var path: [String] = []
            var index = 0
            while index < arguments.count {
                let subcommands = try subcommands(path)
                if subcommands.isEmpty || arguments[index].hasPrefix("-") { break }
                guard subcommands.contains(arguments[index]) else {
                    return ["`\(arguments[index])` is not a subcommand of `\((["intellidocs"] + path).joined(separator: " "))` (it has: \(subcommands.joined(separator: ", ")))"]
                }
                path.append(arguments[index])
                index += 1
            }
            let rest = arguments[index...]
            if try !subcommands(path).isEmpty && !rest.contains(where: { $0 == "--help" || $0 == "-h" }) {
                return ["`\((["intellidocs"] + path).joined(separator: " "))` needs a subcommand (\(try subcommands(path).joined(separator: ", ")))"]
            }
            let known = try options(path)
            return rest.filter { $0.hasPrefix("-") }
                .map { String($0.split(separator: "=", maxSplits: 1)[0]) }
                .filter { !known.contains($0) }
                .map { "`\($0)` is not an option of `\((["intellidocs"] + path).joined(separator: " "))` (it has: \(known.sorted().joined(separator: ", ")))" }
        } catch {
            return ["\(error)"]
        }
    }
}

// MARK: - What the sources define

fileprivate enum SourceScan {
    static func swiftFiles() throws -> [(path: String, text: String)] {
        let folder = DeployFiles.repository + "/Sources"
        return try DeployFiles.files(under: folder, skipping: nil).filter { $0.hasSuffix(".swift") }.map {
            ("Sources/" + $0, try String(contentsOfFile: folder + "/" + $0, encoding: .utf8))
        }
    }

    /// Every `"INTELLIDOCS_…"` string literal: the variables the binary (or its config file) reads.
    static func environmentVariables() throws -> Set<String> {
        Set(try swiftFiles().flatMap { regexMatches(#""(INTELLIDOCS_[A-Z0-9_]+)""#, in: $0.text).map { $0[1] } })
    }

    /// Metric names: `"intellidocs_…"` literals, and swift-prometheus `MetricNameDescriptor(namespace:subsystem:
    /// metricName:unitName:)` joined with underscores as the library names them.
    static func metricNames() throws -> Set<String> {
        var names = Set<String>()
        for file in try swiftFiles() {
            for match in regexMatches(#""(intellidocs_[a-z0-9_]+)""#, in: file.text) { names.insert(match[1]) }
            for call in regexMatches(#"MetricNameDescriptor\(([^)]*)\)"#, in: file.text) {
                let parts = ["namespace", "subsystem", "metricName", "unitName"].compactMap { label in
                    regexMatches(label + #":\s*"([a-z0-9_]*)""#, in: call[1]).first?[1]
                }.filter { !$0.isEmpty }
                if parts.count >= 2 { names.insert(parts.joined(separator: "_")) }
            }
        }
        return names
    }

    /// Paths the control plane registers with `.get("…", use: …)` (e.g. "/healthz").
    static func apiRoutes() throws -> Set<String> {
        Set(try swiftFiles().filter { $0.path.hasPrefix("Sources/ControlPlane/") }.flatMap { file in
            regexMatches(#"\.get\("([^"]+)",\s*use:"#, in: file.text).map { "/" + $0[1] }
        })
    }
}

// MARK: - Helpers

fileprivate struct DeployTestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A YAML or JSON mapping as `[String: Any]` (Yams builds `[AnyHashable: Any]`).
fileprivate func yamlMap(_ value: Any?) -> [String: Any]? {
    if let object = value as? [String: Any] { return object }
    guard let object = value as? [AnyHashable: Any] else { return nil }
    var result: [String: Any] = [:]
    for (key, value) in object { result["\(key.base)"] = value }
    return result
}

fileprivate func yamlList(_ value: Any?) -> [Any] {
    value as? [Any] ?? []
}

/// Every match of `pattern` in `text`: the whole match, then each capture group ("" when it did not take part).
fileprivate func regexMatches(_ pattern: String, in text: String) -> [[String]] {
    guard let expression = try? NSRegularExpression(pattern: pattern, options: [.anchorsMatchLines]) else { return [] }
    return expression.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { match in
        (0..<match.numberOfRanges).map { index in
            Range(match.range(at: index), in: text).map { String(text[$0]) } ?? ""
        }
    }
}

/// A JSON value from definitions.json equals what the topology declares.
private func same(_ json: Any, _ value: AMQPFieldValue) -> Bool {
    switch value {
    case .string(let string): return json as? String == string
    case .int(let number): return !(json is String) && (json as? Int).map(Int64.init) == number
    case .bool(let flag): return json as? Bool == flag
    default: return false
    }
}
