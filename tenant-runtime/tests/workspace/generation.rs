//! Site generation from a brief: built autonomously with live progress, or suggested and
//! waiting for the user to accept or reject it; bad briefs refused; queued jobs resumed after
//! a restart.

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autonomous_generation_builds_the_site_with_live_progress() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Bakery").await;

    // Listen first, then ask: every step's progress arrives.
    let listening = rt.get("/api/v1/jobs/events").await;
    assert_eq!(
        listening
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let r = rt
        .post(
            &format!("/api/v1/projects/{id}/generate"),
            &bakery_brief("autonomous"),
        )
        .await;
    assert_eq!(r.status(), 202);
    let queued = body(r).await;
    assert_eq!(
        step_names(&queued),
        ["plan", "content", "seo", "layout", "code", "review"]
    );
    assert!(
        queued["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["state"] == "pending" && s["label"].is_string()),
        "{queued}"
    );
    let job = queued["id"].as_str().expect("job id").to_owned();
    let events = read_events(listening, |e| {
        e["id"] == job.as_str() && e["status"] == "succeeded"
    })
    .await;
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["id"] == job.as_str() && e["status"] == "running")
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        ["plan", "content", "seo", "layout", "code", "review"]
    );
    let progress: Vec<i64> = events
        .iter()
        .filter_map(|e| e["progress"].as_i64())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");

    // Each running event shows the step under way running and the ones before it done.
    for e in events
        .iter()
        .filter(|e| e["id"] == job.as_str() && e["status"] == "running")
    {
        let states: Vec<&str> = e["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s["state"].as_str())
            .collect();
        let at = step_names(e)
            .iter()
            .position(|n| e["step"] == n.as_str())
            .expect("the current step is listed");
        assert!(
            states[..at].iter().all(|s| *s == "done")
                && states[at] == "running"
                && states[at + 1..].iter().all(|s| *s == "pending"),
            "{states:?} at {at}"
        );
    }
    let done = events.last().expect("the final event");
    assert_eq!(done["result"]["applied"], true);
    assert!(
        done["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["state"] == "done"),
        "{done}"
    );
    assert!(
        done["result"]["generator"]
            .as_str()
            .unwrap_or_default()
            .contains("not a language model")
    );
    let project = body(rt.get(&format!("/api/v1/projects/{id}")).await).await;
    assert_eq!(project["head_version"], done["result"]["version"]);
    let paths: Vec<&str> = project["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "about-us.html",
            "index.html",
            "menu.html",
            "styles.css",
            "visit.html"
        ]
    );
    let seo = body(rt.get(&format!("/api/v1/projects/{id}/seo")).await).await;
    // The offline generator's sentences come from templates and repeat across pages:
    // the report scores that filler well below full marks (issue #14).
    assert!(
        seo["score"].as_u64().is_some_and(|s| (50..90).contains(&s)),
        "{}",
        seo["score"]
    );

    // The single job's stream starts with its (finished) state and ends.
    let one = read_events(rt.get(&format!("/api/v1/jobs/{job}/events")).await, |_| {
        false
    })
    .await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["status"], "succeeded");

    // And undo takes the site back to what it was.
    rt.post(&format!("/api/v1/projects/{id}/undo"), &json!({}))
        .await;
    let page = rt
        .get(&format!("/api/v1/projects/{id}/pages/index.html"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("New site"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suggested_site_waits_for_the_user_to_accept_or_reject_it() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Bakery").await;
    let agent = body(
        rt.post(
            "/api/v1/agents",
            &json!({"name": "Careful", "autonomy": "suggest"}),
        )
        .await,
    )
    .await;
    let mut brief = bakery_brief("suggest");
    brief.as_object_mut().expect("object").remove("autonomy");
    brief["agent_id"] = agent["id"].clone();

    let job = body(
        rt.post(&format!("/api/v1/projects/{id}/generate"), &brief)
            .await,
    )
    .await;
    let done = wait_for_job(&rt, job["id"].as_str().expect("id")).await;
    assert_eq!(done["result"]["applied"], false, "{done}");
    assert_eq!(rt.head(&id).await, 1, "nothing applied yet");
    let proposals = body(rt.get(&format!("/api/v1/projects/{id}/proposals")).await).await;
    assert_eq!(proposals["proposals"][0]["status"], "open");
    let proposal = done["result"]["proposal_id"]
        .as_str()
        .expect("proposal")
        .to_owned();

    let accepted = body(
        rt.post(&format!("/api/v1/proposals/{proposal}/accept"), &json!({}))
            .await,
    )
    .await;
    assert_eq!(accepted["version"], 2);
    assert!(
        rt.get(&format!("/api/v1/projects/{id}/pages/menu.html"))
            .await
            .status()
            .is_success()
    );
    let decided = error(
        rt.post(&format!("/api/v1/proposals/{proposal}/accept"), &json!({}))
            .await,
        409,
    )
    .await;
    assert_eq!(
        decided["error"]["code"], "conflict",
        "already accepted: not the same 409 as a stale one"
    );

    // A rejected proposal changes nothing.
    let job = body(
        rt.post(&format!("/api/v1/projects/{id}/generate"), &brief)
            .await,
    )
    .await;
    let done = wait_for_job(&rt, job["id"].as_str().expect("id")).await;
    let second = done["result"]["proposal_id"]
        .as_str()
        .expect("proposal")
        .to_owned();
    assert_eq!(
        body(
            rt.post(&format!("/api/v1/proposals/{second}/reject"), &json!({}))
                .await
        )
        .await["status"],
        "rejected"
    );
    assert_eq!(rt.head(&id).await, 2);

    // A proposal made before later edits is not applied over them unless forced.
    let job = body(
        rt.post(&format!("/api/v1/projects/{id}/generate"), &brief)
            .await,
    )
    .await;
    let third = wait_for_job(&rt, job["id"].as_str().expect("id")).await["result"]["proposal_id"]
        .as_str()
        .expect("proposal")
        .to_owned();
    let tag = etag(
        &rt.get(&format!("/api/v1/projects/{id}/pages/index.html"))
            .await,
    );
    rt.put_page(&id, "index.html", "<h1>My own edit</h1>", Some(&tag))
        .await;
    let proposed = body(rt.get(&format!("/api/v1/proposals/{third}")).await).await;
    assert!(
        proposed["files"]["menu.html"]
            .as_str()
            .is_some_and(|f| f.contains("Menu")),
        "the proposal can be inspected"
    );
    let stale = error(
        rt.post(&format!("/api/v1/proposals/{third}/accept"), &json!({}))
            .await,
        409,
    )
    .await;
    assert_eq!(stale["error"]["code"], "stale_version");
    assert_eq!(stale["current"]["head_version"], rt.head(&id).await);
    assert_eq!(
        body(
            rt.post(
                &format!("/api/v1/proposals/{third}/accept?force=true"),
                &json!({})
            )
            .await
        )
        .await["status"],
        "accepted"
    );
    let history = body(rt.get(&format!("/api/v1/projects/{id}/versions")).await).await;
    assert!(
        history["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .any(|v| v["message"] == "edited index.html"),
        "the edit stays in the history"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_briefs_are_refused_and_queued_jobs_resume_after_a_restart() {
    let mut rt = Runtime::start().await;
    let id = rt.new_project_id("Bakery").await;
    let b = error(
        rt.post(
            &format!("/api/v1/projects/{id}/generate"),
            &json!({"name": "X", "sections": []}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(b["error"]["field"], "sections");
    error(
        rt.post(
            &format!("/api/v1/projects/{id}/generate"),
            &json!({"name": "X", "sections": ["A"], "tone": "grumpy"}),
        )
        .await,
        400,
    )
    .await;
    let mut missing_agent = bakery_brief("suggest");
    missing_agent["agent_id"] = json!(uuid::Uuid::new_v4().to_string());
    error(
        rt.post(&format!("/api/v1/projects/{id}/generate"), &missing_agent)
            .await,
        404,
    )
    .await;
    assert_eq!(body(rt.get("/api/v1/jobs").await).await["jobs"], json!([]));

    // A job left queued when the process died is run at the next start.
    rt.child.kill().expect("kill");
    rt.child.wait().expect("reap");
    {
        use diesel::{Connection, RunQueryDsl};
        let db = rt.data.join("workspace.sqlite3");
        let mut conn =
            diesel::SqliteConnection::establish(db.to_str().expect("path")).expect("open");
        diesel::sql_query(format!(
            "INSERT INTO jobs (id, kind, project_id, status, input, created_at, updated_at) VALUES ('{}', 'generate_site', '{id}', 'queued', '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            uuid::Uuid::new_v4(),
            bakery_brief("autonomous").to_string().replace('\'', "''"),
        ))
        .execute(&mut conn)
        .expect("queue a job");
    }
    rt.child = spawn(&rt.data, rt.port, &rt.settings);
    rt.wait_healthy().await;
    let jobs = body(rt.get("/api/v1/jobs").await).await;
    let job = jobs["jobs"][0]["id"]
        .as_str()
        .expect("the queued job")
        .to_owned();
    assert_eq!(wait_for_job(&rt, &job).await["status"], "succeeded");
    assert_eq!(rt.head(&id).await, 2);
}
