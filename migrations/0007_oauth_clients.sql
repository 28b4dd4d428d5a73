-- OAuth clients that may get tokens from POST /oauth/token (client-credentials grant).
--
-- One row per client, never deleted: a revoked client keeps its row (revoked_at set), so
-- `pickpack clients list` shows it and the API's revocation list can name it. The secret
-- is kept only as a slow hash (scrypt, its parameters and salt in the text), never in
-- clear. scopes are this service's scope names the client may be granted.
CREATE TABLE oauth_clients (
    client_id   text PRIMARY KEY,
    tenant      text NOT NULL,
    name        text,
    scopes      text[] NOT NULL,
    secret_hash text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The API reloads the revoked ids every few seconds (the revocation list's cache).
CREATE INDEX oauth_clients_revoked ON oauth_clients (client_id) WHERE revoked_at IS NOT NULL;
