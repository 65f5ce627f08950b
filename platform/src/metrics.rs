//! Prometheus metrics for what operators watch: requests by route and status with their
//! durations, sign-ins by provider and outcome, and authorization decisions by route. Labels are bounded: routes are the
//! router's patterns (never raw paths), providers come from configuration.

use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    sign_ins: IntCounterVec,
    authz_decisions: IntCounterVec,
    policy_reloads: prometheus::IntCounter,
}

/// How a sign-in attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum SignInOutcome {
    Success,
    Failure,
    RateLimited,
}

impl SignInOutcome {
    fn as_str(self) -> &'static str {
        match self {
            SignInOutcome::Success => "success",
            SignInOutcome::Failure => "failure",
            SignInOutcome::RateLimited => "rate_limited",
        }
    }
}

impl Metrics {
    pub fn new() -> anyhow::Result<Self> {
        let registry = Registry::new_custom(Some("websplat".to_owned()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests served, by route and status",
            ),
            &["method", "route", "status"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to serve an HTTP request, by route and status",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route", "status"],
        )?;
        let sign_ins = IntCounterVec::new(
            Opts::new(
                "sign_ins_total",
                "Sign-in attempts, by provider and outcome",
            ),
            &["provider", "outcome"],
        )?;
        let authz_decisions = IntCounterVec::new(
            Opts::new(
                "authz_decisions_total",
                "Authorization decisions, by route and result (allow or deny)",
            ),
            &["method", "route", "decision"],
        )?;
        let policy_reloads = prometheus::IntCounter::new(
            "authz_policy_reloads_total",
            "Times this replica rebuilt its enforcer from PostgreSQL",
        )?;
        registry.register(Box::new(authz_decisions.clone()))?;
        registry.register(Box::new(policy_reloads.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(sign_ins.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            request_duration,
            sign_ins,
            authz_decisions,
            policy_reloads,
        })
    }

    pub fn observe_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        let labels = [method, route, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.request_duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn sign_in(&self, provider: &str, outcome: SignInOutcome) {
        self.sign_ins
            .with_label_values(&[provider, outcome.as_str()])
            .inc();
    }

    pub fn authz_decision(&self, method: &str, route: &str, allowed: bool) {
        let decision = if allowed { "allow" } else { "deny" };
        self.authz_decisions
            .with_label_values(&[method, route, decision])
            .inc();
    }

    pub fn policy_reloaded(&self) {
        self.policy_reloads.inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> anyhow::Result<String> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8(buf)?)
    }
}
