//! Prometheus metrics for what operators watch: requests by route and status with their
//! durations, sign-ins by provider and outcome, authorization decisions by route, and the
//! workspaces: spawn durations, failures by reason, tenants by state, proxy durations.
//! Labels are bounded: routes are the router's patterns (never raw paths), providers come
//! from configuration, failure reasons and states are fixed words.

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
    spawn_duration: HistogramVec,
    tenant_failures: IntCounterVec,
    tenants: prometheus::IntGaugeVec,
    proxy_duration: HistogramVec,
    proxy_refused: IntCounterVec,
    pools: PoolMetrics,
}

/// Per pool: its capacity and what it is doing (gauges set at scrape time from
/// PostgreSQL), and how long starts waited in its queue; and where each start's time goes.
#[derive(Clone)]
struct PoolMetrics {
    capacity: prometheus::IntGaugeVec,
    running: prometheus::IntGaugeVec,
    starting: prometheus::IntGaugeVec,
    queued: prometheus::IntGaugeVec,
    warm: prometheus::IntGaugeVec,
    warm_returning: prometheus::IntGaugeVec,
    pre_created: prometheus::IntGaugeVec,
    queue_wait: HistogramVec,
    start_steps: HistogramVec,
    machine_unavailable: IntCounterVec,
}

impl PoolMetrics {
    fn new(registry: &Registry) -> anyhow::Result<Self> {
        let gauge = |name: &str, help: &str| -> anyhow::Result<prometheus::IntGaugeVec> {
            let g = prometheus::IntGaugeVec::new(Opts::new(name, help), &["pool"])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let queue_wait = HistogramVec::new(
            HistogramOpts::new(
                "pool_queue_wait_seconds",
                "Time starts waited in their pool's queue before they could start, by pool",
            )
            .buckets(vec![
                0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
            &["pool"],
        )?;
        registry.register(Box::new(queue_wait.clone()))?;
        let start_steps = HistogramVec::new(
            HistogramOpts::new(
                "tenant_start_step_seconds",
                "Time each step of a workspace start took (admission, create, start, claim, healthy), by the kind of start",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["kind", "step"],
        )?;
        registry.register(Box::new(start_steps.clone()))?;
        let machine_unavailable = IntCounterVec::new(
            Opts::new(
                "pool_machine_unavailable_total",
                "Starts refused because the machine holding the workspace's data is down or drained (alert on any increase), by pool",
            ),
            &["pool"],
        )?;
        registry.register(Box::new(machine_unavailable.clone()))?;
        Ok(PoolMetrics {
            machine_unavailable,
            capacity: gauge(
                "pool_capacity",
                "Workspaces a pool may run, start or queue at once (its max_running)",
            )?,
            running: gauge("pool_running", "Workspaces ready and serving, by pool")?,
            starting: gauge("pool_starting", "Workspaces on their way up, by pool")?,
            queued: gauge("pool_queued", "Starts waiting in the pool's queue")?,
            warm: gauge(
                "pool_warm",
                "Warm runtimes for first sign-ins, started and unclaimed (or on their way), by pool",
            )?,
            warm_returning: gauge(
                "pool_warm_returning",
                "Returning people's next containers, started and unclaimed (or on their way), by pool",
            )?,
            pre_created: gauge(
                "pool_pre_created",
                "Returning people's next containers, made and never started, by pool",
            )?,
            queue_wait,
            start_steps,
        })
    }
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
    /// The registry, for a capability that keeps metrics of its own (the AI gateway).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

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
        let spawn_duration = HistogramVec::new(
            HistogramOpts::new(
                "tenant_spawn_duration_seconds",
                "Time from a workspace's request to ready (or to its failure), by outcome",
            )
            .buckets(vec![
                0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0, 60.0,
            ]),
            &["outcome"],
        )?;
        let tenant_failures = IntCounterVec::new(
            Opts::new(
                "tenant_failures_total",
                "Workspaces that failed or were refused, by reason (create, start, timeout, crashed, oom, lost, interrupted, at_capacity…)",
            ),
            &["reason"],
        )?;
        let tenants = prometheus::IntGaugeVec::new(
            Opts::new(
                "tenants",
                "Workspaces by the lifecycle state of their latest tenant (from PostgreSQL, at scrape time)",
            ),
            &["state"],
        )?;
        let proxy_duration = HistogramVec::new(
            HistogramOpts::new(
                "proxy_request_duration_seconds",
                "Time to the response head of requests proxied to workspaces, by method and status class",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["method", "status"],
        )?;
        registry.register(Box::new(spawn_duration.clone()))?;
        registry.register(Box::new(tenant_failures.clone()))?;
        registry.register(Box::new(tenants.clone()))?;
        let proxy_refused = IntCounterVec::new(
            Opts::new(
                "proxy_refused_total",
                "Requests the workspace proxy turned away or handled apart, by reason (client_rate, requests_or_rate, websockets, body_timeout, stale_route_retried, stale_route_replaced)",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(proxy_duration.clone()))?;
        registry.register(Box::new(proxy_refused.clone()))?;
        let pools = PoolMetrics::new(&registry)?;
        Ok(Metrics {
            pools,
            spawn_duration,
            tenant_failures,
            tenants,
            proxy_duration,
            proxy_refused,
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

    pub fn tenant_spawned(&self, outcome: &str, elapsed: Duration) {
        self.spawn_duration
            .with_label_values(&[outcome])
            .observe(elapsed.as_secs_f64());
    }

    /// A start that waited `waited` in `pool`'s queue left it.
    pub fn queue_waited(&self, pool: &str, waited: Duration) {
        self.pools
            .queue_wait
            .with_label_values(&[pool])
            .observe(waited.as_secs_f64());
    }

    /// One step of a start of `kind` (cold, warm_new, returning_warm, returning_made) took
    /// `elapsed`.
    pub fn start_step(&self, kind: &str, step: &str, elapsed: Duration) {
        self.pools
            .start_steps
            .with_label_values(&[kind, step])
            .observe(elapsed.as_secs_f64());
    }

    /// A pool's capacity and figures, as read at scrape time.
    pub fn pool(&self, pool: &str, capacity: i64, figures: &crate::pools::Figures) {
        let (running, starting, queued) = (figures.running, figures.starting, figures.queued);
        let p = &self.pools;
        p.warm.with_label_values(&[pool]).set(figures.warm);
        p.warm_returning
            .with_label_values(&[pool])
            .set(figures.warm_returning);
        p.pre_created
            .with_label_values(&[pool])
            .set(figures.pre_created);
        p.capacity.with_label_values(&[pool]).set(capacity);
        p.running.with_label_values(&[pool]).set(running);
        p.starting.with_label_values(&[pool]).set(starting);
        p.queued.with_label_values(&[pool]).set(queued);
    }

    /// A start refused because its workspace's machine is down or drained.
    pub fn machine_unavailable(&self, pool: &str) {
        self.pools
            .machine_unavailable
            .with_label_values(&[pool])
            .inc();
    }

    pub fn tenant_failed(&self, reason: &str) {
        self.tenant_failures.with_label_values(&[reason]).inc();
    }

    pub fn tenants_in_state(&self, state: &str, count: i64) {
        self.tenants.with_label_values(&[state]).set(count);
    }

    pub fn proxy_refused(&self, reason: &str) {
        self.proxy_refused.with_label_values(&[reason]).inc();
    }

    pub fn proxied(&self, method: &str, status: u16, elapsed: Duration) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
            _ => "other",
        };
        self.proxy_duration
            .with_label_values(&[method, class])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(&self) -> anyhow::Result<String> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8(buf)?)
    }
}
