//! The cost of one authorization decision on the hot path (a harness that prints, not a
//! test): `Policy::decide` — the read lock, casbin's decision cache, and on a miss the model's
//! matcher over the default policy plus one role grant per user.
//!
//! Run: `cargo bench -p platform --bench authz`

use std::sync::Arc;
use std::time::{Duration, Instant};

use platform::authz::Policy;
use platform::authz::adapter::DEFAULT_POLICY;

/// Users with a role grant each, as a large deployment would have.
const USERS: usize = 10_000;
const DECISIONS: usize = 200_000;

fn report(label: &str, mut samples: Vec<Duration>, total: Duration) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{label:<44} mean {:>8.2} µs   p50 {:>8.2} µs   p99 {:>8.2} µs   {:>10.0} decisions/s",
        total.as_secs_f64() * 1e6 / samples.len() as f64,
        pick(0.5).as_secs_f64() * 1e6,
        pick(0.99).as_secs_f64() * 1e6,
        samples.len() as f64 / total.as_secs_f64(),
    );
}

/// Times `n` decisions made by `ask(i)`; returns each one's time and the whole.
fn measure(n: usize, ask: impl Fn(usize) -> bool) -> (Vec<Duration>, Duration) {
    let mut samples = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        std::hint::black_box(ask(i));
        samples.push(t.elapsed());
    }
    (samples, started.elapsed())
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let roles = ["operator", "auditor", "admin"];
    let mut csv = String::from(DEFAULT_POLICY);
    for i in 0..USERS {
        csv.push_str(&format!("g, user:{i}, {}\n", roles[i % roles.len()]));
    }
    let loading = Instant::now();
    let policy = Arc::new(runtime.block_on(Policy::from_csv(&csv))?);
    println!(
        "policy: default rules + {USERS} role grants, loaded in {:.0} ms",
        loading.elapsed().as_secs_f64() * 1e3
    );

    // The same member asking for their own account again and again: a cache hit.
    let (s, t) = measure(DECISIONS, |_| {
        policy.decide("user:member", "/api/v1/me", "GET", "user:member")
    });
    report("cached: member GET /api/v1/me", s, t);

    // A different owner every time: a cache miss, the matcher runs.
    let (s, t) = measure(20_000, |i| {
        let owner = format!("user:m{i}");
        policy.decide(&owner, "/api/v1/tokens/{id}", "DELETE", &owner)
    });
    report("uncached: member DELETE own token", s, t);

    let (s, t) = measure(20_000, |i| {
        policy.decide(
            &format!("user:{}", i % USERS),
            "/api/v1/admin/audit",
            "GET",
            &format!("o{i}"),
        )
    });
    report("uncached: role holder GET /api/v1/admin/audit", s, t);

    let (s, t) = measure(20_000, |i| {
        policy.decide(&format!("user:x{i}"), "/api/v1/admin/users", "GET", "")
    });
    report("uncached: member refused an admin route", s, t);

    // Two threads deciding at once share the read lock.
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|k| {
            let policy = Arc::clone(&policy);
            std::thread::spawn(move || {
                measure(DECISIONS / 2, |i| {
                    let sub = format!("user:{}", (i + k) % 64);
                    policy.decide(&sub, "/api/v1/me", "GET", &sub)
                })
                .0
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        all.extend(t.join().map_err(|_| anyhow::anyhow!("a thread panicked"))?);
    }
    report(
        "2 threads, 64 members, mostly cached",
        all,
        started.elapsed(),
    );
    Ok(())
}
