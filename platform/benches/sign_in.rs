//! Sign-in cost figures (a harness that prints, not a test): how long a local sign-in's
//! password check takes for a wrong password on a real account and for an unknown e-mail.
//! The two should be the same, so the answer's timing cannot tell whether an account exists.
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
        Ok(())
    })
}
