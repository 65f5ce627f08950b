//! The inference pool: a fixed number of threads that run the models, fed by a bounded
//! queue. HTTP workers only enqueue and await; when the queue is full the request is
//! refused at once (503) instead of piling up. A chat job streams its text back over a
//! channel and stops as soon as that channel's receiver is gone (the client left).
//!
//! Never run inference anywhere else: an async executor blocked for seconds stops serving.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::chat::{ChatModel, Generated, GenerationParams};
use crate::embed::Embedder;
use crate::metrics::metrics;

/// What a chat job sends back, in order: pieces of text, then one end.
#[derive(Debug)]
pub enum ChatEvent {
    Text(String),
    Done(Generated),
    Failed(String),
}

pub struct ChatJob {
    pub prompt: Vec<u32>,
    pub params: GenerationParams,
    pub events: mpsc::Sender<ChatEvent>,
}

pub struct EmbedJob {
    pub texts: Vec<String>,
    pub reply: oneshot::Sender<Result<Vec<Vec<f32>>, String>>,
}

enum Job {
    Chat(ChatJob),
    Embed(EmbedJob),
}

/// The queue is full: try again shortly.
#[derive(Debug, thiserror::Error)]
#[error("the local model is busy: {waiting} requests are already waiting")]
pub struct Busy {
    pub waiting: usize,
}

/// The models and the threads that run them.
pub struct InferencePool {
    sender: SyncSender<Job>,
    waiting: Arc<AtomicUsize>,
}

impl InferencePool {
    /// Starts `workers` threads over the shared models; `queue` jobs may wait.
    pub fn start(
        chat: Arc<ChatModel>,
        embedder: Arc<Embedder>,
        workers: usize,
        queue: usize,
    ) -> anyhow::Result<Self> {
        let (sender, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let waiting = Arc::new(AtomicUsize::new(0));
        for n in 0..workers {
            let (chat, embedder, receiver, waiting) = (
                chat.clone(),
                embedder.clone(),
                receiver.clone(),
                waiting.clone(),
            );
            std::thread::Builder::new()
                .name(format!("models-inference-{n}"))
                .spawn(move || worker(&chat, &embedder, &receiver, &waiting))?;
        }
        Ok(Self { sender, waiting })
    }

    /// Jobs queued and not yet taken by a worker.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn submit_chat(&self, job: ChatJob) -> Result<(), Busy> {
        self.submit(Job::Chat(job))
    }

    pub fn submit_embed(&self, job: EmbedJob) -> Result<(), Busy> {
        self.submit(Job::Embed(job))
    }

    fn submit(&self, job: Job) -> Result<(), Busy> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                let waiting = self.waiting.fetch_sub(1, Ordering::Relaxed) - 1;
                Err(Busy { waiting })
            }
        }
    }
}

fn worker(
    chat: &ChatModel,
    embedder: &Embedder,
    receiver: &Mutex<Receiver<Job>>,
    waiting: &AtomicUsize,
) {
    let mut session = chat.session();
    loop {
        let job = {
            let Ok(receiver) = receiver.lock() else {
                return;
            };
            match receiver.recv() {
                Ok(job) => job,
                // The pool is gone: the server stopped.
                Err(_) => return,
            }
        };
        waiting.fetch_sub(1, Ordering::Relaxed);
        match job {
            // The client left while the job waited: nothing to generate for.
            Job::Chat(job) if job.events.is_closed() => metrics().cancelled(),
            Job::Chat(job) => {
                let events = job.events.clone();
                let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    session.generate(&job.prompt, &job.params, |text| {
                        // Fails only when the receiver is gone: the client left.
                        job.events
                            .blocking_send(ChatEvent::Text(text.to_owned()))
                            .is_ok()
                    })
                }));
                let end = match result {
                    Ok(Ok(generated)) => {
                        metrics().tokens(generated.completion_tokens);
                        if generated.finish_reason.is_none() {
                            metrics().cancelled();
                            tracing::info!(
                                completion_tokens = generated.completion_tokens,
                                "the client went away; generation stopped"
                            );
                        }
                        ChatEvent::Done(generated)
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = ?e, "generation failed");
                        ChatEvent::Failed(e.to_string())
                    }
                    Err(_) => {
                        tracing::error!("generation panicked");
                        // The KV cache may be half-written; a fresh session starts clean.
                        session = chat.session();
                        ChatEvent::Failed("the model failed on this input".to_owned())
                    }
                };
                let _ = events.blocking_send(end);
            }
            Job::Embed(job) => {
                let result =
                    std::panic::catch_unwind(AssertUnwindSafe(|| embedder.embed(&job.texts)));
                let answer = match result {
                    Ok(Ok(vectors)) => Ok(vectors),
                    Ok(Err(e)) => {
                        tracing::error!(error = ?e, "embedding failed");
                        Err(e.to_string())
                    }
                    Err(_) => {
                        tracing::error!("embedding panicked");
                        Err("the model failed on this input".to_owned())
                    }
                };
                let _ = job.reply.send(answer);
            }
        }
    }
}
