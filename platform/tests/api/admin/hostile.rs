//! Hostile admin requests (bad methods, bodies and content types) get a clear 4xx and change
//! nothing.

use reqwest::Method;

use crate::helpers::{TestApp, body};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_admin_requests_get_a_clear_4xx_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (_, _, admin) = app.user_with_role("root@example.com", Some("admin")).await;
    let (user, _, _) = app.user_with_role("u@example.com", None).await;
    let id = user["id"].as_str().expect("id");
    let rules = app.count("casbin_rule").await;
    let levels = app.count("access_levels").await;
    let client = reqwest::Client::new();
    let send = async |method: Method, path: &str, content_type: &str, raw: Vec<u8>| {
        client
            .request(method, app.url(path))
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(raw)
            .send()
            .await
            .expect("request")
    };

    let cases: Vec<(Method, String, &str, Vec<u8>, u16)> = vec![
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            b"{not json".to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            vec![0xff, 0xfe, 0x00],
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "text/plain",
            br#"{"permissions": []}"#.to_vec(),
            415,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            format!(
                r#"{{"description": "{}", "permissions": []}}"#,
                "x".repeat(100_000)
            )
            .into_bytes(),
            413,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            br#"{"permissions": [], "sneaky": true}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            br#"{"permissions": [{"object": "/a, b", "action": "GET", "scope": "any"}]}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/x".into(),
            "application/json",
            br#"{"permissions": [{"object": "/a", "action": "TRACE", "scope": "any"}]}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/..%2F..%2Fetc".into(),
            "application/json",
            br#"{"permissions": []}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/v1/admin/roles/anonymous".into(),
            "application/json",
            br#"{"permissions": []}"#.to_vec(),
            400,
        ),
        (
            Method::POST,
            "/api/v1/admin/access-levels".into(),
            "application/json",
            br#"{"name": "x", "features": [], "cpu_millicores": 99999999999}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{id}/access-level"),
            "application/json",
            br#"{"access_level": "Robert'); DROP TABLE users;--"}"#.to_vec(),
            400,
        ),
        (
            Method::PUT,
            format!("/api/v1/admin/users/{id}/roles/{}", "a".repeat(300)),
            "application/json",
            Vec::new(),
            400,
        ),
        (
            Method::GET,
            "/api/v1/admin/audit?since=yesterday".into(),
            "application/json",
            Vec::new(),
            400,
        ),
    ];
    for (method, path, content_type, raw, status) in cases {
        let r = send(method.clone(), &path, content_type, raw).await;
        let got = r.status().as_u16();
        let b = body(r).await;
        assert_eq!(got, status, "{method} {path}: {b}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty() && m.len() < 500),
            "{method} {path}: a short message says what is wrong: {b}"
        );
    }
    assert_eq!(app.count("casbin_rule").await, rules, "no rule changed");
    assert_eq!(app.count("access_levels").await, levels);
    assert_eq!(app.count("roles").await, 4);
    assert_eq!(app.count("users").await, 2);
}
