-- Bearer tokens of people and finance systems (access control). The table
-- is authn.TokenDDL, the same in the node's and the city's databases; only
-- each token's SHA-256 is stored.

CREATE TABLE api_token (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	token_hash bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
	name       text        NOT NULL,
	role       text        NOT NULL,
	domain     text        NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL CHECK (expires_at > created_at),
	revoked_at timestamptz,
	created_by text        NOT NULL
);
