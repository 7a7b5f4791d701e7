import Foundation

/// The OpenAPI 3.1 description of every route, served at `GET /openapi.json`.
///
/// It is written here by hand, separately from the route registrations, and a test compares the two
/// (`OpenAPITests`): a route added without its description — or described but never registered — fails
/// the build's tests.
enum OpenAPIDocument {
    /// One operation: method, path template (as the router writes it) and what it takes and gives.
    struct Operation {
        enum Security { case none, bearer, signature }
        let method: String
        let path: String
        let tag: String
        let summary: String
        var security: Security = .bearer
        /// The permission of Permissions.md the route needs (organisation routes).
        var permission: String? = nil
        var request: [String: Any]? = nil
        var requestContentType = "application/json"
        var responses: [(status: Int, description: String, schema: [String: Any]?)]
        var query: [(name: String, description: String)] = []
    }

    static func ref(_ name: String) -> [String: Any] { ["$ref": "#/components/schemas/\(name)"] }
    static func object(_ properties: [String: [String: Any]], required: [String] = []) -> [String: Any] {
        ["type": "object", "properties": properties, "required": required, "additionalProperties": false]
    }
    static func array(_ items: [String: Any]) -> [String: Any] { ["type": "array", "items": items] }
    static var string: [String: Any] { ["type": "string"] }
    static var integer: [String: Any] { ["type": "integer"] }
    static var uuid: [String: Any] { ["type": "string", "format": "uuid"] }
    static var time: [String: Any] { ["type": "string", "format": "date-time"] }
    static var email: [String: Any] { ["type": "string", "format": "email", "maxLength": 254] }
    static var name: [String: Any] { ["type": "string", "minLength": 1, "maxLength": 200] }
    static var role: [String: Any] { ["type": "string", "enum": ["owner", "admin", "member", "viewer"]] }
    static func nullable(_ schema: [String: Any]) -> [String: Any] { ["oneOf": [schema, ["type": "null"]]] }

    static var operations: [Operation] {
        [
            // System
            Operation(method: "GET", path: "/healthz", tag: "system", summary: "The process is up", security: .none,
                      responses: [(200, "ok", object(["status": string]))]),
            Operation(method: "GET", path: "/readyz", tag: "system", summary: "PostgreSQL and RabbitMQ are reachable", security: .none,
                      responses: [(200, "ready", object(["status": string, "checks": ["type": "object", "additionalProperties": string]])),
                                  (503, "not ready", ref("Error"))]),
            Operation(method: "GET", path: "/metrics", tag: "system", summary: "Prometheus metrics (text format)", security: .none,
                      responses: [(200, "metrics", nil)]),
            Operation(method: "GET", path: "/openapi.json", tag: "system", summary: "This document", security: .none,
                      responses: [(200, "OpenAPI 3.1 document", ["type": "object"])]),
            // Auth
            Operation(method: "POST", path: "/v1/auth/register", tag: "auth", summary: "Create an account", security: .none,
                      request: object(["email": email, "password": ["type": "string", "minLength": 10, "description": "10 characters to 72 bytes"], "name": name],
                                      required: ["email", "password", "name"]),
                      responses: [(201, "the account", ref("User")), (400, "invalid input", ref("Error")), (409, "e-mail taken", ref("Error"))]),
            Operation(method: "POST", path: "/v1/auth/login", tag: "auth", summary: "Log in: an access token and a refresh token", security: .none,
                      request: object(["email": email, "password": string], required: ["email", "password"]),
                      responses: [(200, "tokens", ref("TokenPair")), (401, "wrong e-mail or password", ref("Error")),
                                  (429, "too many failed logins (Retry-After)", ref("Error"))]),
            Operation(method: "POST", path: "/v1/auth/refresh", tag: "auth", summary: "Rotate a refresh token for a new pair (reuse revokes the session)",
                      security: .none, request: object(["refresh_token": string], required: ["refresh_token"]),
                      responses: [(200, "tokens", ref("TokenPair")), (401, "invalid, expired or reused", ref("Error"))]),
            Operation(method: "POST", path: "/v1/auth/logout", tag: "auth", summary: "End the session of a refresh token", security: .none,
                      request: object(["refresh_token": string], required: ["refresh_token"]),
                      responses: [(204, "logged out", nil)]),
            Operation(method: "GET", path: "/v1/me", tag: "account", summary: "The caller's account and organisations",
                      responses: [(200, "the account", ref("Me")), (401, "not logged in", ref("Error"))]),
            Operation(method: "PATCH", path: "/v1/me", tag: "account", summary: "Change name or password (a new password ends other sessions)",
                      request: object(["name": name, "password": string, "current_password": string]),
                      responses: [(200, "the account", ref("Me")), (400, "invalid input", ref("Error")), (403, "wrong current password", ref("Error"))]),
            // Organisations
            Operation(method: "POST", path: "/v1/orgs", tag: "organizations", summary: "Create an organisation (the caller becomes owner)",
                      request: object(["slug": ["type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$"], "name": name], required: ["slug", "name"]),
                      responses: [(201, "the organisation", ref("Organization")), (409, "slug taken", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs", tag: "organizations", summary: "The caller's organisations",
                      responses: [(200, "organisations", object(["organizations": array(ref("Organization"))]))]),
            Operation(method: "GET", path: "/v1/orgs/{org}", tag: "organizations", summary: "An organisation", permission: "organization.read",
                      responses: [(200, "the organisation", ref("Organization")), (404, "no such organisation, or not a member", ref("Error"))]),
            Operation(method: "PATCH", path: "/v1/orgs/{org}", tag: "organizations", summary: "Rename", permission: "organization.update",
                      request: object(["name": name], required: ["name"]),
                      responses: [(200, "the organisation", ref("Organization")), (403, "role too low", ref("Error"))]),
            Operation(method: "DELETE", path: "/v1/orgs/{org}", tag: "organizations", summary: "Delete with everything it owns", permission: "organization.delete",
                      responses: [(204, "deleted", nil), (403, "not an owner", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/members", tag: "members", summary: "Members and roles", permission: "members.read",
                      responses: [(200, "members", object(["members": array(ref("Member"))]))]),
            Operation(method: "PATCH", path: "/v1/orgs/{org}/members/{user_id}", tag: "members", summary: "Change a member's role",
                      permission: "members.manage", request: object(["role": role], required: ["role"]),
                      responses: [(200, "the member", ref("Member")), (403, "role too low", ref("Error")), (409, "last owner", ref("Error"))]),
            Operation(method: "DELETE", path: "/v1/orgs/{org}/members/{user_id}", tag: "members", summary: "Remove a member, or leave (own id)",
                      permission: "members.manage",
                      responses: [(204, "removed", nil), (409, "last owner", ref("Error"))]),
            Operation(method: "POST", path: "/v1/orgs/{org}/invitations", tag: "invitations", summary: "Invite by e-mail (the token is returned once)",
                      permission: "members.manage", request: object(["email": email, "role": role], required: ["email", "role"]),
                      responses: [(201, "the invitation", ref("InvitationCreated")), (402, "no seat left", ref("Error")),
                                  (409, "already a member", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/invitations", tag: "invitations", summary: "Open invitations", permission: "members.manage",
                      responses: [(200, "invitations", object(["invitations": array(ref("Invitation"))]))]),
            Operation(method: "DELETE", path: "/v1/orgs/{org}/invitations/{id}", tag: "invitations", summary: "Revoke an invitation",
                      permission: "members.manage", responses: [(204, "revoked", nil)]),
            Operation(method: "POST", path: "/v1/invitations/{token}/accept", tag: "invitations", summary: "Accept an invitation (the invited address)",
                      responses: [(200, "joined", object(["organization": ref("Organization"), "role": role])),
                                  (402, "no seat left", ref("Error")), (403, "another address", ref("Error")),
                                  (410, "accepted, revoked or expired", ref("Error"))]),
            Operation(method: "POST", path: "/v1/orgs/{org}/api-keys", tag: "api-keys", summary: "Create an API key (the secret is returned once)",
                      permission: "api_keys.manage",
                      request: object(["name": name, "scopes": ["type": "array", "minItems": 1, "items": ["type": "string", "enum": ["read", "write", "admin"]]]],
                                      required: ["name", "scopes"]),
                      responses: [(201, "the key with its secret", ref("APIKey"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/api-keys", tag: "api-keys", summary: "API keys (without secrets)", permission: "api_keys.manage",
                      responses: [(200, "keys", object(["api_keys": array(ref("APIKey"))]))]),
            Operation(method: "DELETE", path: "/v1/orgs/{org}/api-keys/{id}", tag: "api-keys", summary: "Revoke an API key (effective at once)",
                      permission: "api_keys.manage", responses: [(204, "revoked", nil)]),
            // Subscriptions
            Operation(method: "GET", path: "/v1/plans", tag: "subscriptions", summary: "Plans and their limits", security: .none,
                      responses: [(200, "plans", object(["plans": array(ref("Plan")), "default": string]))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/subscription", tag: "subscriptions", summary: "Plan, status, period and usage against each limit",
                      permission: "subscription.read", responses: [(200, "the subscription", ref("Subscription"))]),
            Operation(method: "PUT", path: "/v1/orgs/{org}/subscription", tag: "subscriptions", summary: "Change plan (refused below current usage)",
                      permission: "subscription.manage", request: object(["plan": string], required: ["plan"]),
                      responses: [(200, "the subscription", ref("Subscription")), (409, "the plan is below current usage", ref("Error"))]),
            Operation(method: "POST", path: "/v1/billing/webhook", tag: "subscriptions",
                      summary: "Billing provider events (X-Billing-Signature: sha256=<hex HMAC-SHA256 of the body>), idempotent on the event id",
                      security: .signature,
                      request: ["type": "object", "required": ["id", "type", "data"],
                                "properties": ["id": string, "type": ["type": "string", "enum": ["subscription.updated", "subscription.canceled", "invoice.payment_failed", "invoice.paid"]],
                                               "data": ["type": "object", "required": ["org"],
                                                        "properties": ["org": string, "status": ["type": "string", "enum": ["active", "past_due", "canceled"]], "plan": string]]]],
                      responses: [(200, "received", object(["received": ["type": "boolean"], "duplicate": ["type": "boolean"], "applied": ["type": "boolean"]])),
                                  (401, "bad signature", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/audit-log", tag: "audit", summary: "Audit entries, newest first", permission: "audit.read",
                      responses: [(200, "a page", object(["entries": array(ref("AuditEntry")), "next_cursor": nullable(string)]))],
                      query: [("action", "only this action"), ("actor", "a user or key id, or an e-mail / key prefix"),
                              ("since", "ISO 8601, inclusive"), ("until", "ISO 8601, exclusive"), ("cursor", "next_cursor of the previous page"),
                              ("limit", "1-200, default 50")]),
            // Documents
            Operation(method: "POST", path: "/v1/orgs/{org}/documents", tag: "documents",
                      summary: "Upload one or more files (multipart parts named `file`, streamed); charged to the plan; processing follows",
                      permission: "documents.write",
                      request: ["type": "object", "required": ["file"],
                                "properties": ["file": array(["type": "string", "format": "binary"]), "title": string,
                                               "external_id": string, "tags": ["type": "string", "description": "comma-separated"]]],
                      requestContentType: "multipart/form-data",
                      responses: [(202, "registered and queued", object(["documents": array(ref("Uploaded"))])),
                                  (400, "empty file, malformed body or field", ref("Error")), (402, "over a monthly or storage limit", ref("Error")),
                                  (403, "role too low, or the organisation is read-only", ref("Error")), (413, "a file over the plan's max_file_bytes", ref("Error")),
                                  (415, "not multipart/form-data", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/documents", tag: "documents", summary: "Documents, newest first", permission: "documents.read",
                      responses: [(200, "a page", object(["documents": array(ref("Document")), "next_cursor": nullable(string)]))],
                      query: [("status", "queued, processing, succeeded or failed"), ("tag", "carrying this tag"), ("mime_type", "of this type"),
                              ("q", "title or external id contains"), ("review_state", "in this review state"), ("assignee", "assigned to this user id"),
                              ("cursor", "next_cursor of the previous page"), ("limit", "1-200, default 50")]),
            Operation(method: "GET", path: "/v1/orgs/{org}/documents/{id}", tag: "documents", summary: "A document with the timeline of its stage runs",
                      permission: "documents.read",
                      responses: [(200, "the document", ["allOf": [ref("Document"), ["type": "object", "properties": ["timeline": array(ref("StageRun"))]]]]),
                                  (404, "no such document in this organisation", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/documents/{id}/content", tag: "documents", summary: "The original bytes, with their content type",
                      permission: "documents.read", responses: [(200, "the file", nil), (404, "no such document", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/documents/{id}/text", tag: "documents", summary: "The pages' text, with source and OCR confidence",
                      permission: "documents.read",
                      responses: [(200, "pages", object(["document_id": uuid, "pages": array(object(["page": integer, "text": string,
                                  "source": ["type": "string", "enum": ["text", "text-layer", "ocr"]], "confidence": nullable(["type": "number"])]))]))]),
            Operation(method: "PUT", path: "/v1/orgs/{org}/documents/{id}/tags", tag: "documents", summary: "Replace the tags", permission: "documents.write",
                      request: object(["tags": array(["type": "string", "minLength": 1, "maxLength": 64])], required: ["tags"]),
                      responses: [(200, "the document", ref("Document"))]),
            Operation(method: "POST", path: "/v1/orgs/{org}/documents/{id}/reprocess", tag: "documents",
                      summary: "Run the pipeline again for a succeeded or failed document", permission: "documents.write",
                      responses: [(202, "queued", ref("Uploaded")), (409, "still being processed", ref("Error"))]),
            Operation(method: "DELETE", path: "/v1/orgs/{org}/documents/{id}", tag: "documents",
                      summary: "Delete the document, its pages, chunks, vectors and search entries (and the blob when unreferenced)",
                      permission: "documents.write", responses: [(204, "deleted", nil), (404, "no such document", ref("Error"))]),
            // Imports
            Operation(method: "POST", path: "/v1/orgs/{org}/imports", tag: "documents",
                      summary: "Import a .zip of documents or a BEIR corpus.jsonl (one multipart part `file`); answers when every document is queued",
                      permission: "documents.write",
                      request: ["type": "object", "required": ["file"], "properties": ["file": ["type": "string", "format": "binary"]]],
                      requestContentType: "multipart/form-data",
                      responses: [(202, "registered and queued", ref("Import")), (400, "not a .zip or .jsonl, or unreadable", ref("Error")),
                                  (402, "over a monthly or storage limit", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/imports/{id}", tag: "documents", summary: "An import's counts and its documents' progress",
                      permission: "documents.read", responses: [(200, "the import", ref("Import")), (404, "no such import", ref("Error"))]),
            // Share links
            Operation(method: "POST", path: "/v1/orgs/{org}/documents/{id}/share-links", tag: "share-links",
                      summary: "Create a public link to the document (the token is shown once)", permission: "share_links.manage",
                      request: object(["expires_at": time, "expires_in": ["type": "integer", "minimum": 60], "password": ["type": "string", "minLength": 8],
                                       "max_views": ["type": "integer", "minimum": 1], "allow_download": ["type": "boolean"]]),
                      responses: [(201, "the link with its token and url", ref("ShareLink")), (404, "no such document in this organisation", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/share-links", tag: "share-links", summary: "The organisation's share links (without tokens)",
                      permission: "share_links.manage", responses: [(200, "links", object(["share_links": array(ref("ShareLink"))]))]),
            Operation(method: "PATCH", path: "/v1/orgs/{org}/share-links/{id}", tag: "share-links",
                      summary: "Change expiry, password (null removes it) or view limit (null removes it)", permission: "share_links.manage",
                      request: object(["expires_at": time, "expires_in": ["type": "integer", "minimum": 60], "password": nullable(string),
                                       "max_views": nullable(integer)]),
                      responses: [(200, "the link", ref("ShareLink")), (404, "no such (unrevoked) link", ref("Error"))]),
            Operation(method: "DELETE", path: "/v1/orgs/{org}/share-links/{id}", tag: "share-links", summary: "Revoke: the link answers 410 from now on",
                      permission: "share_links.manage", responses: [(204, "revoked", nil)]),
            Operation(method: "GET", path: "/v1/shared/{token}", tag: "share-links",
                      summary: "A shared document's metadata and text (password, if any, in X-Share-Password); each view counted", security: .none,
                      responses: [(200, "the document", object(["title": string, "mime_type": nullable(string), "page_count": nullable(integer),
                                                                "size_bytes": integer, "allow_download": ["type": "boolean"], "expires_at": time,
                                                                "views": integer, "max_views": nullable(integer),
                                                                "pages": array(object(["page": integer, "text": string, "source": string,
                                                                                       "confidence": nullable(["type": "number"])]))])),
                                  (401, "password missing or wrong", ref("Error")), (404, "no such link", ref("Error")),
                                  (410, "expired, revoked or out of views", ref("Error"))]),
            Operation(method: "GET", path: "/v1/shared/{token}/content", tag: "share-links",
                      summary: "The shared document's original bytes, when the link allows downloads", security: .none,
                      responses: [(200, "the file", nil), (403, "downloads not allowed", ref("Error")), (410, "expired, revoked or out of views", ref("Error"))]),
            // Analytics
            Operation(method: "GET", path: "/v1/orgs/{org}/analytics/usage", tag: "analytics",
                      summary: "Documents, pages, chunks and searches added per bucket, and bytes stored at each bucket's end", permission: "analytics.read",
                      responses: [(200, "the series", object(["from": time, "to": time, "bucket": string,
                                                              "series": array(object(["start": time, "documents": integer, "pages": integer, "chunks": integer,
                                                                                      "searches": integer, "storage_bytes": integer]))]))],
                      query: [("from", "ISO 8601, inclusive (default: 30 days before to)"), ("to", "ISO 8601, exclusive (default: now)"),
                              ("bucket", "hour, day (default) or month")]),
            Operation(method: "GET", path: "/v1/orgs/{org}/analytics/pipeline", tag: "analytics",
                      summary: "Per stage: processed, failed, retried, dead-lettered, p50/p95 duration and throughput over the window", permission: "analytics.read",
                      responses: [(200, "per stage", object(["from": time, "to": time,
                                                             "stages": array(object(["stage": string, "processed": integer, "failed": integer, "retried": integer,
                                                                                     "dead_lettered": integer, "p50_ms": nullable(["type": "number"]),
                                                                                     "p95_ms": nullable(["type": "number"]), "throughput_per_minute": ["type": "number"]]))]))],
                      query: [("from", "ISO 8601, inclusive (default: 24 hours before to)"), ("to", "ISO 8601, exclusive (default: now)")]),
            Operation(method: "GET", path: "/v1/orgs/{org}/analytics/search", tag: "analytics",
                      summary: "Searches over the window: how many, the top queries, and the top queries that found nothing", permission: "analytics.read",
                      responses: [(200, "search figures", object(["from": time, "to": time, "searches": integer,
                                                                  "top_queries": array(object(["query": string, "count": integer])),
                                                                  "no_results": array(object(["query": string, "count": integer]))]))],
                      query: [("from", "ISO 8601, inclusive (default: 30 days before to)"), ("to", "ISO 8601, exclusive (default: now)"),
                              ("limit", "1-200, default 20")]),
            // Workflows
            Operation(method: "POST", path: "/v1/orgs/{org}/workflows", tag: "workflows",
                      summary: "Define a workflow: a trigger, conditions that must all hold, actions in order, optional review states",
                      permission: "workflows.manage", request: ref("WorkflowInput"),
                      responses: [(201, "the workflow", ref("Workflow")),
                                  (400, "invalid definition (bad regular expression, webhook URL refused, unknown state or member), naming the field", ref("Error")),
                                  (409, "a workflow of that name exists", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/workflows", tag: "workflows", summary: "The organisation's workflows (without webhook secrets)",
                      permission: "workflows.manage", responses: [(200, "workflows", object(["workflows": array(ref("Workflow"))]))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/workflows/{id}", tag: "workflows", summary: "A workflow (without webhook secrets)",
                      permission: "workflows.manage", responses: [(200, "the workflow", ref("Workflow")), (404, "no such workflow", ref("Error"))]),
            Operation(method: "PUT", path: "/v1/orgs/{org}/workflows/{id}", tag: "workflows",
                      summary: "Replace a workflow (webhook secrets are given again); `enabled: false` pauses it", permission: "workflows.manage",
                      request: ref("WorkflowInput"), responses: [(200, "the workflow", ref("Workflow")), (404, "no such workflow", ref("Error"))]),
            Operation(method: "DELETE", path: "/v1/orgs/{org}/workflows/{id}", tag: "workflows",
                      summary: "Delete a workflow and its runs; documents keep their review state", permission: "workflows.manage",
                      responses: [(204, "deleted", nil), (404, "no such workflow", ref("Error"))]),
            Operation(method: "GET", path: "/v1/orgs/{org}/workflows/{id}/runs", tag: "workflows",
                      summary: "The workflow's runs, newest first: document, outcome, actions done, webhook deliveries", permission: "workflows.manage",
                      responses: [(200, "runs", object(["runs": array(ref("WorkflowRun"))])), (404, "no such workflow", ref("Error"))],
                      query: [("limit", "1-500, default 100")]),
            Operation(method: "POST", path: "/v1/orgs/{org}/documents/{id}/transitions", tag: "workflows",
                      summary: "Move the document to another review state, along a transition of its workflow that the caller's role may take; audited",
                      permission: "documents.read",
                      request: object(["to": string, "comment": ["type": "string", "maxLength": 2000]], required: ["to"]),
                      responses: [(200, "the document", ref("Document")), (403, "the transition needs another role", ref("Error")),
                                  (404, "no such document", ref("Error")), (409, "not under review, or its workflow is gone", ref("Error")),
                                  (422, "no such transition from the current state", ref("Error"))]),
            // Search
            Operation(method: "POST", path: "/v1/orgs/{org}/search", tag: "search",
                      summary: "Keyword (BM25), semantic or hybrid search of the organisation's documents; counted against searches_per_minute",
                      permission: "search",
                      request: object(["query": ["type": "string", "minLength": 1, "maxLength": 2000],
                                       "mode": ["type": "string", "enum": ["hybrid", "keyword", "semantic"]],
                                       "limit": ["type": "integer", "minimum": 1, "maximum": 100], "cursor": string,
                                       "filters": object(["document_ids": array(uuid), "tags": array(string), "mime_types": array(string),
                                                          "created_after": time, "created_before": time,
                                                          "collapse_near_duplicates": ["type": "boolean"]])],
                                      required: ["query"]),
                      responses: [(200, "results", object(["query": string, "mode": string, "results": array(ref("SearchResult")), "next_cursor": nullable(string)])),
                                  (400, "invalid query or filter", ref("Error")), (429, "over searches_per_minute (Retry-After)", ref("Error"))]),
            // Admin
            Operation(method: "GET", path: "/v1/admin/orgs", tag: "admin", summary: "Every organisation (platform admins)",
                      responses: [(200, "a page", object(["organizations": array(ref("Organization")), "next_cursor": nullable(string)]))],
                      query: [("cursor", "the last slug of the previous page"), ("limit", "1-500, default 100")]),
            Operation(method: "POST", path: "/v1/admin/orgs/{org}/suspend", tag: "admin", summary: "Suspend: the organisation can read but not add",
                      responses: [(200, "the organisation", ref("Organization"))]),
            Operation(method: "POST", path: "/v1/admin/orgs/{org}/unsuspend", tag: "admin", summary: "Lift a suspension",
                      responses: [(200, "the organisation", ref("Organization"))]),
            Operation(method: "GET", path: "/v1/admin/queues", tag: "admin", summary: "Per-stage queue figures",
                      responses: [(200, "queues", object(["queues": array(ref("QueueStats")), "event_queues": array(ref("QueueStats"))])), (503, "broker unreachable", ref("Error"))]),
            Operation(method: "POST", path: "/v1/admin/dlq/{stage}/replay", tag: "admin", summary: "Replay a stage's dead letters",
                      responses: [(200, "replayed", object(["stage": string, "replayed": integer]))], query: [("limit", "at most this many, default 1000")]),
            Operation(method: "DELETE", path: "/v1/admin/dlq/{stage}", tag: "admin", summary: "Purge a stage's dead letters",
                      responses: [(200, "purged", object(["stage": string, "purged": integer]))]),
        ]
    }

    static var schemas: [String: Any] {
        [
            "Error": object(["error": object(["code": string, "message": string, "request_id": string, "field": string],
                                             required: ["code", "message", "request_id"])], required: ["error"]),
            "User": object(["id": uuid, "email": email, "name": string, "is_platform_admin": ["type": "boolean"], "created_at": time]),
            "Me": ["allOf": [ref("User"), ["type": "object", "properties": ["organizations": array(object(["slug": string, "name": string, "role": role]))]]]],
            "TokenPair": object(["access_token": string, "refresh_token": string, "expires_in": integer, "token_type": string],
                                required: ["access_token", "refresh_token", "expires_in"]),
            "Organization": object(["id": uuid, "slug": string, "name": string, "status": ["type": "string", "enum": ["active", "suspended"]],
                                    "plan": string, "subscription_status": ["type": "string", "enum": ["active", "past_due", "canceled"]],
                                    "role": nullable(role), "created_at": time, "members": integer]),
            "Member": object(["user_id": uuid, "email": email, "name": string, "role": role, "joined_at": time]),
            "InvitationCreated": object(["id": uuid, "token": string, "email": email, "role": role, "expires_at": time]),
            "Invitation": object(["id": uuid, "email": email, "role": role, "invited_by": nullable(uuid), "created_at": time, "expires_at": time]),
            "APIKey": object(["id": uuid, "name": string, "prefix": string, "scopes": array(string), "secret": string, "created_at": time,
                              "created_by": nullable(uuid), "last_used_at": nullable(time), "revoked_at": nullable(time)]),
            "Plan": object(["name": string, "display_name": string, "price_cents_per_month": integer,
                            "limits": ["type": "object", "additionalProperties": nullable(integer)]]),
            "Subscription": object(["plan": string, "status": ["type": "string", "enum": ["active", "past_due", "canceled"]],
                                    "period": object(["start": time, "end": time]),
                                    "usage": ["type": "object", "additionalProperties": object(["used": nullable(integer), "limit": nullable(integer)])]]),
            "AuditEntry": object(["id": string, "time": time, "actor": object(["type": string, "id": nullable(uuid), "label": nullable(string)]),
                                  "action": string, "target": nullable(object(["type": string, "id": string])), "ip": nullable(string),
                                  "user_agent": nullable(string), "request_id": nullable(string), "details": ["type": "object", "additionalProperties": string]]),
            "Uploaded": object(["id": uuid, "status": ["type": "string", "enum": ["queued", "processing", "succeeded", "failed"]],
                                "duplicate": ["type": "boolean"], "filename": string]),
            "Document": object(["id": uuid, "external_id": nullable(string), "title": string, "mime_type": nullable(string), "size_bytes": integer,
                                "sha256": string, "status": ["type": "string", "enum": ["queued", "processing", "succeeded", "failed"]],
                                "error": nullable(string), "failed_stage": nullable(string), "page_count": nullable(integer), "tags": array(string),
                                "near_duplicate_of": nullable(uuid), "review_state": nullable(string), "assignee_id": nullable(uuid),
                                "created_at": time, "updated_at": time]),
            "WorkflowInput": object(
                ["name": ["type": "string", "minLength": 1, "maxLength": 100],
                 "trigger": ["type": "string", "enum": ["document.uploaded", "document.processed", "document.failed"]],
                 "enabled": ["type": "boolean"],
                 "conditions": array(object(
                    ["field": ["type": "string", "enum": ["mime_type", "filename", "text", "page_count", "tag"]],
                     "op": ["type": "string", "description": "mime_type: equals|starts_with; filename: glob; text: contains|regex (ICU); page_count: gte|lte|between; tag: has|lacks (also eq, matches, range, …: stored by these names)"],
                     "value": ["description": "a string, an integer, or [min, max] / {min, max} for between"]], required: ["field", "op", "value"])),
                 "actions": array(object(
                    ["type": ["type": "string", "enum": ["add_tags", "remove_tags", "set_review_state", "assign", "webhook"]],
                     "tags": array(string), "state": string, "user": ["type": "string", "description": "assign: a member's email or user id (also as user_id, email or assignee)"],
                     "url": ["type": "string", "description": "webhook: http(s); loopback, private and link-local addresses are refused"],
                     "secret": ["type": "string", "minLength": 1, "maxLength": 256, "description": "webhook: keys X-IntelliDocs-Signature: sha256=<hex HMAC-SHA256 of the body>; never shown again"]],
                    required: ["type"])),
                 "review": object(["states": array(string),
                                   "transitions": array(object(["from": string, "to": string, "roles": array(["type": "string", "enum": ["viewer", "member", "admin", "owner"]])]))])],
                required: ["name", "trigger", "actions"]),
            "Workflow": object(["id": uuid, "name": string, "trigger": string, "enabled": ["type": "boolean"],
                                "conditions": array(["type": "object"]),
                                "actions": array(["type": "object", "description": "as given; a webhook shows has_secret instead of its secret"]),
                                "review": nullable(["type": "object"]), "created_at": time, "updated_at": time]),
            "WorkflowRun": object(["id": uuid, "document_id": uuid, "event_id": uuid, "trigger": string,
                                   "outcome": ["type": "string", "enum": ["matched", "not_matched", "failed"]],
                                   "actions": array(["type": "object", "description": "what was done: type, tags/state/user_id/delivery_id, done, note"]),
                                   "error": nullable(string),
                                   "webhooks": array(object(["delivery_id": uuid, "url": string,
                                                             "status": ["type": "string", "enum": ["pending", "delivered", "failed"]],
                                                             "attempts": integer, "response_status": nullable(integer), "last_error": nullable(string)])),
                                   "created_at": time]),
            "StageRun": object(["stage": string, "status": string, "attempts": integer, "started": nullable(time), "finished": nullable(time),
                                "duration_ms": nullable(integer), "error": nullable(string)]),
            "SearchResult": object(["document_id": uuid, "external_id": nullable(string), "title": string, "page": integer, "score": ["type": "number"],
                                    "snippet": ["type": "string", "description": "matched terms wrapped in <mark>…</mark>"],
                                    "passages": array(object(["page": integer, "score": ["type": "number"], "snippet": string]))]),
            "Import": object(["id": uuid, "status": ["type": "string", "enum": ["running", "completed"]], "found": integer, "stored": integer,
                              "duplicates": integer, "skipped": integer, "succeeded": integer, "failed": integer, "in_progress": integer,
                              "created_at": time, "finished_at": nullable(time),
                              "skipped_files": array(object(["file": string, "reason": string]))]),
            "ShareLink": object(["id": uuid, "document_id": uuid, "token": string, "url": string, "expires_at": time, "max_views": nullable(integer),
                                 "views": integer, "allow_download": ["type": "boolean"], "has_password": ["type": "boolean"], "created_at": time,
                                 "revoked_at": nullable(time), "state": ["type": "string", "enum": ["active", "closed", "revoked"]]]),
            "QueueStats": object(["stage": string, "ready": integer, "unacked": integer, "consumers": integer, "retrying": integer, "dead_lettered": integer]),
        ]
    }

    static func document() -> [String: Any] {
        var paths: [String: [String: Any]] = [:]
        for operation in operations {
            var entry: [String: Any] = [
                "summary": operation.summary,
                "tags": [operation.tag],
                "operationId": operation.method.lowercased() + operation.path.split(separator: "/").map {
                    $0.trimmingCharacters(in: CharacterSet(charactersIn: "{}")).split(separator: "-").map { $0.capitalized }.joined()
                        .replacingOccurrences(of: "_", with: "").replacingOccurrences(of: ".", with: "")
                }.joined(),
            ]
            switch operation.security {
            case .none: entry["security"] = [[String: Any]]()
            case .bearer: entry["security"] = [["bearer": [String]()]]
            case .signature: entry["security"] = [["billingSignature": [String]()]]
            }
            if let permission = operation.permission { entry["x-permission"] = permission }
            var parameters: [[String: Any]] = operation.path.split(separator: "/").filter { $0.hasPrefix("{") }.map {
                ["name": String($0.dropFirst().dropLast()), "in": "path", "required": true, "schema": string]
            }
            parameters += operation.query.map { ["name": $0.name, "in": "query", "required": false, "description": $0.description, "schema": string] }
            if !parameters.isEmpty { entry["parameters"] = parameters }
            if let request = operation.request {
                entry["requestBody"] = ["required": true, "content": [operation.requestContentType: ["schema": request]]]
            }
            var responses: [String: Any] = [:]
            for response in operation.responses {
                var body: [String: Any] = ["description": response.description]
                if let schema = response.schema { body["content"] = ["application/json": ["schema": schema]] }
                responses[String(response.status)] = body
            }
            responses["default"] = ["description": "an error", "content": ["application/json": ["schema": ref("Error")]]]
            entry["responses"] = responses
            paths[operation.path, default: [:]][operation.method.lowercased()] = entry
        }
        return [
            "openapi": "3.1.0",
            "info": [
                "title": "IntelliDocs control plane",
                "version": "1.0.0",
                "description": "Accounts, organisations, roles (see Permissions.md), subscriptions and quotas, audit log, documents, imports, search and share links, platform administration. Every error is {\"error\": {\"code\", \"message\", \"request_id\"}}; every response carries X-Request-ID.",
            ],
            "paths": paths,
            "components": [
                "schemas": schemas,
                "securitySchemes": [
                    "bearer": ["type": "http", "scheme": "bearer", "description": "A JWT access token (POST /v1/auth/login) or an API key (idk_…)"],
                    "billingSignature": ["type": "apiKey", "in": "header", "name": "X-Billing-Signature"],
                ],
            ],
        ]
    }

    static let json: Data = {
        (try? JSONSerialization.data(withJSONObject: document(), options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }()
}
