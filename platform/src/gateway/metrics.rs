//! The gateway's Prometheus metrics, in the platform's registry: calls, tokens, cost and
//! latency by provider and model (and outcome, so errors show), and the gateway's own
//! overhead as a histogram. Labels are bounded: providers and models come from the
//! configuration, outcomes are fixed words.

use std::time::Duration;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use super::ledger::Entry;

#[derive(Clone)]
pub struct GatewayMetrics {
    calls: IntCounterVec,
    tokens: IntCounterVec,
    cost: IntCounterVec,
    latency: HistogramVec,
    overhead: HistogramVec,
}

impl GatewayMetrics {
    pub fn new(metrics: &crate::metrics::Metrics) -> anyhow::Result<Self> {
        let calls = IntCounterVec::new(
            Opts::new(
                "ai_calls_total",
                "AI gateway calls, by provider, model, endpoint and outcome (ok, cut, cancelled, provider_error, refused)",
            ),
            &["provider", "model", "endpoint", "outcome"],
        )?;
        let tokens = IntCounterVec::new(
            Opts::new(
                "ai_tokens_total",
                "Tokens metered by the AI gateway, by provider, model and direction (input, output)",
            ),
            &["provider", "model", "direction"],
        )?;
        let cost = IntCounterVec::new(
            Opts::new(
                "ai_cost_nanodollars_total",
                "Cost of AI calls in billionths of a US dollar, by provider and model",
            ),
            &["provider", "model"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "ai_call_duration_seconds",
                "AI calls from arrival to their last byte, by provider, model and outcome",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
            &["provider", "model", "outcome"],
        )?;
        let overhead = HistogramVec::new(
            HistogramOpts::new("ai_gateway_overhead_seconds", "Time the gateway itself adds to a call (authentication, budget, routing, relaying), by endpoint")
                .buckets(vec![0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1]),
            &["endpoint"],
        )?;
        let registry = metrics.registry();
        registry.register(Box::new(calls.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(cost.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(overhead.clone()))?;
        Ok(GatewayMetrics {
            calls,
            tokens,
            cost,
            latency,
            overhead,
        })
    }

    pub fn call(&self, e: &Entry) {
        let (p, m) = (e.provider.as_str(), e.model.as_str());
        self.calls
            .with_label_values(&[p, m, e.endpoint, e.outcome])
            .inc();
        self.tokens
            .with_label_values(&[p, m, "input"])
            .inc_by(e.tokens_in.max(0) as u64);
        self.tokens
            .with_label_values(&[p, m, "output"])
            .inc_by(e.tokens_out.max(0) as u64);
        self.cost
            .with_label_values(&[p, m])
            .inc_by(e.cost_nanos.max(0) as u64);
        self.latency
            .with_label_values(&[p, m, e.outcome])
            .observe(f64::from(e.latency_ms) / 1000.0);
    }

    pub fn overhead(&self, endpoint: &str, overhead: Duration) {
        self.overhead
            .with_label_values(&[endpoint])
            .observe(overhead.as_secs_f64());
    }
}
