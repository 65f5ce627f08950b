//! Outgoing mail through the configured SMTP server (`WEBSPLAT_SMTP_*`), with `lettre`
//! (rustls, no native TLS, no connection pool: a few messages a minute need none). Used by
//! registration: the verification link, and the notice to an address's owner that someone
//! tried to register with it. Sending happens off the request's path (the answer must not
//! take longer when a mail goes out, or registration would tell which addresses exist).
//! Never logs a message's body: it holds a one-time link.

use std::sync::Arc;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use prometheus::{IntCounterVec, Opts, Registry};
use secrecy::ExposeSecret;
use tracing::Instrument;

use crate::config::{SmtpConfig, SmtpTls};

/// What a message is for (a bounded label of the metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The link that confirms a new account's address.
    Verification,
    /// "Someone tried to register with your address."
    RegistrationAttempt,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Verification => "verification",
            Kind::RegistrationAttempt => "registration_attempt",
        }
    }
}

/// One message to send.
pub struct Mail {
    pub kind: Kind,
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    sent: IntCounterVec,
}

impl Mailer {
    /// A mailer for `config`; registers `websplat_mail_sent_total{kind,outcome}`.
    pub fn new(config: &SmtpConfig, registry: &Registry) -> anyhow::Result<Arc<Self>> {
        let builder = match config.tls {
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)?,
            SmtpTls::StartTls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)?
            }
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host),
        };
        let mut builder = builder.port(config.port).timeout(Some(config.timeout));
        if let Some((user, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        let sent = IntCounterVec::new(
            Opts::new(
                "mail_sent_total",
                "Mail handed to the SMTP server, by kind and outcome (sent, failed)",
            ),
            &["kind", "outcome"],
        )?;
        registry.register(Box::new(sent.clone()))?;
        Ok(Arc::new(Mailer {
            transport: builder.build(),
            from: config.from.parse()?,
            sent,
        }))
    }

    /// Sends one message now.
    pub async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let kind = mail.kind;
        let result = async {
            let message = Message::builder()
                .from(self.from.clone())
                .to(mail.to.parse()?)
                .subject(mail.subject)
                .header(ContentType::TEXT_PLAIN)
                .body(mail.body)?;
            self.transport.send(message).await?;
            Ok::<_, anyhow::Error>(())
        }
        .instrument(tracing::info_span!("smtp.send", kind = kind.as_str()))
        .await;
        let outcome = if result.is_ok() { "sent" } else { "failed" };
        self.sent.with_label_values(&[kind.as_str(), outcome]).inc();
        result
    }

    /// Sends in the background; a failure is logged (never the body) and counted.
    pub fn send_in_background(self: &Arc<Self>, mail: Mail) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let kind = mail.kind.as_str();
            if let Err(e) = this.send(mail).await {
                tracing::warn!(kind, error = %e, "a mail could not be sent");
            }
        });
    }
}
