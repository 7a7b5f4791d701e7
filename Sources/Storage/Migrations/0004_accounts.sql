-- Accounts and the control plane (issue 6): users, memberships and roles, sessions and refresh tokens,
-- API keys, invitations, subscriptions, usage counters, rate windows, billing events and the audit log.
-- Every organisation-scoped table carries org_id; secrets (passwords, tokens, keys) are stored hashed only.

-- A platform admin can suspend an organisation: it can then read but not add.
ALTER TABLE organizations
    ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    ADD COLUMN suspended_at timestamptz;

CREATE TABLE users (
    id                 uuid PRIMARY KEY,
    -- Stored lower-cased; unique.
    email              text NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) <= 254),
    name               text NOT NULL CHECK (length(name) <= 200),
    -- bcrypt (cost >= 12), never returned by the API.
    password_hash      text NOT NULL,
    is_platform_admin  boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Roles and what each may do: Sources/ControlPlane/Permissions.md.
CREATE TABLE memberships (
    org_id      uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- A login session: the family of refresh tokens issued from one login. Revoking the session (logout,
-- reuse of a rotated token, password change) ends every token of the family and the access tokens
-- that name it (`sid`).
CREATE TABLE auth_sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoke_reason  text
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES auth_sessions(id) ON DELETE CASCADE,
    -- Lower-case hex SHA-256 of the token.
    token_hash   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    -- Set when the token was exchanged for a new pair; presenting it again is reuse.
    rotated_at   timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    org_id        uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    created_by    uuid REFERENCES users(id) ON DELETE SET NULL,
    name          text NOT NULL CHECK (length(name) <= 200),
    -- The visible part of the key ("idk_" + 8 characters); the lookup key.
    prefix        text NOT NULL UNIQUE,
    -- Lower-case hex SHA-256 of the whole key.
    secret_hash   text NOT NULL,
    scopes        text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_org ON api_keys (org_id);

CREATE TABLE invitations (
    id           uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    email        text NOT NULL CHECK (email = lower(email)),
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    token_hash   text NOT NULL UNIQUE,
    invited_by   uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    accepted_at  timestamptz,
    accepted_by  uuid REFERENCES users(id) ON DELETE SET NULL,
    revoked_at   timestamptz
);
CREATE INDEX invitations_org ON invitations (org_id);

-- One per organisation; an organisation without a row is on the default plan and active.
CREATE TABLE subscriptions (
    org_id      uuid PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    plan        text NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'past_due', 'canceled')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Billing-provider events already applied, for idempotency on the event id.
CREATE TABLE billing_events (
    id           text PRIMARY KEY,
    type         text NOT NULL,
    org_id       uuid REFERENCES organizations(id) ON DELETE SET NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);

-- Metered usage per organisation and calendar month (UTC). Monthly limits are enforced by conditional
-- updates of this row, so two concurrent requests cannot both take the last unit.
CREATE TABLE usage_counters (
    org_id         uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    period         date NOT NULL,
    documents      bigint NOT NULL DEFAULT 0 CHECK (documents >= 0),
    pages          bigint NOT NULL DEFAULT 0 CHECK (pages >= 0),
    chunks         bigint NOT NULL DEFAULT 0 CHECK (chunks >= 0),
    searches       bigint NOT NULL DEFAULT 0 CHECK (searches >= 0),
    -- Bytes stored during the period (metering); the running total is org_storage.
    storage_bytes  bigint NOT NULL DEFAULT 0 CHECK (storage_bytes >= 0),
    PRIMARY KEY (org_id, period)
);

-- Bytes an organisation stores now, against the plan's storage limit.
CREATE TABLE org_storage (
    org_id  uuid PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    bytes   bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0)
);

-- Fixed-window counters: searches per minute per organisation, failed logins per account and per IP.
CREATE TABLE rate_windows (
    key           text NOT NULL,
    window_start  timestamptz NOT NULL,
    count         integer NOT NULL DEFAULT 0,
    PRIMARY KEY (key, window_start)
);

-- Append-only: who did what, where and when. org_id has no foreign key so that entries outlive a deleted
-- organisation; NULL for events outside any organisation (logins, platform administration).
CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       uuid,
    actor_type   text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'anonymous', 'billing', 'system')),
    actor_id     uuid,
    actor_label  text,
    action       text NOT NULL,
    target_type  text,
    target_id    text,
    ip           text,
    user_agent   text,
    request_id   text,
    details      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_org ON audit_log (org_id, id DESC);
CREATE INDEX audit_log_request ON audit_log (request_id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
