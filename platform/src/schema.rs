//! Diesel table definitions, kept in step with `migrations/` by hand (and checked by the
//! test suite, which runs every migration up and down against a real PostgreSQL).

diesel::table! {
    users (id) {
        id -> Uuid,
        display_name -> Text,
        email -> Nullable<Text>,
        email_verified -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        disabled_at -> Nullable<Timestamptz>,
        access_level -> Text,
    }
}

diesel::table! {
    identities (id) {
        id -> Uuid,
        user_id -> Uuid,
        provider -> Text,
        subject -> Text,
        email -> Nullable<Text>,
        created_at -> Timestamptz,
        last_login_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    local_credentials (user_id) {
        user_id -> Uuid,
        email -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        verification_pending -> Bool,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        name -> Text,
        token_prefix -> Text,
        token_hash -> Bytea,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    roles (name) {
        name -> Text,
        description -> Text,
        builtin -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    casbin_rule (id) {
        id -> Int8,
        ptype -> Text,
        v0 -> Text,
        v1 -> Text,
        v2 -> Text,
        v3 -> Text,
        v4 -> Text,
        v5 -> Text,
    }
}

diesel::table! {
    policy_seeds (rule) {
        rule -> Text,
        seeded_at -> Timestamptz,
    }
}

diesel::table! {
    access_levels (name) {
        name -> Text,
        description -> Text,
        features -> Array<Text>,
        cpu_millicores -> Int4,
        memory_mib -> Int4,
        storage_mib -> Int4,
        max_upload_mib -> Int4,
        ai_tokens_per_day -> Int8,
        read_requests_per_minute -> Int4,
        write_requests_per_minute -> Int4,
        idle_timeout_seconds -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        ai_requests_per_minute -> Int4,
        ai_tokens_per_minute -> Int8,
        max_running_workspaces -> Nullable<Int4>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        actor_id -> Nullable<Uuid>,
        actor -> Text,
        action -> Text,
        target -> Nullable<Text>,
        outcome -> Text,
        ip -> Nullable<Text>,
        request_id -> Nullable<Text>,
        detail -> Jsonb,
    }
}

diesel::joinable!(identities -> users (user_id));
diesel::joinable!(local_credentials -> users (user_id));
diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(users -> access_levels (access_level));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    identities,
    local_credentials,
    api_tokens,
    roles,
    casbin_rule,
    access_levels,
    audit_log,
);

diesel::table! {
    workspaces (user_id) {
        user_id -> Uuid,
        slug -> Text,
        volume -> Text,
        created_at -> Timestamptz,
        used_bytes -> Nullable<Int8>,
        quota_bytes -> Nullable<Int8>,
        usage_at -> Nullable<Timestamptz>,
        node -> Nullable<Text>,
    }
}

diesel::table! {
    tenants (id) {
        id -> Uuid,
        user_id -> Uuid,
        state -> Text,
        reason -> Nullable<Text>,
        pool -> Text,
        image -> Text,
        container_name -> Text,
        container_id -> Nullable<Text>,
        address -> Nullable<Text>,
        secret_hash -> Nullable<Bytea>,
        requested_at -> Timestamptz,
        ready_at -> Nullable<Timestamptz>,
        ended_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        access_level -> Text,
        admitted_at -> Nullable<Timestamptz>,
    }
}

// Published sites (issue #14).
diesel::table! {
    sites (name) {
        name -> Text,
        user_id -> Uuid,
        project_id -> Uuid,
        build -> Uuid,
        bytes -> Int8,
        files -> Int4,
        created_at -> Timestamptz,
        published_at -> Timestamptz,
    }
}

diesel::joinable!(workspaces -> users (user_id));
diesel::joinable!(tenants -> users (user_id));

// The AI gateway (platform/src/gateway/).
diesel::table! {
    ai_ledger (id) {
        id -> Int8,
        user_id -> Uuid,
        endpoint -> Text,
        provider -> Text,
        model -> Text,
        alias -> Nullable<Text>,
        streamed -> Bool,
        tokens_in -> Int8,
        tokens_out -> Int8,
        tokens_cached -> Int8,
        cost_nanos -> Int8,
        latency_ms -> Int4,
        outcome -> Text,
        error -> Nullable<Text>,
        started_at -> Timestamptz,
        ended_at -> Timestamptz,
    }
}
diesel::allow_tables_to_appear_in_same_query!(workspaces, access_levels);

// Pools (issue #13): capacity operators size live, and which access levels each serves.
diesel::table! {
    pools (name) {
        name -> Text,
        description -> Text,
        max_running -> Int4,
        max_starting -> Int4,
        queue_max -> Int4,
        idle_timeout_seconds -> Nullable<Int4>,
        warm_new -> Int4,
        warm_ttl_seconds -> Int4,
        draining -> Bool,
        operated -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        returning_ahead -> Bool,
        returning_warm -> Int4,
        returning_ttl_seconds -> Int4,
    }
}

// Engines per pool (issue #16): a row for each pool not on the platform's own engine.
diesel::table! {
    pool_engines (pool) {
        pool -> Text,
        engine -> Text,
        endpoint -> Nullable<Text>,
    }
}

diesel::table! {
    pool_access_levels (access_level) {
        access_level -> Text,
        pool -> Text,
    }
}

diesel::table! {
    warm_runtimes (id) {
        id -> Uuid,
        pool -> Text,
        access_level -> Text,
        image -> Text,
        spec_hash -> Text,
        container_name -> Text,
        container_id -> Nullable<Text>,
        address -> Nullable<Text>,
        volume -> Text,
        state -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

// The next containers of returning people (issue #13, point 3).
diesel::table! {
    returning_runtimes (id) {
        id -> Uuid,
        user_id -> Uuid,
        pool -> Text,
        access_level -> Text,
        image -> Text,
        spec_hash -> Text,
        container_name -> Text,
        container_id -> Nullable<Text>,
        address -> Nullable<Text>,
        volume -> Text,
        state -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::joinable!(pool_access_levels -> pools (pool));
diesel::joinable!(pool_engines -> pools (pool));
diesel::joinable!(warm_runtimes -> pools (pool));
diesel::joinable!(returning_runtimes -> pools (pool));
diesel::allow_tables_to_appear_in_same_query!(
    pools,
    pool_access_levels,
    pool_engines,
    tenants,
    access_levels,
    warm_runtimes,
    returning_runtimes
);
diesel::joinable!(sites -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(users, workspaces, tenants, sites);

diesel::table! {
    invitations (id) {
        id -> Uuid,
        code_hash -> Text,
        email -> Nullable<Text>,
        note -> Text,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        used_by -> Nullable<Uuid>,
    }
}
