//! Diesel table definitions for the workspace database (`/data/workspace.sqlite3`), kept in
//! step with `tenant-runtime/migrations/`.

diesel::table! {
    projects (id) {
        id -> Text,
        name -> Text,
        head_version -> BigInt,
        redo_stack -> Text,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    versions (project_id, number) {
        project_id -> Text,
        number -> BigInt,
        parent -> Nullable<BigInt>,
        message -> Text,
        settings -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    blobs (hash) {
        hash -> Text,
        size -> BigInt,
        content -> Binary,
    }
}

diesel::table! {
    version_files (project_id, version, path) {
        project_id -> Text,
        version -> BigInt,
        path -> Text,
        blob -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(projects, versions, blobs, version_files);

diesel::table! {
    agents (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        instructions -> Text,
        model -> Text,
        tools -> Text,
        autonomy -> Text,
        creativity -> Double,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    jobs (id) {
        id -> Text,
        kind -> Text,
        project_id -> Nullable<Text>,
        status -> Text,
        progress -> Integer,
        step -> Text,
        input -> Text,
        result -> Nullable<Text>,
        error -> Nullable<Text>,
        created_at -> Text,
        updated_at -> Text,
        steps -> Text,
    }
}

diesel::table! {
    proposals (id) {
        id -> Text,
        project_id -> Text,
        job_id -> Nullable<Text>,
        base_version -> BigInt,
        summary -> Text,
        files -> Text,
        status -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    documents (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        size -> BigInt,
        sha256 -> Text,
        pages -> BigInt,
        passages -> BigInt,
        created_at -> Text,
        status -> Text,
        error -> Nullable<Text>,
        reads -> BigInt,
    }
}

diesel::table! {
    analytics_salts (day) {
        day -> Text,
        salt -> Text,
    }
}

diesel::table! {
    analytics_hits (id) {
        id -> BigInt,
        project_id -> Text,
        source -> Text,
        path -> Text,
        day -> Text,
        visitor -> Text,
        referrer -> Text,
    }
}

diesel::table! {
    chat_sessions (id) {
        id -> Text,
        project_id -> Text,
        title -> Text,
        agent_id -> Nullable<Text>,
        created_at -> Text,
        updated_at -> Text,
    }
}

diesel::table! {
    chat_messages (id) {
        id -> BigInt,
        session_id -> Text,
        role -> Text,
        content -> Text,
        sources -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    notes (id) {
        id -> BigInt,
        text -> Text,
        created_at -> Text,
    }
}

diesel::table! {
    staged_uploads (id) {
        id -> Text,
        name -> Nullable<Text>,
        content_type -> Text,
        bytes -> BigInt,
        sha256 -> Text,
        created_at -> Text,
    }
}
