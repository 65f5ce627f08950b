//! Background jobs at their worst moments: indexing resumed after a kill without duplicate
//! passages, a crash right after a commit (`WEBSPLAT_RUNTIME_TEST_CRASH_AT`), a database fault
//! (a trigger) failing the job and its documents, and a generation killed as it saves.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexing_resumes_after_a_kill_and_never_duplicates_passages() {
    let mut rt = Runtime::start().await;
    let long = "The crumb of this loaf is open and airy. ".repeat(500);
    let first = upload(
        &rt,
        vec![
            ("crumb.txt", long.into_bytes()),
            ("rye.md", b"# Rye\nDark rye with caraway.".to_vec()),
        ],
    )
    .await;
    let first = body(first).await["job"]["id"]
        .as_str()
        .expect("job")
        .to_owned();
    assert_eq!(wait_for_job(&rt, &first).await["status"], "succeeded");
    let second = upload(
        &rt,
        vec![("menu.pdf", pdf(&["Coffee and cake", "Caraway buns"]))],
    )
    .await;
    assert_eq!(second.status(), 202);
    let second = body(second).await["job"]["id"]
        .as_str()
        .expect("job")
        .to_owned();
    // Killed at once: the second job is queued, running or just done.
    rt.child.kill().expect("SIGKILL");
    rt.child.wait().expect("reap");
    // And the worst case on top: the index holds the first job's passages (and perhaps the
    // second's) while the database says nothing was indexed and both jobs were running.
    {
        use diesel::{Connection, RunQueryDsl};
        let db = rt.data.join("workspace.sqlite3");
        let mut conn =
            diesel::SqliteConnection::establish(db.to_str().expect("path")).expect("open");
        diesel::sql_query("UPDATE documents SET status = 'indexing', passages = 0, pages = 0")
            .execute(&mut conn)
            .expect("documents");
        diesel::sql_query("UPDATE jobs SET status = 'running', result = NULL")
            .execute(&mut conn)
            .expect("jobs");
    }
    rt.child = spawn(&rt.data, rt.port, &rt.settings);
    rt.wait_healthy().await;
    for (job, count) in [(first, 2), (second, 1)] {
        let done = wait_for_job(&rt, &job).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["result"]["indexed"], count, "{done}");
    }
    let docs = body(rt.get("/api/v1/documents").await).await["documents"]
        .as_array()
        .cloned()
        .expect("documents");
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    let crumb = docs
        .iter()
        .find(|d| d["name"] == "crumb.txt")
        .expect("crumb.txt");
    let passages = crumb["passages"].as_u64().expect("passages");
    assert!((2..50).contains(&passages), "{passages}");

    // Every passage once: as many hits as passages, no two alike.
    let found = passages_found(&rt, "crumb").await;
    assert_eq!(found.len() as u64, passages, "{found:?}");
    let mut unique = found.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), found.len(), "duplicated passages: {found:?}");
    assert_eq!(
        passages_found(&rt, "caraway").await.len(),
        2,
        "rye.md and the PDF's page 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_right_after_the_index_commit_leaves_the_document_indexed_once() {
    let mut rt = Runtime::start_with(Settings {
        crash_at: Some("after_index_commit"),
        ..Settings::default()
    })
    .await;
    let long = "The crumb of this loaf is open and airy. ".repeat(500);
    let r = upload(&rt, vec![("crumb.txt", long.into_bytes())]).await;
    assert_eq!(r.status(), 202);
    let job = body(r).await["job"]["id"].as_str().expect("job").to_owned();
    // The passages are committed to the index; the process dies before the database says so.
    rt.restart_after_the_crash().await;
    let done = wait_for_job(&rt, &job).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["indexed"], 1, "{done}");
    let docs = documents(&rt).await;
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(docs[0]["status"], "indexed", "{docs:?}");
    let passages = docs[0]["passages"].as_u64().expect("passages");
    assert!((2..50).contains(&passages), "{passages}");
    let found = passages_found(&rt, "crumb").await;
    assert_eq!(found.len() as u64, passages, "{found:?}");
    let mut unique = found.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), found.len(), "duplicated passages: {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexing_job_failed_by_a_database_fault_fails_its_documents() {
    let mut rt = Runtime::start().await;
    // The database refuses to mark any job running: the job fails on its first step.
    sql(
        &rt,
        "CREATE TRIGGER fault BEFORE UPDATE ON jobs WHEN NEW.status = 'running' \
         BEGIN SELECT RAISE(ABORT, 'simulated disk fault'); END",
    );
    let r = upload(
        &rt,
        vec![
            ("rye.md", b"# Rye\nDark rye with caraway.".to_vec()),
            ("notes.txt", b"Proof overnight.".to_vec()),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await["job"]["id"].as_str().expect("job").to_owned();
    let done = wait_for_job(&rt, &job).await;
    assert_eq!(done["status"], "failed", "{done}");
    let docs = documents(&rt).await;
    assert_eq!(docs.len(), 2, "{docs:?}");
    for d in &docs {
        assert_eq!(d["status"], "failed", "{d}");
        let reason = d["error"].as_str().expect("a reason");
        assert!(reason.contains("upload it again"), "{reason}");
    }
    sql(&rt, "DROP TRIGGER fault");

    // Left `indexing` with no job to finish them (the fault kept their failure from being
    // written): the next start queues them again, and they are indexed.
    rt.child.kill().expect("SIGKILL");
    rt.child.wait().expect("reap");
    sql(
        &rt,
        "UPDATE documents SET status = 'indexing', error = NULL",
    );
    rt.child = spawn(&rt.data, rt.port, &rt.settings);
    rt.wait_healthy().await;
    let jobs = body(rt.get("/api/v1/jobs").await).await["jobs"]
        .as_array()
        .cloned()
        .expect("jobs");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let requeued = jobs
        .iter()
        .find(|j| j["id"] != job.as_str())
        .and_then(|j| j["id"].as_str())
        .expect("a new job")
        .to_owned();
    let redone = wait_for_job(&rt, &requeued).await;
    assert_eq!(redone["status"], "succeeded", "{redone}");
    assert_eq!(redone["result"]["indexed"], 2, "{redone}");
    let docs = documents(&rt).await;
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    assert_eq!(passages_found(&rt, "caraway").await.len(), 1);

    // Settled documents are left alone at the next start.
    rt.kill_and_restart().await;
    let jobs = body(rt.get("/api/v1/jobs").await).await["jobs"]
        .as_array()
        .cloned()
        .expect("jobs");
    assert_eq!(jobs.len(), 2, "{jobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_the_database_cannot_mark_indexed_fails_and_is_not_found() {
    let rt = Runtime::start().await;
    // The passages reach the index; the database refuses the row that says so.
    sql(
        &rt,
        "CREATE TRIGGER fault BEFORE UPDATE ON documents WHEN NEW.status = 'indexed' \
         BEGIN SELECT RAISE(ABORT, 'simulated disk fault'); END",
    );
    let r = upload(
        &rt,
        vec![("rye.md", b"# Rye\nDark rye with caraway.".to_vec())],
    )
    .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await["job"]["id"].as_str().expect("job").to_owned();
    let done = wait_for_job(&rt, &job).await;
    assert_eq!(done["status"], "failed", "{done}");
    let docs = documents(&rt).await;
    assert_eq!(docs[0]["status"], "failed", "{docs:?}");
    assert!(
        docs[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("upload it again")),
        "{docs:?}"
    );
    assert_eq!(
        passages_found(&rt, "caraway").await,
        [],
        "a failed document is not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_killed_as_it_saves_the_site_saves_it_once() {
    for (autonomy, versions, proposals) in [("autonomous", 2, 0), ("suggest", 1, 1)] {
        let mut rt = Runtime::start_with(Settings {
            crash_at: Some("generation_saved"),
            ..Settings::default()
        })
        .await;
        let id = rt.new_project_id("Bakery").await;
        let r = rt
            .post(
                &format!("/api/v1/projects/{id}/generate"),
                &bakery_brief(autonomy),
            )
            .await;
        assert_eq!(r.status(), 202);
        let job = body(r).await["id"].as_str().expect("job").to_owned();
        // The site is written, the job's end not yet: the process dies.
        rt.restart_after_the_crash().await;
        let done = wait_for_job(&rt, &job).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        let history = body(rt.get(&format!("/api/v1/projects/{id}/versions")).await).await;
        assert_eq!(
            history["versions"].as_array().expect("versions").len(),
            versions,
            "{autonomy}: {history}"
        );
        assert_eq!(rt.head(&id).await, versions as i64, "{autonomy}");
        let open = body(rt.get(&format!("/api/v1/projects/{id}/proposals")).await).await;
        assert_eq!(
            open["proposals"].as_array().expect("proposals").len(),
            proposals,
            "{autonomy}: {open}"
        );
    }
}
