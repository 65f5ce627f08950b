//! Streamed answers, relayed as they arrive and metered on the way: each provider's stream
//! goes through a [`Translate`] (the identity for OpenAI-compatible providers; a
//! translation to OpenAI's chunks for the others) that also reads its usage. When the
//! stream ends, breaks or the client goes away, the call is closed once ([`CallRecord::close`]):
//! the budget is settled to what was used (what was generated so far, estimated from the
//! text sent, when a cut stream never reported usage; never 0) and the ledger row written.
//! A stream the provider breaks off ends with an explicit error event, never a clean end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::web::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, Stream, StreamExt};

use super::Gateway;
use super::budget::Reservation;
use super::error::GatewayError;
use super::ledger::{self, Outcome};
use super::usage::{Usage, estimate_tokens};
use crate::users::UserId;

/// Turns a provider's stream into OpenAI's `chat.completion.chunk` events, noting usage.
pub trait Translate: Send {
    /// Upstream bytes in; the bytes to send the client out.
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8>;
    /// As [`Translate::feed`], for a chunk as it came: a translator that sends what it
    /// reads unchanged hands the same bytes on, never a copy.
    fn relay(&mut self, chunk: Bytes) -> Bytes {
        Bytes::from(self.feed(&chunk))
    }
    /// What is left to send once the provider's stream ended.
    fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
    /// Usage, once the provider reported it.
    fn usage(&self) -> Option<Usage>;
    /// Bytes of generated text (and tool arguments) seen so far.
    fn output_bytes(&self) -> usize;
    /// Whether the provider said the answer is complete.
    fn complete(&self) -> bool;
}

/// Splits a byte stream into lines (`\n`, with an optional `\r`), across chunk boundaries.
#[derive(Default)]
pub struct Lines {
    buffer: Vec<u8>,
}

impl Lines {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line);
            lines.push(text.trim_end_matches(['\n', '\r']).to_owned());
        }
        // A line never grows without bound: a provider cannot make us buffer forever.
        if self.buffer.len() > 4 * 1024 * 1024 {
            self.buffer.clear();
        }
        lines
    }

    /// The JSON events of the complete `data:` lines in `chunk` (server-sent events), in
    /// order; other lines and data that is not JSON (`[DONE]`) are skipped.
    pub fn feed_sse_json(&mut self, chunk: &[u8]) -> Vec<serde_json::Value> {
        self.feed(chunk)
            .iter()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect()
    }
}

/// Everything the ledger and the budget need about one call, closed exactly once.
pub struct CallRecord {
    pub user: UserId,
    pub endpoint: &'static str,
    pub provider: String,
    pub kind: &'static str,
    pub model: String,
    pub alias: Option<String>,
    pub streamed: bool,
    pub reservation: Reservation,
    /// The estimate of the input, billed when the provider reported no usage.
    pub estimated_input: i64,
    pub started: Instant,
    pub started_at: DateTime<Utc>,
    pub request_id: String,
}

impl CallRecord {
    /// Settles the budget to `usage` and writes the ledger row (handed to the ledger's
    /// writer at once, so it is never lost to a task not yet run). Never fails the call: a
    /// failure here is logged.
    pub async fn close(self, gw: &Gateway, outcome: Outcome, usage: Usage, error: Option<String>) {
        let reservation = self.record(gw, outcome, usage, error);
        if let Err(e) = gw.budget.settle(&reservation, usage.tokens()).await {
            tracing::error!(error = %e, "cannot settle an AI budget reservation");
        }
    }

    /// Closes a call no provider served (refused, or failed) with nothing used, and hands
    /// back its error for the caller.
    pub async fn close_failed(self, gw: &Gateway, error: GatewayError) -> GatewayError {
        let outcome = match error {
            GatewayError::ProviderRefused { .. } => Outcome::Refused,
            _ => Outcome::ProviderError,
        };
        self.close(gw, outcome, Usage::default(), Some(error.to_string()))
            .await;
        error
    }

    /// Writes the ledger row and the metrics; what is left is to settle the reservation.
    fn record(
        self,
        gw: &Gateway,
        outcome: Outcome,
        usage: Usage,
        error: Option<String>,
    ) -> Reservation {
        let cost = gw.prices.cost_nanos(self.kind, &self.model, &usage);
        let entry = ledger::Entry {
            user_id: self.user,
            endpoint: self.endpoint,
            provider: self.provider,
            model: self.model,
            alias: self.alias,
            streamed: self.streamed,
            tokens_in: usage.input,
            tokens_out: usage.output,
            tokens_cached: usage.cached,
            cost_nanos: cost.max(0),
            latency_ms: i32::try_from(self.started.elapsed().as_millis()).unwrap_or(i32::MAX),
            outcome: outcome.as_str(),
            error,
            started_at: self.started_at,
            ended_at: Utc::now(),
        };
        gw.metrics_observe(&entry);
        gw.ledger.write(entry);
        tracing::info!(request_id = %self.request_id, outcome = outcome.as_str(), tokens = usage.tokens(), "AI call metered");
        self.reservation
    }

    /// What a call used when the provider did not say: the input as estimated, the output
    /// from the text it sent.
    pub fn estimate(&self, output_bytes: usize) -> Usage {
        Usage {
            input: self.estimated_input,
            output: if output_bytes == 0 {
                0
            } else {
                estimate_tokens(output_bytes)
            },
            ..Usage::default()
        }
    }
}

/// A provider's stream on its way to the client.
pub struct Metered {
    gw: Arc<Gateway>,
    first: Option<Bytes>,
    rest: BoxStream<'static, reqwest::Result<Bytes>>,
    translate: Box<dyn Translate>,
    record: Option<CallRecord>,
    ended: bool,
}

impl Metered {
    pub fn new(
        gw: Arc<Gateway>,
        first: Bytes,
        rest: BoxStream<'static, reqwest::Result<Bytes>>,
        translate: Box<dyn Translate>,
        record: CallRecord,
    ) -> Self {
        Metered {
            gw,
            first: Some(first),
            rest,
            translate,
            record: Some(record),
            ended: false,
        }
    }

    fn close(&mut self, outcome: Outcome, error: Option<String>) {
        let Some(record) = self.record.take() else {
            return;
        };
        let usage = match self.translate.usage() {
            // A usage report is final; a cut stream's text may have gone past it.
            Some(u) => u,
            None => record.estimate(self.translate.output_bytes()),
        };
        let reservation = record.record(&self.gw, outcome, usage, error);
        let gw = self.gw.clone();
        tokio::spawn(async move {
            if let Err(e) = gw.budget.settle(&reservation, usage.tokens()).await {
                tracing::error!(error = %e, "cannot settle an AI budget reservation");
            }
        });
    }

    fn error_event(&self, message: &str) -> Bytes {
        let request_id = self
            .record
            .as_ref()
            .map(|r| r.request_id.clone())
            .unwrap_or_default();
        let body = serde_json::json!({"error": {
            "code": "provider_error",
            "message": message,
            "request_id": request_id,
        }});
        Bytes::from(format!("data: {body}\n\n"))
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(first) = this.first.take() {
            let out = this.translate.relay(first);
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(out)));
            }
        }
        loop {
            match this.rest.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    let out = this.translate.relay(chunk);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.ended = true;
                    tracing::warn!(error = %e, "a provider's stream broke off");
                    let mut out = this.translate.finish();
                    let event = this.error_event(
                        "the AI provider broke off this answer midway; it is incomplete",
                    );
                    out.extend_from_slice(&event);
                    this.close(Outcome::Cut, Some("the stream broke off".to_owned()));
                    return Poll::Ready(Some(Ok(Bytes::from(out))));
                }
                Poll::Ready(None) => {
                    this.ended = true;
                    let mut out = this.translate.finish();
                    if this.translate.complete() {
                        this.close(Outcome::Ok, None);
                    } else {
                        let event = this.error_event(
                            "the AI provider ended this answer before it was complete",
                        );
                        out.extend_from_slice(&event);
                        this.close(Outcome::Cut, Some("the stream ended early".to_owned()));
                    }
                    return if out.is_empty() {
                        Poll::Ready(None)
                    } else {
                        Poll::Ready(Some(Ok(Bytes::from(out))))
                    };
                }
            }
        }
    }
}

impl Drop for Metered {
    /// The client went away before the end: billed for what was generated.
    fn drop(&mut self) {
        if self.record.is_some() {
            self.close(Outcome::Cancelled, Some("the client went away".to_owned()));
        }
    }
}
