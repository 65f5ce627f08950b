//! Sign-in cost figures (a harness that prints, not a test): how long a local sign-in's
//! password check takes for a wrong password on a real account and for an unknown e-mail.
//! The two should be the same, so the answer's timing cannot tell whether an account exists.
//!
//! It also prints the process's resident memory after 10 and after 200 more sign-ins (50
//! at once): argon2's memory belongs to the hasher's threads, so it must not grow.
//!
//! Run: `cargo bench -p platform --bench sign_in`

use std::time::{Duration, Instant};

use platform::auth::local::{Email, Password, Passwords};
use secrecy::SecretString;

const ROUNDS: usize = 30;

fn summarize(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let median = samples[samples.len() / 2];
    let p90 = samples[samples.len() * 9 / 10];
    println!(
        "{label:<34} mean {:>7.2} ms   median {:>7.2} ms   p90 {:>7.2} ms   ({} rounds)",
        mean.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        p90.as_secs_f64() * 1e3,
        samples.len()
    );
}

/// This process's resident memory, in MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let passwords = Passwords::new()?;
        let email = Email::parse("bench@example.com").map_err(|e| anyhow::anyhow!("{e}"))?;
        let real = Password::parse(
            SecretString::from("correct horse battery staple".to_owned()),
            &email,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let hash = passwords
            .hash(&real)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let wrong = SecretString::from("not the right password".to_owned());

        let measure = async |hash: Option<String>| -> anyhow::Result<Vec<Duration>> {
            let mut samples = Vec::with_capacity(ROUNDS);
            for _ in 0..ROUNDS {
                let started = Instant::now();
                let ok = passwords
                    .verify(&wrong, hash.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                samples.push(started.elapsed());
                anyhow::ensure!(!ok, "a wrong password verified");
            }
            Ok(samples)
        };
        // Interleave a warm-up of both paths before measuring.
        measure(Some(hash.clone())).await?;
        measure(None).await?;
        summarize(
            "wrong password, existing account",
            measure(Some(hash)).await?,
        );
        summarize("unknown e-mail (decoy hash)", measure(None).await?);

        // Memory: a burst of sign-ins (50 at once, as a script would send them) must leave
        // the process where a few left it.
        let burst = async |count: usize, at_once: usize| -> anyhow::Result<()> {
            for _ in 0..count.div_ceil(at_once) {
                let checks = (0..at_once).map(|_| passwords.verify(&wrong, None));
                for ok in futures_util::future::join_all(checks).await {
                    anyhow::ensure!(!ok.map_err(|e| anyhow::anyhow!("{e}"))?, "verified");
                }
            }
            Ok(())
        };
        let idle = rss_mib();
        burst(10, 10).await?;
        let after_ten = rss_mib();
        let started = Instant::now();
        burst(200, 50).await?;
        let took = started.elapsed();
        let after_two_hundred = rss_mib();
        println!(
            "resident memory: {idle:.1} MiB idle, {after_ten:.1} MiB after 10 sign-ins, {after_two_hundred:.1} MiB after 200 more ({:+.1} MiB; 200 took {:.2} s on {} hasher threads)",
            after_two_hundred - after_ten,
            took.as_secs_f64(),
            platform::auth::hasher::Hasher::threads_for_this_machine()
        );
        Ok(())
    })
}
