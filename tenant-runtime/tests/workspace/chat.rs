//! Chat: replies streamed with the passages of the user's documents they quote; a session
//! names an agent that exists, and outlives it.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_replies_stream_and_quote_the_users_documents() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Bakery").await;
    upload_indexed(
        &rt,
        vec![(
            "hours.txt",
            b"The bakery opens at seven and closes at three on weekdays.".to_vec(),
        )],
    )
    .await;

    let r = rt
        .post(
            &format!("/api/v1/projects/{id}/sessions"),
            &json!({"title": "Opening hours"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let session = body(r).await["id"].as_str().expect("session").to_owned();

    let reply = rt
        .post(
            &format!("/api/v1/sessions/{session}/messages"),
            &json!({"content": "When does the bakery open?"}),
        )
        .await;
    assert_eq!(
        reply
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let text = reply.text().await.expect("events");
    let events: Vec<(&str, Value)> = text
        .split("\n\n")
        .filter_map(|frame| {
            let name = frame.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name, serde_json::from_str(data).expect("JSON")))
        })
        .collect();
    assert_eq!(events.first().map(|e| e.0), Some("message"));
    assert_eq!(events.last().map(|e| e.0), Some("done"));
    let tokens: String = events
        .iter()
        .filter(|e| e.0 == "token")
        .filter_map(|e| e.1["text"].as_str())
        .collect();
    let done = &events.last().expect("done").1;
    assert_eq!(
        tokens,
        done["content"].as_str().expect("content"),
        "the tokens make up the stored reply"
    );
    assert!(tokens.contains("not a language model"));
    assert!(
        tokens.contains("opens at seven") && tokens.contains("hours.txt"),
        "{tokens}"
    );
    assert_eq!(done["sources"][0]["document_name"], "hours.txt");

    let history = body(
        rt.get(&format!("/api/v1/sessions/{session}/messages?limit=10"))
            .await,
    )
    .await;
    let roles: Vec<&str> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["role"].as_str())
        .collect();
    assert_eq!(roles, ["user", "assistant"]);
    let older = body(
        rt.get(&format!(
            "/api/v1/sessions/{session}/messages?before={}",
            history["messages"][1]["id"]
        ))
        .await,
    )
    .await;
    assert_eq!(older["messages"].as_array().map(Vec::len), Some(1));

    error(
        rt.post(
            &format!("/api/v1/sessions/{session}/messages"),
            &json!({"content": "   "}),
        )
        .await,
        400,
    )
    .await;
    let listed = body(rt.get(&format!("/api/v1/projects/{id}/sessions")).await).await;
    assert_eq!(listed["total"], 1);
    let renamed = rt
        .http
        .patch(rt.url(&format!("/api/v1/sessions/{session}")))
        .json(&json!({"title": "Hours"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(body(renamed).await["title"], "Hours");
    assert_eq!(
        rt.http
            .delete(rt.url(&format!("/api/v1/sessions/{session}")))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    error(
        rt.get(&format!("/api/v1/sessions/{session}/messages"))
            .await,
        404,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_session_names_an_agent_that_exists_and_outlives_it() {
    let rt = Runtime::start().await;
    let id = rt.new_project_id("Agents and chats").await;
    let r = rt.post("/api/v1/agents", &json!({"name": "Editor"})).await;
    assert_eq!(r.status(), 201);
    let agent = body(r).await["id"].as_str().expect("agent").to_owned();

    let r = rt
        .post(
            &format!("/api/v1/projects/{id}/sessions"),
            &json!({"title": "With a ghost", "agent_id": uuid::Uuid::new_v4().to_string()}),
        )
        .await;
    assert_eq!(error(r, 404).await["error"]["code"], "not_found");

    let r = rt
        .post(
            &format!("/api/v1/projects/{id}/sessions"),
            &json!({"title": "With the editor", "agent_id": agent}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let session = body(r).await["id"].as_str().expect("session").to_owned();
    let r = rt
        .http
        .delete(rt.url(&format!("/api/v1/agents/{agent}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    let shown = body(rt.get(&format!("/api/v1/sessions/{session}")).await).await;
    assert!(shown["agent_id"].is_null(), "{shown}");
    assert_eq!(shown["title"], "With the editor", "the session stays");
}
