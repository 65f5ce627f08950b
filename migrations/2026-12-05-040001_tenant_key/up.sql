-- Issue #15, point 9: tenant secrets are derived from one platform key (HKDF of the tenant
-- id), never stored. The key comes from WEBSPLAT_TENANT_KEY; without it (the zero-config
-- default) the platform makes one at its first start and keeps it here, so every replica
-- and every restart derives the same secrets. One row per key name.
CREATE TABLE platform_keys (
    name text PRIMARY KEY,
    key bytea NOT NULL CHECK (octet_length(key) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
