//! Workspaces on the machine's real Docker Engine: a fresh, hardened container per login,
//! the workspace origin behind the proxy, isolation, recovery and reconciliation. The tenant
//! image must be built first (`docker/build-tenant-image.sh`; scripts/test does it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, body};

pub use crate::support::{Loopback, workspace_browser as browser};

pub async fn app_with_workspaces(extra: &[(&str, &str)]) -> TestApp {
    let mut env = vec![
        (
            "WEBSPLAT_WORKSPACE_START_ON_SIGN_IN".to_owned(),
            "true".to_owned(),
        ),
        (
            "WEBSPLAT_TENANT_IMAGE".to_owned(),
            crate::support::tenant_image(platform::config::DEFAULT_TENANT_IMAGE),
        ),
        ("WEBSPLAT_TENANT_READY_TIMEOUT".to_owned(), "60s".to_owned()),
        (
            "WEBSPLAT_TENANT_RECONCILE_INTERVAL".to_owned(),
            "2s".to_owned(),
        ),
    ];
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push(((*k).to_owned(), (*v).to_owned()));
    }
    TestApp::spawn_with(env).await
}

pub fn deployment(app: &TestApp) -> String {
    app.env
        .iter()
        .find(|(k, _)| k == "WEBSPLAT_DEPLOYMENT")
        .map(|(_, v)| v.clone())
        .expect("deployment")
}

pub fn docker() -> Docker {
    Docker::connect_with_local_defaults().expect("docker")
}

/// This test's containers (running or not).
pub async fn containers(app: &TestApp) -> Vec<ContainerSummary> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("websplat.deployment={}", deployment(app))],
    )]);
    docker()
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers")
}

/// A person with a browser: signs up (which signs in), and can open their workspace.
pub struct Person {
    pub client: Client,
    pub email: String,
    pub id: String,
}

impl Person {
    pub async fn sign_up(app: &TestApp, email: &str) -> Person {
        let client = browser();
        let r = client
            .post(app.url("/api/v1/auth/register"))
            .header("Origin", &app.base)
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .expect("register");
        assert_eq!(r.status(), 201);
        let me = body(r).await;
        Person {
            client,
            email: email.to_owned(),
            id: me["user"]["id"].as_str().expect("id").to_owned(),
        }
    }

    pub async fn sign_in(&self, app: &TestApp) {
        let r = self
            .client
            .post(app.url("/api/v1/auth/login"))
            .header("Origin", &app.base)
            .json(&json!({"email": self.email, "password": PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 200);
    }

    pub async fn sign_out(&self, app: &TestApp) {
        let r = self
            .client
            .post(app.url("/auth/logout"))
            .header("Origin", &app.base)
            .send()
            .await
            .expect("logout");
        assert_eq!(r.status(), 204);
    }

    /// A same-origin POST on the platform, as the dashboard sends it.
    pub async fn post(&self, app: &TestApp, path: &str) -> reqwest::Response {
        self.client
            .post(app.url(path))
            .header("Origin", &app.base)
            .send()
            .await
            .expect("POST")
    }

    pub async fn workspace(&self, app: &TestApp) -> Value {
        let r = self
            .client
            .get(app.url("/api/v1/workspace"))
            .send()
            .await
            .expect("workspace");
        assert_eq!(r.status(), 200);
        body(r).await
    }

    /// Waits for the workspace to reach `state`; fails on `failed` (unless awaited).
    pub async fn wait_for(&self, app: &TestApp, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let w = self.workspace(app).await;
            if w["state"] == state {
                return w;
            }
            assert!(
                w["state"] != "failed" || state == "failed",
                "the workspace failed: {w}"
            );
            assert!(
                Instant::now() < deadline,
                "the workspace never became {state}: {w}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Opens the workspace as a browser does: `/workspace/open` on the platform, then the
    /// handoff on the workspace origin, which sets its cookie. Returns the origin.
    pub async fn open(&self, app: &TestApp) -> String {
        self.open_with_cookie(app).await.0
    }

    /// [`Person::open`], also returning the workspace cookie (`name=value`).
    pub async fn open_with_cookie(&self, app: &TestApp) -> (String, String) {
        let r = self
            .client
            .get(app.url("/workspace/open"))
            .send()
            .await
            .expect("open");
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap_or_default());
        let handoff = location(&r);
        assert!(handoff.contains(".ws.localhost:"), "{handoff}");
        let r = self.client.get(&handoff).send().await.expect("handoff");
        assert_eq!(r.status(), 303);
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("a workspace cookie")
            .to_owned();
        assert!(cookie.starts_with("websplat_ws="), "{cookie}");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(
            !cookie.to_ascii_lowercase().contains("domain="),
            "host-only: {cookie}"
        );
        let url = reqwest::Url::parse(&handoff).expect("url");
        let origin = format!(
            "http://{}:{}",
            url.host_str().expect("host"),
            url.port().expect("port")
        );
        let pair = cookie.split(';').next().unwrap_or_default().to_owned();
        (origin, pair)
    }

    /// Writes a note in the workspace at `origin` (the persistence probe), expecting 201.
    pub async fn write_note(&self, origin: &str, text: &str) {
        let r = self
            .call(
                origin,
                reqwest::Method::POST,
                "/api/v1/notes",
                Some(json!({ "text": text })),
            )
            .await;
        assert_eq!(r.status(), 201, "writing a note");
    }

    /// A request on the workspace origin, as the workspace's own page sends it, retried
    /// while the workspace is (re)starting.
    pub async fn call(
        &self,
        origin: &str,
        method: reqwest::Method,
        path: &str,
        json: Option<Value>,
    ) -> reqwest::Response {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut request = self
                .client
                .request(method.clone(), format!("{origin}{path}"))
                .header("Origin", origin)
                .header("Accept", "application/json");
            if let Some(json) = &json {
                request = request.json(json);
            }
            let r = request.send().await.expect("workspace request");
            let retry = matches!(
                r.status(),
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY
            );
            if !retry || Instant::now() > deadline {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_owned()
}

/// One user's containers.
pub async fn containers_of(app: &TestApp, user: &str) -> Vec<ContainerSummary> {
    containers(app)
        .await
        .into_iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l.get("websplat.user").map(String::as_str) == Some(user))
        })
        .collect()
}

fn running(list: &[ContainerSummary]) -> Vec<&ContainerSummary> {
    list.iter()
        .filter(|c| c.state.as_ref().is_some_and(|s| s.to_string() == "running"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_starts_one_hardened_container_sign_out_stops_it_and_the_next_finds_the_notes() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let ready = alice.wait_for(&app, "ready").await;
    let url = ready["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with("http://alice-") && url.contains(".ws.localhost:"),
        "{url}"
    );

    // Exactly one container, labelled, hardened, with only the user's volume.
    let list = containers(&app).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let first_id = list[0].id.clone().expect("id");
    let c = docker()
        .inspect_container(&first_id, None::<InspectContainerOptions>)
        .await
        .expect("inspect");
    let config = c.config.expect("config");
    let labels = config.labels.expect("labels");
    assert_eq!(labels["websplat.user"], alice.id);
    assert_eq!(labels["websplat.pool"], "free");
    assert_eq!(labels["websplat.version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        labels["websplat.tenant"],
        ready["tenant"].as_str().expect("tenant")
    );
    assert_eq!(config.user.as_deref(), Some("65532:65532"), "non-root");
    let host = c.host_config.expect("host config");
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.readonly_rootfs, Some(true));
    let security = host.security_opt.unwrap_or_default();
    assert!(
        security.contains(&"no-new-privileges:true".to_owned()),
        "{security:?}"
    );
    assert!(
        !security
            .iter()
            .any(|s| s.contains("seccomp") || s.contains("apparmor=unconfined")),
        "the default seccomp profile stays: {security:?}"
    );
    let tmp = &host.tmpfs.expect("tmpfs")["/tmp"];
    assert!(
        tmp.contains("noexec") && tmp.contains("nosuid") && tmp.contains("size="),
        "{tmp}"
    );
    assert!(host.pids_limit.is_some_and(|p| p > 0 && p <= 1024));
    let levels = app.state.clone();
    let free = {
        let mut conn = levels.db.get().await.expect("conn");
        platform::authz::access_levels::require(&mut conn, "free")
            .await
            .expect("free")
    };
    let memory = i64::from(free.memory_mib) * 1024 * 1024;
    assert_eq!(host.memory, Some(memory));
    assert_eq!(host.memory_swap, Some(memory), "no swap beyond memory");
    assert_eq!(
        host.nano_cpus,
        Some(i64::from(free.cpu_millicores) * 1_000_000)
    );
    assert!(host.binds.unwrap_or_default().is_empty(), "no host paths");
    let mounts = c.mounts.expect("mounts");
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    let volume = mounts[0].name.clone().expect("volume name");
    assert_eq!(mounts[0].destination.as_deref(), Some("/data"));
    assert_eq!(
        mounts[0].typ.as_ref().map(|t| t.to_string()),
        Some("volume".to_owned())
    );
    assert_eq!(
        app.count(&format!(
            "workspaces WHERE volume = '{volume}' AND user_id = '{}'",
            alice.id
        ))
        .await,
        1
    );
    assert!(
        !c.network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .keys()
            .any(|n| n == "bridge" || n == "host")
    );

    // The workspace origin, after the handoff, serves the user's runtime.
    let origin = alice.open(&app).await;
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/whoami", None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        body(r).await["user"],
        alice.id.as_str(),
        "the runtime verified who is asking"
    );
    alice.write_note(&origin, "remember the milk").await;

    // The keeper's periodic round asks every running runtime for its storage.
    let asked = app.state.tenants.collect_all_usage().await.expect("usage");
    assert_eq!(asked, 1);
    let w = alice.workspace(&app).await;
    assert!(
        w["usage"]["used_bytes"].as_i64().is_some_and(|b| b > 0),
        "{w}"
    );

    // Sign-out stops it: no container left running, the volume stays.
    alice.sign_out(&app).await;
    let stopped = alice_status_after_sign_out(&app, &alice).await;
    assert_eq!(stopped["state"], "stopped");
    assert!(running(&containers(&app).await).is_empty());
    assert!(
        docker().inspect_volume(&volume).await.is_ok(),
        "the volume stays"
    );

    // The next sign-in makes a new container, which finds the notes.
    alice.sign_in(&app).await;
    let w = alice.wait_for(&app, "ready").await;
    // The stopped runtime reported its storage as it stopped.
    let used = w["usage"]["used_bytes"].as_i64().expect("usage reported");
    assert!(used > 0, "{w}");
    assert_eq!(
        w["usage"]["quota_bytes"],
        i64::from(free.storage_mib) * 1024 * 1024
    );
    let list = containers(&app).await;
    assert_eq!(running(&list).len(), 1);
    assert_ne!(
        list[0].id.as_deref(),
        Some(first_id.as_str()),
        "never reused"
    );
    let origin = alice.open(&app).await;
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);
    let notes = body(r).await;
    assert_eq!(notes["items"][0]["text"], "remember the milk", "{notes}");

    // The dashboard's metrics: a spawn observed, tenants by state.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_tenant_spawn_duration_seconds_count{outcome="ready"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"websplat_tenants{state="ready"} 1"#));
    assert!(metrics.contains("websplat_proxy_request_duration_seconds_count"));
}

/// Sign-out stops the workspace in the background; the user (signed out) asks through
/// PostgreSQL what became of it.
async fn alice_status_after_sign_out(app: &TestApp, alice: &Person) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = app
            .query_one(&format!(
                "SELECT state FROM tenants WHERE user_id = '{}' ORDER BY requested_at DESC LIMIT 1",
                alice.id
            ))
            .await;
        if state == "stopped" {
            return json!({"state": state});
        }
        assert!(Instant::now() < deadline, "still {state}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_else_reaches_a_workspace_by_host_path_or_ids_and_the_runtime_wants_the_secret() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    let alice_ws = alice.wait_for(&app, "ready").await;
    bob.wait_for(&app, "ready").await;
    let alice_origin = alice.open(&app).await;
    assert_eq!(alice_ws["url"], alice_origin.as_str());
    alice.write_note(&alice_origin, "alice's secret plan").await;

    // Bob at Alice's host, without a cookie for it: sent to the platform, which hands him
    // to his own workspace, never to hers.
    let r = bob
        .client
        .get(format!("{alice_origin}/"))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    let to_platform = location(&r);
    assert!(to_platform.starts_with(&app.base), "{to_platform}");
    let r = bob.client.get(&to_platform).send().await.expect("open");
    assert_eq!(r.status(), 303);
    let handoff = location(&r);
    assert!(
        handoff.starts_with("http://bob-"),
        "handed to his own workspace: {handoff}"
    );
    // As a program: refused without content.
    let r = bob
        .client
        .get(format!("{alice_origin}/api/v1/notes"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap_or_default().contains("secret plan"));

    // Bob's own workspace cookie, copied by hand to Alice's host: refused.
    let (bob_origin, bob_cookie) = bob.open_with_cookie(&app).await;
    let forged = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(Loopback))
        .build()
        .expect("client");
    let r = forged
        .get(format!("{alice_origin}/api/v1/notes"))
        .header("Cookie", &bob_cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 404);
    assert!(!r.text().await.unwrap_or_default().contains("secret plan"));
    // With his cookie on his own host he sees his (empty) notes, not hers.
    let r = forged
        .get(format!("{bob_origin}/api/v1/notes"))
        .header("Cookie", &bob_cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert!(!r.text().await.unwrap_or_default().contains("secret plan"));

    // Swapped ids: the workspace API answers about the caller only.
    let r = bob
        .client
        .get(app.url(&format!("/api/v1/workspace?user={}", alice.id)))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let answer = body(r).await;
    assert_eq!(
        answer["url"],
        bob_origin.as_str(),
        "always the caller's own: {answer}"
    );
    assert_ne!(answer["tenant"], alice_ws["tenant"]);

    // Straight to Alice's container (only the host can): refused without the signed
    // identity, and with a forged one.
    let list = containers(&app).await;
    let alice_container = list
        .iter()
        .find(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l["websplat.user"] == alice.id)
        })
        .expect("alice's container");
    let ip = alice_container
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .and_then(|n| n.values().next())
        .and_then(|e| e.ip_address.clone())
        .expect("ip");
    let direct = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for header in [
        None,
        Some("v1;user=00000000-0000-0000-0000-000000000000;ts=1;sig=00"),
    ] {
        let mut request = direct.get(format!("http://{ip}:8080/api/v1/notes"));
        if let Some(h) = header {
            request = request.header("X-Websplat-Identity", h);
        }
        let r = request.send().await.expect("direct");
        assert_eq!(r.status(), 401);
        assert!(!r.text().await.unwrap_or_default().contains("secret plan"));
    }
    // A cross-origin write to her workspace (from Bob's pages, say) is refused.
    let r = alice
        .client
        .post(format!("{alice_origin}/api/v1/notes"))
        .header("Origin", &bob_origin)
        .json(&json!({"text": "planted"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_runtime_is_replaced_on_the_next_request_with_its_data() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let origin = alice.open(&app).await;
    alice.write_note(&origin, "survives a crash").await;
    // And a site: the workspace's own data, beside the note.
    let r = alice
        .call(
            &origin,
            reqwest::Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "Survivor"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let project = body(r).await["id"].as_str().expect("id").to_owned();
    let before = containers(&app).await[0].id.clone().expect("id");
    docker()
        .kill_container(
            &before,
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("docker kill");
    let failed = alice.wait_for(&app, "failed").await;
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("killed") || r.contains("exit code")),
        "{failed}"
    );
    // The next request starts a new container, which has the data.
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["items"][0]["text"], "survives a crash");
    let r = alice
        .call(
            &origin,
            reqwest::Method::GET,
            &format!("/api/v1/projects/{project}"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["name"], "Survivor");
    let after = containers(&app).await;
    assert_eq!(after.len(), 1, "the dead one was removed: {after:?}");
    assert_ne!(after[0].id.as_deref(), Some(before.as_str()));
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_tenant_failures_total{reason="crashed"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconciler_removes_orphans_and_ends_ghosts() {
    let app = app_with_workspaces(&[("WEBSPLAT_TENANT_RECONCILE_INTERVAL", "1h")]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    // An orphan: a container of this deployment no tenant row knows.
    let orphan = docker()
        .create_container(
            Some(bollard::query_parameters::CreateContainerOptionsBuilder::new().build()),
            bollard::models::ContainerCreateBody {
                image: Some(crate::support::tenant_image(
                    platform::config::DEFAULT_TENANT_IMAGE,
                )),
                labels: Some(HashMap::from([
                    ("websplat.deployment".to_owned(), deployment(&app)),
                    (
                        "websplat.tenant".to_owned(),
                        uuid::Uuid::new_v4().to_string(),
                    ),
                ])),
                ..Default::default()
            },
        )
        .await
        .expect("create an orphan")
        .id;
    // A ghost: a row that says ready, whose container is gone.
    let bob = Person::sign_up(&app, "bob@example.com").await;
    bob.wait_for(&app, "ready").await;
    let bobs = containers(&app)
        .await
        .into_iter()
        .find(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l["websplat.user"] == bob.id)
        })
        .and_then(|c| c.id)
        .expect("bob's container");
    // Removed behind the platform's back, with its events unseen: stop the keeper first.
    app.sql(&format!(
        "UPDATE tenants SET container_id = 'gone-{bobs}' WHERE container_id = '{bobs}'"
    ))
    .await;
    docker()
        .remove_container(
            &bobs,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .expect("remove");

    let done = app.state.tenants.reconcile().await.expect("reconcile");
    assert_eq!(done.orphans_removed, 1, "{done:?}");
    assert_eq!(done.ghosts_ended, 1, "{done:?}");
    assert!(
        docker()
            .inspect_container(&orphan, None::<InspectContainerOptions>)
            .await
            .is_err()
    );
    let w = bob.workspace(&app).await;
    assert_eq!(w["state"], "failed", "{w}");
    // Alice's, which agrees, is untouched; a second run finds nothing to do.
    assert_eq!(alice.workspace(&app).await["state"], "ready");
    let again = app.state.tenants.reconcile().await.expect("reconcile");
    assert_eq!(again, platform::tenants::keeper::Reconciled::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_signing_in_at_once_get_one_container() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let first = containers(&app).await[0].id.clone().expect("id");
    let browsers: Vec<Person> = (0..2)
        .map(|_| Person {
            client: browser(),
            email: alice.email.clone(),
            id: alice.id.clone(),
        })
        .collect();
    futures_util::future::join_all(browsers.iter().map(|b| b.sign_in(&app))).await;
    browsers[0].wait_for(&app, "ready").await;
    // Let a straggling spawn show itself if there were one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let list = containers(&app).await;
    let live = running(&list);
    assert_eq!(live.len(), 1, "{list:?}");
    assert_ne!(
        live[0].id.as_deref(),
        Some(first.as_str()),
        "a fresh one for the new login"
    );
    assert_eq!(
        app.count(&format!(
            "tenants WHERE user_id = '{}' AND state IN ('requested','creating','starting','ready')",
            alice.id
        ))
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_with_a_sentence_and_idle_workspaces_stop() {
    let app = app_with_workspaces(&[
        ("WEBSPLAT_MAX_RUNNING_TENANTS", "1"),
        ("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false"),
    ])
    .await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    let r = alice.post(&app, "/api/v1/workspace/start").await;
    assert_eq!(r.status(), 202);
    alice.wait_for(&app, "ready").await;
    let r = bob.post(&app, "/api/v1/workspace/start").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let e = body(r).await;
    assert_eq!(e["error"]["code"], "at_capacity");
    assert!(
        e["error"]["message"]
            .as_str()
            .expect("message")
            .contains("try again in a few minutes"),
        "{e}"
    );
    // Through the origin, Bob reads the same sentence on a page.
    let origin = bob.open(&app).await;
    let r = bob
        .client
        .get(format!("{origin}/"))
        .header("Accept", "text/html")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 429);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("try again in a few minutes")
    );

    // Idle: Alice's last traffic and start an hour ago, past the free level's timeout.
    app.sql(&format!(
        "UPDATE tenants SET ready_at = now() - interval '2 hours' WHERE user_id = '{}'",
        alice.id
    ))
    .await;
    let stopped = app.state.tenants.reap_idle().await.expect("reap");
    assert_eq!(stopped, 1);
    let w = alice.wait_for(&app, "stopped").await;
    assert!(
        w["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("idle for")),
        "{w}"
    );
    assert!(running(&containers(&app).await).is_empty());
    // Now there is room for Bob.
    let r = bob.post(&app, "/api/v1/workspace/start").await;
    assert_eq!(r.status(), 202);
    bob.wait_for(&app, "ready").await;
    // Explicit stop from the API.
    let r = bob.post(&app, "/api/v1/workspace/stop").await;
    assert_eq!(r.status(), 202);
    bob.wait_for(&app, "stopped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_streams_over_sse_until_ready() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let r = alice.post(&app, "/api/v1/workspace/start").await;
    assert_eq!(r.status(), 202);
    let r = alice
        .client
        .get(app.url("/api/v1/workspace/events"))
        .send()
        .await
        .expect("events");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(90), r.text())
        .await
        .expect("the stream ends at ready")
        .expect("text");
    let states: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["state"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(states.last().map(String::as_str), Some("ready"), "{text}");
    assert!(states.iter().any(|s| s == "starting"), "{states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_removes_their_containers_and_on_confirmation_their_volume() {
    let app = app_with_workspaces(&[]).await;
    let (_, _, admin) = app.user_with_role("admin@example.com", Some("admin")).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let volume = app
        .query_one(&format!(
            "SELECT volume FROM workspaces WHERE user_id = '{}'",
            alice.id
        ))
        .await;
    assert!(docker().inspect_volume(&volume).await.is_ok());
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/users/{}?delete_volume=true", alice.id),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let done = body(r).await;
    assert_eq!(done["volume_deleted"], true);
    assert!(containers_of(&app, &alice.id).await.is_empty());
    assert!(
        docker().inspect_volume(&volume).await.is_err(),
        "volume deleted"
    );
    assert_eq!(
        app.count(&format!("users WHERE id = '{}'", alice.id)).await,
        0
    );
    assert_eq!(
        alice
            .client
            .get(app.url("/api/v1/me"))
            .send()
            .await
            .expect("me")
            .status(),
        401
    );
    let records = app.audit(&admin, "action=user.delete").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["detail"]["volume"], volume.as_str());

    // Without confirmation the volume stays.
    let bob = Person::sign_up(&app, "bob@example.com").await;
    bob.wait_for(&app, "ready").await;
    let volume = app
        .query_one(&format!(
            "SELECT volume FROM workspaces WHERE user_id = '{}'",
            bob.id
        ))
        .await;
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/admin/users/{}", bob.id),
            &admin,
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["volume_deleted"], false);
    assert!(containers_of(&app, &bob.id).await.is_empty());
    assert!(docker().inspect_volume(&volume).await.is_ok(), "kept");
    docker()
        .remove_volume(
            &volume,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
        .expect("clean up");
}

/// Peak resident memory of this process (the platform runs in it), in bytes.
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_streams_a_large_upload_sse_and_websockets() {
    let app = app_with_workspaces(&[("WEBSPLAT_PROXY_MAX_BODY_BYTES", "157286400")]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    alice.wait_for(&app, "ready").await;
    let origin = alice.open(&app).await;
    // Warm up the connection pool and the runtime.
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);

    // 100 MB, generated as it is sent; the platform must not hold it.
    const SIZE: u64 = 100 * 1024 * 1024;
    const CHUNK: usize = 256 * 1024;
    let before = peak_rss();
    let chunks = (SIZE as usize).div_ceil(CHUNK);
    let stream = futures_util::stream::iter((0..chunks).map(|i| {
        let byte = (i % 251) as u8;
        Ok::<_, std::io::Error>(vec![byte; CHUNK])
    }));
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    for i in 0..chunks {
        sha2::Digest::update(&mut hasher, vec![(i % 251) as u8; CHUNK]);
    }
    let expected: String = sha2::Digest::finalize(hasher)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let r = alice
        .client
        .post(format!("{origin}/api/v1/uploads?name=big.bin"))
        .header("Origin", &origin)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Length", SIZE)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    let stored = body(r).await;
    assert_eq!(stored["bytes"], SIZE);
    assert_eq!(
        stored["sha256"],
        expected.as_str(),
        "the bytes arrived intact"
    );
    let grew = peak_rss().saturating_sub(before);
    assert!(
        grew < 48 * 1024 * 1024,
        "the proxy held {} MiB of a 100 MiB upload",
        grew / (1024 * 1024)
    );
    // Over the proxy's limit: refused on the declared length, before a byte is relayed
    // (a raw request, so nothing but the proxy's answer can end it).
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_, cookie) = alice.open_with_cookie(&app).await;
    let host = origin.trim_start_matches("http://").to_owned();
    let port: u16 = host
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let too_big = format!(
        "POST /api/v1/uploads HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nCookie: {cookie}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        200u64 * 1024 * 1024
    );
    socket
        .write_all(too_big.as_bytes())
        .await
        .expect("request head");
    let mut status = vec![0u8; 12];
    socket
        .read_exact(&mut status)
        .await
        .expect("an answer without the body");
    assert_eq!(&status, b"HTTP/1.1 413");
    drop(socket);

    // SSE: a job's progress streams through to its end.
    let r = alice
        .call(
            &origin,
            reqwest::Method::POST,
            "/api/v1/projects",
            Some(json!({"name": "Streams"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let project = body(r).await["id"].as_str().expect("project id").to_owned();
    let r = alice
        .call(
            &origin,
            reqwest::Method::POST,
            &format!("/api/v1/projects/{project}/exports"),
            Some(json!({"format": "site"})),
        )
        .await;
    assert_eq!(r.status(), 202);
    let job = body(r).await["id"].as_str().expect("job id").to_owned();
    let r = alice
        .client
        .get(format!("{origin}/api/v1/jobs/{job}/events"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("events");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/event-stream")
    );
    let text = tokio::time::timeout(Duration::from_secs(60), r.text())
        .await
        .expect("the stream ends")
        .expect("text");
    assert!(text.contains("data: ") && text.contains(&job), "{text}");

    // WebSocket: upgraded through the proxy; a ping comes back as a pong.
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\nCookie: {cookie}\r\n\r\n"
    );
    socket
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).await.expect("response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // A masked ping frame with the payload "hi".
    let mask = [1u8, 2, 3, 4];
    let payload: Vec<u8> = b"hi"
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    let mut frame = vec![0x89, 0x80 | 2];
    frame.extend_from_slice(&mask);
    frame.extend_from_slice(&payload);
    socket.write_all(&frame).await.expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let mut header = [0u8; 2];
            socket.read_exact(&mut header).await.expect("frame");
            let len = usize::from(header[1] & 0x7f);
            let len = match len {
                126 => {
                    let mut ext = [0u8; 2];
                    socket.read_exact(&mut ext).await.expect("len");
                    usize::from(u16::from_be_bytes(ext))
                }
                127 => panic!("no huge frames expected"),
                n => n,
            };
            let mut data = vec![0u8; len];
            socket.read_exact(&mut data).await.expect("payload");
            if header[0] & 0x0f == 0xA {
                return data;
            }
        }
    })
    .await
    .expect("a pong within 10 s");
    assert_eq!(pong, b"hi");
    // A WebSocket from another origin is refused (cross-site WebSocket hijacking).
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let handshake = handshake.replace(&format!("Origin: {origin}"), "Origin: http://evil.example");
    socket
        .write_all(handshake.as_bytes())
        .await
        .expect("handshake");
    let mut answer = vec![0u8; 12];
    socket.read_exact(&mut answer).await.expect("answer");
    assert_eq!(&answer, b"HTTP/1.1 403");
}

/// A probe image: Debian's static busybox `FROM scratch` (scripts/test installs
/// `busybox-static`), built once per machine.
async fn probe_image() -> String {
    let tag = "websplat/probe:busybox".to_owned();
    if docker().inspect_image(&tag).await.is_ok() {
        return tag;
    }
    let dir =
        std::env::temp_dir().join(format!("websplat-probe-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::copy("/bin/busybox", dir.join("busybox"))
        .expect("/bin/busybox (apt-get install busybox-static)");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /busybox\nUSER 65532:65532\nENTRYPOINT [\"/busybox\"]\n",
    )
    .expect("Dockerfile");
    let status = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(&dir)
        .status()
        .expect("docker build");
    assert!(status.success(), "cannot build the probe image");
    let _ = std::fs::remove_dir_all(&dir);
    tag
}

/// Runs a shell script in a probe container that shares `container`'s network namespace
/// (sees exactly what the tenant sees); returns what it printed.
async fn probe_from(container: &str, script: &str) -> String {
    use bollard::query_parameters::{LogsOptionsBuilder, RemoveContainerOptionsBuilder};
    let image = probe_image().await;
    let d = docker();
    let id = d
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            bollard::models::ContainerCreateBody {
                image: Some(image),
                cmd: Some(vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()]),
                host_config: Some(bollard::models::HostConfig {
                    network_mode: Some(format!("container:{container}")),
                    cap_drop: Some(vec!["ALL".to_owned()]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("create the probe")
        .id;
    d.start_container(
        &id,
        None::<bollard::query_parameters::StartContainerOptions>,
    )
    .await
    .expect("start the probe");
    let mut waited = d.wait_container(&id, None::<bollard::query_parameters::WaitContainerOptions>);
    let finished = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(w) = futures_util::StreamExt::next(&mut waited).await {
            if w.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        finished.is_ok(),
        "the probe did not finish within 2 minutes"
    );
    let mut logs = d.logs(
        &id,
        Some(LogsOptionsBuilder::new().stdout(true).stderr(true).build()),
    );
    let mut out = String::new();
    while let Some(Ok(line)) = futures_util::StreamExt::next(&mut logs).await {
        out.push_str(&line.to_string());
    }
    let _ = d
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_reaches_neither_another_tenant_nor_the_internet_nor_the_hosts_services() {
    let app = app_with_workspaces(&[]).await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    alice.wait_for(&app, "ready").await;
    bob.wait_for(&app, "ready").await;
    let bob_address = app
        .query_one(&format!(
            "SELECT address FROM tenants WHERE user_id = '{}' AND state = 'ready'",
            bob.id
        ))
        .await;
    let alice_container = containers_of(&app, &alice.id).await[0]
        .id
        .clone()
        .expect("id");
    // The host, as the tenant network's gateway.
    let network = docker()
        .inspect_network(
            &app.state.config.tenants.network,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .expect("network");
    assert_eq!(network.internal, Some(true));
    let gateway = network
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.into_iter().find_map(|c| c.gateway))
        .unwrap_or_else(|| "172.17.0.1".to_owned());
    let pg_port = crate::support::env_var("WEBSPLAT_TEST_DATABASE_URL")
        .rsplit(':')
        .next()
        .and_then(|p| p.split('/').next().map(str::to_owned))
        .expect("port");
    let redis_port = crate::support::env_var("WEBSPLAT_TEST_REDIS_URL")
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .map(str::to_owned)
        .expect("port");
    let platform_port = app.base.rsplit(':').next().expect("port").to_owned();
    let (bob_ip, bob_port) = bob_address.split_once(':').expect("ip:port");
    let targets = [
        ("own-runtime", "127.0.0.1", "8080"),
        ("other-tenant", bob_ip, bob_port),
        ("internet", "1.1.1.1", "80"),
        ("host-postgresql", &gateway, &pg_port),
        ("host-redis", &gateway, &redis_port),
        ("host-docker-api", &gateway, "2375"),
        ("host-platform", &gateway, &platform_port),
    ];
    let script: String = targets
        .iter()
        .map(|(name, host, port)| {
            format!(
                "if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /busybox timeout 5 /busybox nc -w 2 {host} {port} >/dev/null 2>&1; then echo '{name} reached'; else echo '{name} blocked'; fi; "
            )
        })
        .collect();
    let out = probe_from(&alice_container, &script).await;
    // The probe works: it reaches the tenant it sits in.
    assert!(out.contains("own-runtime reached"), "{out}");
    for (name, _, _) in &targets[1..] {
        assert!(
            out.contains(&format!("{name} blocked")),
            "{name} must be unreachable:\n{out}"
        );
    }
}

/// Alice, on an access level of her own made by an admin (its name, memory, storage and
/// largest upload in MiB), with her workspace started and ready.
async fn alice_on_a_level(
    app: &TestApp,
    name: &str,
    memory: u32,
    storage: u32,
    upload: u32,
) -> Person {
    let (_, _, admin) = app.user_with_role("admin@example.com", Some("admin")).await;
    let level = json!({
        "name": name, "description": format!("{memory} MiB of memory"),
        "features": ["sites", "documents"], "cpu_millicores": 250, "memory_mib": memory,
        "storage_mib": storage, "max_upload_mib": upload, "ai_tokens_per_day": 0,
        "read_requests_per_minute": 600, "write_requests_per_minute": 600,
        "idle_timeout_seconds": 600
    });
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/admin/access-levels",
            &admin,
            Some(level),
        )
        .await;
    assert_eq!(r.status(), 201);
    let alice = Person::sign_up(app, "alice@example.com").await;
    let r = app
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/users/{}/access-level", alice.id),
            &admin,
            Some(json!({"access_level": name})),
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(
        alice.post(app, "/api/v1/workspace/start").await.status(),
        202
    );
    alice.wait_for(app, "ready").await;
    alice
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_level_sizes_the_container_and_its_quota_refusals_reach_the_browser() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    let alice = alice_on_a_level(&app, "tiny", 128, 16, 1).await;
    let c = docker()
        .inspect_container(
            containers_of(&app, &alice.id).await[0]
                .id
                .as_deref()
                .expect("id"),
            None::<InspectContainerOptions>,
        )
        .await
        .expect("inspect");
    let host = c.host_config.expect("host config");
    assert_eq!(host.memory, Some(128 * 1024 * 1024));
    assert_eq!(host.nano_cpus, Some(250_000_000));
    assert_eq!(
        c.config.and_then(|c| c.labels).expect("labels")["websplat.pool"],
        "tiny"
    );

    // 20 MiB into a 16 MiB workspace: the runtime's 413 reaches the browser, in words.
    let origin = alice.open(&app).await;
    let r = alice
        .client
        .post(format!("{origin}/api/v1/uploads"))
        .header("Origin", &origin)
        .header("Content-Type", "application/octet-stream")
        .body(vec![7u8; 20 * 1024 * 1024])
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 413);
    let e = body(r).await;
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("quota") || m.contains("storage")),
        "{e}"
    );
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/uploads", None)
        .await;
    assert_eq!(body(r).await["items"], json!([]), "nothing kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_beyond_the_concurrent_limit_are_refused_in_words() {
    let app = app_with_workspaces(&[
        ("WEBSPLAT_MAX_CONCURRENT_SPAWNS", "1"),
        ("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false"),
    ])
    .await;
    let alice = Person::sign_up(&app, "alice@example.com").await;
    let bob = Person::sign_up(&app, "bob@example.com").await;
    let (a, b) = tokio::join!(
        alice.post(&app, "/api/v1/workspace/start"),
        bob.post(&app, "/api/v1/workspace/start")
    );
    let (mut admitted, mut refused) = (Vec::new(), Vec::new());
    for (person, r) in [(&alice, a), (&bob, b)] {
        match r.status().as_u16() {
            202 => admitted.push(person),
            429 => refused.push((person, body(r).await)),
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        (admitted.len(), refused.len()),
        (1, 1),
        "one starts, one waits"
    );
    let (waiting, e) = &refused[0];
    assert_eq!(e["error"]["code"], "at_capacity");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("starting right now")),
        "{e}"
    );
    admitted[0].wait_for(&app, "ready").await;
    // Once that spawn is done, the other may start.
    assert_eq!(
        waiting.post(&app, "/api/v1/workspace/start").await.status(),
        202
    );
    waiting.wait_for(&app, "ready").await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_tenant_failures_total{reason="at_capacity"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_out_of_memory_fails_in_words_and_comes_back_with_its_data() {
    let app = app_with_workspaces(&[("WEBSPLAT_WORKSPACE_START_ON_SIGN_IN", "false")]).await;
    // The least memory a level with 8 MiB uploads may have.
    let alice = alice_on_a_level(&app, "lean", 64, 1024, 8).await;
    let origin = alice.open(&app).await;
    alice.write_note(&origin, "written before the fall").await;
    let before = containers_of(&app, &alice.id).await[0]
        .id
        .clone()
        .expect("id");

    // The host squeezes the container below what its level promised (as an operator's
    // `docker update` or a kernel under pressure may), then an upload the level allows
    // needs more than is left: the kernel kills the runtime.
    docker()
        .update_container(
            &before,
            bollard::models::ContainerUpdateBody {
                memory: Some(20 * 1024 * 1024),
                memory_swap: Some(20 * 1024 * 1024),
                ..Default::default()
            },
        )
        .await
        .expect("docker update");
    let boundary = "websplat-oom-test";
    let mut form = Vec::new();
    for n in 0..4 {
        form.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; \
                 filename=\"part-{n}.txt\"\r\nContent-Type: text/plain\r\n\r\n"
            )
            .into_bytes(),
        );
        form.extend(std::iter::repeat_n(b'a', 8 * 1024 * 1024 - 1024));
        form.extend(b"\r\n");
    }
    form.extend(format!("--{boundary}--\r\n").into_bytes());
    let sent = alice
        .client
        .post(format!("{origin}/api/v1/documents"))
        .header("Origin", &origin)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await;
    if let Ok(r) = &sent {
        assert!(
            r.status().is_server_error(),
            "the upload cannot succeed: {r:?}"
        );
    }

    let failed = alice.wait_for(&app, "failed").await;
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ran out of memory")),
        "{failed}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"websplat_tenant_failures_total{reason="oom"} 1"#),
        "{metrics}"
    );

    // The next request starts a new container, with the level's memory and the note.
    let r = alice
        .call(&origin, reqwest::Method::GET, "/api/v1/notes", None)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["items"][0]["text"], "written before the fall");
    let after = containers_of(&app, &alice.id).await;
    assert_eq!(after.len(), 1, "the dead one was removed: {after:?}");
    let now = after[0].id.as_deref().expect("id");
    assert_ne!(now, before);
    let c = docker()
        .inspect_container(now, None::<InspectContainerOptions>)
        .await
        .expect("inspect");
    assert_eq!(c.host_config.and_then(|h| h.memory), Some(64 * 1024 * 1024));
}
