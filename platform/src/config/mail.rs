//! The SMTP server the platform sends mail through (`WEBSPLAT_SMTP_*`): e-mail verification
//! of new local accounts and the "someone tried to register with your address" notice. No
//! server set: no mail is sent, and registration works as README.md, "Local accounts", says.
//! The password is a `SecretString`: never logged, never shown by `Debug`.

use std::time::Duration;

use secrecy::SecretString;

use super::settings::{ConfigError, Settings};

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Implicit TLS from the first byte (port 465).
    Tls,
    /// Plain, then `STARTTLS`, which must succeed (port 587; the default).
    StartTls,
    /// No TLS at all: only for a server on this machine (loopback), such as a relay.
    None,
}

#[derive(Clone)]
pub struct SmtpConfig {
    /// `WEBSPLAT_SMTP_HOST`.
    pub host: String,
    /// `WEBSPLAT_SMTP_PORT`: 465 with `tls`, else 587.
    pub port: u16,
    /// `WEBSPLAT_SMTP_TLS`: `starttls` (default), `tls` or `none` (loopback only).
    pub tls: SmtpTls,
    /// `WEBSPLAT_SMTP_USERNAME` and `WEBSPLAT_SMTP_PASSWORD`, when the server wants them.
    pub credentials: Option<(String, SecretString)>,
    /// `WEBSPLAT_SMTP_FROM`, e.g. `WebSplat <no-reply@example.com>`.
    pub from: String,
    /// `WEBSPLAT_SMTP_TIMEOUT` (default 10s) for one message.
    pub timeout: Duration,
    /// `WEBSPLAT_EMAIL_VERIFICATION_TTL` (default 24h): how long a verification link works.
    pub verification_ttl: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field(
                "username",
                &self.credentials.as_ref().map(|(user, _)| user.as_str()),
            )
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn smtp(s: &Settings) -> Result<Option<SmtpConfig>, ConfigError> {
    let Some(host) = s.raw("smtp_host").map(str::trim).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    let tls = match s.raw("smtp_tls").unwrap_or("starttls") {
        "starttls" => SmtpTls::StartTls,
        "tls" => SmtpTls::Tls,
        "none" if is_loopback(host) => SmtpTls::None,
        "none" => {
            return Err(s.invalid(
                "smtp_tls",
                "none sends passwords and links in clear: only for a server on this machine (localhost)",
            ));
        }
        other => {
            return Err(s.invalid(
                "smtp_tls",
                format!("{other:?} is not starttls, tls or none"),
            ));
        }
    };
    let port = s.parse("smtp_port", if tls == SmtpTls::Tls { 465 } else { 587 })?;
    let credentials = match (s.raw("smtp_username"), s.raw("smtp_password")) {
        (Some(user), Some(password)) => {
            Some((user.to_owned(), SecretString::from(password.to_owned())))
        }
        (None, None) => None,
        _ => {
            return Err(s.invalid(
                "smtp_username",
                "set both WEBSPLAT_SMTP_USERNAME and WEBSPLAT_SMTP_PASSWORD, or neither",
            ));
        }
    };
    let from = s
        .required("smtp_from", "e.g. WebSplat <no-reply@example.com>")?
        .to_owned();
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(s.invalid(
            "smtp_from",
            format!("{from:?} is not an address, like WebSplat <no-reply@example.com>"),
        ));
    }
    let timeout = s.duration("smtp_timeout", Duration::from_secs(10))?;
    let verification_ttl = s.duration("email_verification_ttl", Duration::from_secs(24 * 3600))?;
    if port == 0 {
        return Err(s.invalid("smtp_port", "must be a port number from 1 to 65535"));
    }
    Ok(Some(SmtpConfig {
        host: host.to_owned(),
        port,
        tls,
        credentials,
        from,
        timeout,
        verification_ttl,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, SmtpTls};

    fn with(pairs: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        let mut env: Vec<(String, String)> = vec![
            (
                "WEBSPLAT_DATABASE_URL".into(),
                "postgres://u@127.0.0.1/db".into(),
            ),
            ("WEBSPLAT_REDIS_URL".into(), "redis://127.0.0.1/".into()),
        ];
        env.extend(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Config::from_sources(None, env)
    }

    #[test]
    fn smtp_is_off_unless_a_host_is_set_and_checked_when_it_is() {
        assert!(with(&[]).expect("valid").smtp.is_none());
        let c = with(&[
            ("WEBSPLAT_SMTP_HOST", "mail.example.com"),
            ("WEBSPLAT_SMTP_FROM", "WebSplat <no-reply@example.com>"),
            ("WEBSPLAT_SMTP_USERNAME", "websplat"),
            ("WEBSPLAT_SMTP_PASSWORD", "hunter2-but-longer"),
        ])
        .expect("valid");
        let smtp = c.smtp.expect("smtp");
        assert_eq!((smtp.port, smtp.tls), (587, SmtpTls::StartTls));
        assert!(
            !format!("{smtp:?}").contains("hunter2"),
            "never the password"
        );
        let err = with(&[("WEBSPLAT_SMTP_HOST", "mail.example.com")])
            .expect_err("no sender")
            .to_string();
        assert!(err.contains("WEBSPLAT_SMTP_FROM"), "{err}");
        let err = with(&[
            ("WEBSPLAT_SMTP_HOST", "mail.example.com"),
            ("WEBSPLAT_SMTP_FROM", "no-reply@example.com"),
            ("WEBSPLAT_SMTP_TLS", "none"),
        ])
        .expect_err("clear text to another host")
        .to_string();
        assert!(err.contains("WEBSPLAT_SMTP_TLS"), "{err}");
        let local = with(&[
            ("WEBSPLAT_SMTP_HOST", "127.0.0.1"),
            ("WEBSPLAT_SMTP_FROM", "no-reply@example.com"),
            ("WEBSPLAT_SMTP_TLS", "none"),
            ("WEBSPLAT_SMTP_PORT", "2525"),
        ])
        .expect("a relay on this machine");
        assert_eq!(local.smtp.map(|s| s.port), Some(2525));
    }
}
