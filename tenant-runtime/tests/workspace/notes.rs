//! Notes: written, listed and deleted, and outliving a restart.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_written_listed_and_deleted_and_outlive_a_restart() {
    let mut rt = Runtime::start().await;
    assert_eq!(
        body(rt.get("/api/v1/whoami").await).await,
        json!({"user": null, "tenant_secret_required": false}),
        "standalone, nobody is vouched for"
    );
    assert_eq!(
        body(rt.get("/api/v1/notes").await).await,
        json!({"items": []})
    );

    let r = rt
        .post("/api/v1/notes", &json!({"text": "  first \n"}))
        .await;
    assert_eq!(r.status(), 201);
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_owned();
    let first = body(r).await;
    assert_eq!(first["text"], "first", "trimmed");
    let first_id = first["id"].as_i64().expect("an integer id");
    assert_eq!(location, format!("/api/v1/notes/{first_id}"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(first["created_at"].as_str().expect("a time")).is_ok(),
        "{first}"
    );
    let mut ids = vec![first_id];
    for text in ["second", "third"] {
        let r = rt.post("/api/v1/notes", &json!({"text": text})).await;
        assert_eq!(r.status(), 201);
        ids.push(body(r).await["id"].as_i64().expect("id"));
    }
    assert_eq!(body(rt.get(&location).await).await, first);

    let listed = |v: Value| -> Vec<(i64, String)> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|n| {
                (
                    n["id"].as_i64().expect("id"),
                    n["text"].as_str().expect("text").to_owned(),
                )
            })
            .collect()
    };
    let newest_first = vec![
        (ids[2], "third".to_owned()),
        (ids[1], "second".to_owned()),
        (ids[0], "first".to_owned()),
    ];
    assert_eq!(
        listed(body(rt.get("/api/v1/notes").await).await),
        newest_first
    );
    assert_eq!(
        listed(body(rt.get("/api/v1/notes?limit=2").await).await),
        newest_first[..2]
    );
    assert_eq!(
        listed(body(rt.get("/api/v1/notes?limit=2&offset=2").await).await),
        newest_first[2..]
    );

    // Refused input writes nothing.
    for (bad, field) in [
        (json!({"text": ""}), Some("text")),
        (json!({"text": " \n\t "}), Some("text")),
        (json!({"text": "x".repeat(10_001)}), Some("text")),
        (json!({"text": "ring\u{7}"}), Some("text")),
        (json!({"text": "ok", "pinned": true}), None),
        (json!({}), None),
        (json!({"text": 5}), None),
        (json!("text"), None),
    ] {
        let b = error(rt.post("/api/v1/notes", &bad).await, 400).await;
        assert_eq!(b["error"]["field"].as_str(), field, "{bad}: {b}");
    }
    let r = rt
        .request(Method::POST, "/api/v1/notes")
        .header("content-type", "application/json")
        .body("{\"text\": ")
        .send()
        .await
        .expect("post");
    assert_eq!(error(r, 400).await["error"]["code"], "bad_request");
    let r = rt
        .request(Method::POST, "/api/v1/notes")
        .header("content-type", "text/plain")
        .body("{\"text\": \"plain\"}")
        .send()
        .await
        .expect("post");
    assert_eq!(
        error(r, 415).await["error"]["code"],
        "unsupported_media_type"
    );
    for query in ["limit=0", "limit=101", "offset=-1"] {
        let b = error(rt.get(&format!("/api/v1/notes?{query}")).await, 400).await;
        assert_eq!(b["error"]["code"], "validation_failed", "{query}");
    }
    for query in ["limit=many", "page=2"] {
        error(rt.get(&format!("/api/v1/notes?{query}")).await, 400).await;
    }
    assert_eq!(
        listed(body(rt.get("/api/v1/notes").await).await),
        newest_first
    );

    // The longest note there may be.
    let long = "é".repeat(10_000);
    let r = rt.post("/api/v1/notes", &json!({"text": long})).await;
    assert_eq!(r.status(), 201);
    let long_id = body(r).await["id"].as_i64().expect("id");

    for missing in ["abc", "0", "-1", "999999", "1.5"] {
        let r = rt.get(&format!("/api/v1/notes/{missing}")).await;
        assert_eq!(
            error(r, 404).await["error"]["code"],
            "not_found",
            "{missing}"
        );
    }
    for id in [ids[1], long_id] {
        assert_eq!(
            rt.delete(&format!("/api/v1/notes/{id}")).await.status(),
            204
        );
        error(rt.delete(&format!("/api/v1/notes/{id}")).await, 404).await;
        error(rt.get(&format!("/api/v1/notes/{id}")).await, 404).await;
    }

    // A hard stop and a new process on the same data: the notes are there, ids never reused.
    rt.kill_and_restart().await;
    let kept = vec![newest_first[0].clone(), newest_first[2].clone()];
    assert_eq!(listed(body(rt.get("/api/v1/notes").await).await), kept);
    let r = rt.post("/api/v1/notes", &json!({"text": "after"})).await;
    assert_eq!(r.status(), 201);
    assert!(body(r).await["id"].as_i64().expect("id") > long_id);
}
