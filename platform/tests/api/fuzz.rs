//! The platform's API fuzzed from its own OpenAPI document (`/api/v1/openapi.json`) by the
//! third-party `schemathesis`, signed in as a member and as an admin: no 5xx, no status code
//! the document does not list, no body that breaks its schema. Rate limits are raised for
//! the run so each operation's logic is reached rather than its 429. Workspaces run on the
//! in-memory engine: the run is about the API's contract, and fuzzed pools must not start
//! containers on the shared Docker Engine.
//!
//! What a run found is kept as a plain regression test in `fuzz_cases`.

use crate::helpers::TestApp;
use crate::lifecycle_rules::memory_app;
use crate::support::Fuzz;

/// A platform whose every rate limit is out of the fuzzer's reach.
async fn app() -> TestApp {
    let app = memory_app(&[
        ("WEBSPLAT_RATE_LIMIT_API_READS_PER_IP", "1000000"),
        ("WEBSPLAT_RATE_LIMIT_API_WRITES_PER_IP", "1000000"),
        ("WEBSPLAT_RATE_LIMIT_PER_IP", "1000000"),
        ("WEBSPLAT_RATE_LIMIT_PER_ACCOUNT", "1000000"),
    ])
    .await;
    app.sql(
        "UPDATE access_levels SET read_requests_per_minute = 1000000, \
         write_requests_per_minute = 1000000",
    )
    .await;
    app
}

/// A fuzz run against `app`'s document with `token`'s bearer and the platform's own origin.
fn fuzz(app: &TestApp, token: &str) -> Fuzz {
    let mut fuzz = Fuzz::new(app.url("/api/v1/openapi.json"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Origin", &app.base);
    // A progress stream stays open for minutes by design.
    fuzz.exclude_path_regex = Some("^/api/v1/workspace/events$".to_owned());
    fuzz
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_the_api_as_a_member_finds_no_undocumented_answer() {
    let app = app().await;
    let (_, _, token) = app.user_with_role("member@example.com", None).await;
    fuzz(&app, &token).run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzing_the_api_as_an_admin_finds_no_undocumented_answer() {
    let app = app().await;
    let (_, _, token) = app.user_with_role("admin@example.com", Some("admin")).await;
    fuzz(&app, &token).run().await;
}
