//! `scripts/bench models`: how fast the local model is on this machine (release build).
//! Prints tokens/s reading a prompt and generating, embeddings/s through the real HTTP
//! server, and the resident memory of the process with both models loaded and serving.
//! Figures, not a test: nothing here passes or fails.

use std::time::{Duration, Instant};

use serde_json::json;
use websplat_models::{ChatMessage, ChatModel, GenerationParams, ModelsConfig};

fn models_dir() -> std::path::PathBuf {
    let dir = std::env::var("WEBSPLAT_MODELS_DIR").unwrap_or_else(|_| ".data/models".to_owned());
    std::path::PathBuf::from(dir)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn generation(model: &ChatModel) -> anyhow::Result<()> {
    let story = "The harbour town wakes before dawn. Fishermen check their nets, bakers light \
                 their ovens, and the lighthouse keeper climbs down after a long night. ";
    let messages = [ChatMessage {
        role: "user".into(),
        content: format!("{}\nWrite a short story about this town.", story.repeat(6)),
    }];
    let prompt = model.encode(&messages)?;
    let runs = 3;
    let (mut prompt_time, mut generation_time, mut prompt_tokens, mut generated) =
        (Duration::ZERO, Duration::ZERO, 0, 0);
    let mut session = model.session();
    for run in 0..=runs {
        let params = GenerationParams {
            max_tokens: 128,
            temperature: 0.7,
            top_p: Some(0.9),
            seed: run as u64,
            stop: Vec::new(),
        };
        let out = session.generate(&prompt, &params, |_| true)?;
        if run == 0 {
            continue; // warm-up
        }
        prompt_time += out.prompt_time;
        generation_time += out.generation_time;
        prompt_tokens += prompt.len();
        // The first token comes out of reading the prompt.
        generated += out.completion_tokens.saturating_sub(1);
    }
    println!(
        "chat  prompt processing: {:>7.1} tokens/s  ({} prompt tokens, {runs} runs)",
        prompt_tokens as f64 / prompt_time.as_secs_f64(),
        prompt.len()
    );
    println!(
        "chat  generation:        {:>7.1} tokens/s  ({generated} tokens, {runs} runs)",
        generated as f64 / generation_time.as_secs_f64()
    );
    Ok(())
}

async fn embeddings_over_http() -> anyhow::Result<()> {
    let server = websplat_models::spawn(ModelsConfig::for_tests(models_dir())).await?;
    println!(
        "server resident memory, both models loaded: {:.0} MiB",
        rss_mib()
    );
    let url = format!("http://{}/v1/embeddings", server.address);
    let client = reqwest::Client::new();
    let sentences: Vec<String> = (0..32)
        .map(|i| format!("Sentence number {i} is about the harbour town and its lighthouse."))
        .collect();
    let body = json!({"model": "all-minilm-l6-v2", "input": sentences});
    client
        .post(&url)
        .json(&body)
        .send()
        .await?
        .error_for_status()?;
    let requests = 10;
    let started = Instant::now();
    for _ in 0..requests {
        client
            .post(&url)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
    }
    let elapsed = started.elapsed();
    println!(
        "embeddings over HTTP:    {:>7.1} texts/s   (batches of 32 sentences of ~14 tokens)",
        (requests * 32) as f64 / elapsed.as_secs_f64()
    );
    let single = json!({"model": "all-minilm-l6-v2", "input": "A cat sits on the mat."});
    let started = Instant::now();
    for _ in 0..50 {
        client
            .post(&url)
            .json(&single)
            .send()
            .await?
            .error_for_status()?;
    }
    println!(
        "embeddings over HTTP:    {:>7.1} requests/s (one sentence each)",
        50.0 / started.elapsed().as_secs_f64()
    );
    println!(
        "server resident memory after the runs: {:.0} MiB",
        rss_mib()
    );
    server.stop().await;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let dir = models_dir();
    println!(
        "local model benchmark ({} cores, models from {})",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        dir.display()
    );
    let started = Instant::now();
    let model = ChatModel::load(&dir)?;
    println!("chat  load: {:.2} s", started.elapsed().as_secs_f64());
    generation(&model)?;
    drop(model);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(embeddings_over_http())
}
