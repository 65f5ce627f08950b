//! Every migration applies and every `down.sql` really reverts its `up.sql`.

use secrecy::SecretString;

use crate::support::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_revert_and_apply_again() {
    let db = TestDb::create().await;
    let url = SecretString::from(db.url.clone());
    let applied = platform::db::migrate(&url).await.expect("up");
    assert!(!applied.is_empty());
    assert!(
        platform::db::migrate(&url).await.expect("again").is_empty(),
        "idempotent"
    );
    platform::db::revert_all(&url).await.expect("down");

    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = db.connect().await;
    let left = diesel::sql_query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .get_result::<Count>(&mut conn)
    .await
    .expect("count");
    assert_eq!(left.n, 0, "down.sql left tables behind");
    assert_eq!(
        platform::db::migrate(&url).await.expect("up again").len(),
        applied.len()
    );
}
