//! An S3-compatible object store for tests: moto's server (`moto[server]` from PyPI, which
//! `scripts/test` installs in `.data/venv-s3`), started per test with one empty bucket, and
//! read back over plain HTTP to see which objects a test left.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{ChildGuard, env_var, free_port, wait_for_http};

pub struct S3Server {
    /// Where it answers, e.g. `http://127.0.0.1:43121`.
    pub endpoint: String,
    pub bucket: String,
    _child: ChildGuard,
}

impl S3Server {
    /// Starts the server with an empty bucket named `bucket`.
    pub async fn start(bucket: &str) -> Self {
        let port = free_port();
        let child = Command::new(env_var("WEBSPLAT_TEST_S3_SERVER"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let child = ChildGuard(child);
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_for_http(
            &format!("{endpoint}/moto-api/"),
            "moto_server",
            Duration::from_secs(30),
        )
        .await;
        let created = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .expect("create the bucket");
        assert!(created.status().is_success(), "{}", created.status());
        S3Server {
            endpoint,
            bucket: bucket.to_owned(),
            _child: child,
        }
    }

    /// The keys of the bucket's objects under `prefix`, sorted.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let xml = reqwest::Client::new()
            .get(format!("{}/{}", self.endpoint, self.bucket))
            .query(&[("list-type", "2"), ("prefix", prefix), ("max-keys", "1000")])
            .send()
            .await
            .expect("list the bucket")
            .text()
            .await
            .expect("the listing");
        let mut keys: Vec<String> = xml
            .split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>").map(|(key, _)| key.to_owned()))
            .collect();
        keys.sort();
        keys
    }

    /// The platform's environment for keeping published sites in this bucket.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WEBSPLAT_SITES_S3_ENDPOINT", self.endpoint.clone()),
            ("WEBSPLAT_SITES_S3_BUCKET", self.bucket.clone()),
            ("WEBSPLAT_SITES_S3_REGION", "us-east-1".to_owned()),
            ("WEBSPLAT_SITES_S3_ACCESS_KEY", "test-access-key".to_owned()),
            ("WEBSPLAT_SITES_S3_SECRET_KEY", "test-secret-key".to_owned()),
        ]
    }
}
