//! A real SMTP server for tests: `aiosmtpd` (pinned, from PyPI, which `scripts/test`
//! installs in `.data/venv-smtp`), started per test on a free loopback port with its own
//! `Mailbox` handler, which writes every message it accepts into a Maildir the test reads.
//! The platform talks to it over SMTP exactly as to any mail server (`WEBSPLAT_SMTP_TLS=none`,
//! which the platform allows on loopback only).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{ChildGuard, env_var, free_port};

pub struct SmtpServer {
    pub port: u16,
    maildir: PathBuf,
    dir: PathBuf,
    _child: ChildGuard,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One message as the server stored it.
#[derive(Debug, Clone)]
pub struct Message {
    pub to: String,
    pub subject: String,
    /// The whole message as received (headers and body).
    pub raw: String,
}

impl Message {
    /// The first `http…` link in the body (quoted-printable soft breaks undone).
    pub fn link(&self) -> Option<String> {
        let text = self
            .raw
            .replace("=\r\n", "")
            .replace("=\n", "")
            .replace("=3D", "=");
        let start = text.find("http://").or_else(|| text.find("https://"))?;
        let link: String = text[start..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        Some(link)
    }
}

impl SmtpServer {
    pub async fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("websplat-smtp-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a temporary folder");
        let maildir = dir.join("mail");
        let child = Command::new(env_var("WEBSPLAT_TEST_SMTP_SERVER"))
            .args([
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
                maildir.to_str().expect("a UTF-8 path"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let child = ChildGuard(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "aiosmtpd never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        SmtpServer {
            port,
            maildir,
            dir,
            _child: child,
        }
    }

    /// The platform's environment for sending mail through this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WEBSPLAT_SMTP_HOST", "127.0.0.1".to_owned()),
            ("WEBSPLAT_SMTP_PORT", self.port.to_string()),
            ("WEBSPLAT_SMTP_TLS", "none".to_owned()),
            (
                "WEBSPLAT_SMTP_FROM",
                "WebSplat <no-reply@websplat.test>".to_owned(),
            ),
        ]
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Message> {
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(raw) = std::fs::read_to_string(entry.path()) else {
                    continue;
                };
                let header = |name: &str| {
                    raw.lines()
                        .take_while(|l| !l.is_empty())
                        .find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                                .map(|(_, v)| v.trim().to_owned())
                        })
                        .unwrap_or_default()
                };
                out.push(Message {
                    to: header("To"),
                    subject: header("Subject"),
                    raw: raw.clone(),
                });
            }
        }
        out
    }

    /// Waits until a message to `to` whose subject contains `subject` has come.
    pub async fn wait_for(&self, to: &str, subject: &str) -> Message {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(m) = self
                .messages()
                .into_iter()
                .find(|m| m.to.contains(to) && m.subject.contains(subject))
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no message to {to} about {subject:?}; got {:?}",
                self.messages()
                    .iter()
                    .map(|m| (&m.to, &m.subject))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
