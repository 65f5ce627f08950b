-- People who can sign in. An account is reached through one or more identities.
CREATE TABLE users (
    id             uuid        PRIMARY KEY,
    display_name   text        NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 128),
    email          text,
    email_verified boolean     NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    disabled_at    timestamptz
);
-- Not unique: two accounts may claim the same address (see README, "Identities and e-mail").
CREATE INDEX users_email_idx ON users (lower(email));

-- How a user proves who they are: (provider, subject) is the only key, never the e-mail.
CREATE TABLE identities (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      text        NOT NULL,
    subject       text        NOT NULL,
    email         text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz,
    CONSTRAINT identities_provider_subject_key UNIQUE (provider, subject)
);
CREATE INDEX identities_user_id_idx ON identities (user_id);

-- Local (e-mail and password) accounts. Only an argon2id PHC string is stored.
CREATE TABLE local_credentials (
    user_id       uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email         text        NOT NULL CHECK (email = lower(email)),
    password_hash text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX local_credentials_email_key ON local_credentials (email);

-- Personal API tokens. The secret is shown once; only its SHA-256 is kept.
CREATE TABLE api_tokens (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    token_prefix text        NOT NULL,
    token_hash   bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash)
);
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id);
