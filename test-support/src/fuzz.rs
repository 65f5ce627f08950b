//! Fuzzing an HTTP API from its own OpenAPI document with the third-party `schemathesis` CLI
//! (pinned in `.data/fuzz-venv` by `scripts/test`, found through `WEBSPLAT_TEST_SCHEMATHESIS`),
//! run as a process against a server the test started. A run passes when no generated request
//! gets a 5xx, a status code the document does not list for its operation, or a body that
//! violates the documented schema or content type; otherwise the test fails with
//! schemathesis's own report, which names each case and how to replay it with `curl`.
//!
//! It never decides what an API should answer: the document does.

use std::process::Command;

use crate::env_var;

/// What `schemathesis` checks on every response.
pub const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance";

/// One fuzz run: the document, who is signed in, and how much to try.
#[derive(Debug, Clone)]
pub struct Fuzz {
    /// Where the OpenAPI document is served.
    pub schema_url: String,
    /// The API's base URL, when it differs from the document's origin.
    pub base_url: Option<String>,
    /// `Name: value` headers sent with every request (a token, a cookie, an `Origin`).
    pub headers: Vec<String>,
    /// Operations left out, as a regular expression over their paths.
    pub exclude_path_regex: Option<String>,
    /// Generated cases per operation and phase at most.
    pub max_examples: u32,
}

impl Fuzz {
    pub fn new(schema_url: impl Into<String>) -> Self {
        Fuzz {
            schema_url: schema_url.into(),
            base_url: None,
            headers: Vec::new(),
            exclude_path_regex: None,
            max_examples: 10,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(format!("{name}: {value}"));
        self
    }

    /// The command line, for the failure message and for replaying it by hand.
    fn command(&self) -> Command {
        let mut cmd = Command::new(env_var("WEBSPLAT_TEST_SCHEMATHESIS"));
        cmd.arg("run")
            .arg(&self.schema_url)
            .args(["--checks", CHECKS])
            // The stateful phase chains calls through links the documents do not declare.
            .args(["--phases", "examples,coverage,fuzzing"])
            .args(["--max-examples", &self.max_examples.to_string()])
            // Reproducible: a failure in CI is the same failure on a laptop.
            .args(["--seed", "15"])
            .args(["--generation-database", "none"])
            // One worker: schemathesis's coverage phase is not safe across threads (it
            // fails with "AST constructor recursion depth mismatch" now and then).
            .args(["--workers", "1"])
            .args(["--request-timeout", "10"])
            .args(["--max-redirects", "0"])
            .args(["--suppress-health-check", "all"])
            .args(["--warnings", "off"])
            .arg("--no-color")
            .args(["--output-truncate", "false"]);
        if let Some(base) = &self.base_url {
            cmd.args(["--url", base]);
        }
        if let Some(regex) = &self.exclude_path_regex {
            cmd.args(["--exclude-path-regex", regex]);
        }
        for h in &self.headers {
            cmd.args(["--header", h]);
        }
        cmd
    }

    /// Runs schemathesis to the end (on a blocking thread, so the server under test keeps
    /// serving on this test's runtime); panics with its report when any check failed. Its
    /// output goes to a file while it runs (`tail -f` it to watch), removed when it passes.
    pub async fn run(self) {
        // A directory of the run's own: schemathesis keeps a cache in its working directory.
        let dir =
            std::env::temp_dir().join(format!("websplat-fuzz-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("the fuzz run's directory");
        let report = dir.join("report.txt");
        let file = std::fs::File::create(&report).expect("the fuzz report file");
        let mut cmd = self.command();
        cmd.current_dir(&dir)
            .stdout(file.try_clone().expect("the report file"))
            .stderr(file);
        let status = tokio::task::spawn_blocking(move || cmd.status())
            .await
            .expect("the schemathesis thread")
            .expect("run schemathesis (WEBSPLAT_TEST_SCHEMATHESIS)");
        let stdout = std::fs::read_to_string(&report).unwrap_or_default();
        let stderr = format!("(the report: {})", report.display());
        assert!(
            status.success(),
            "schemathesis found responses that break {} ({status}):\n{stdout}\n{stderr}",
            self.schema_url,
        );
        // A run that reached no operation proves nothing.
        assert!(
            stdout.contains("passed") && !stdout.contains("No operations"),
            "schemathesis tested nothing at {}:\n{stdout}\n{stderr}",
            self.schema_url
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
