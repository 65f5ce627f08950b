//! Embeddings from the real all-MiniLM-L6-v2.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::helpers::TestServer;

fn vectors(answer: &Value) -> Vec<Vec<f32>> {
    answer["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .expect("a float array")
                .iter()
                .map(|x| x.as_f64().expect("a number") as f32)
                .collect()
        })
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn a_related_sentence_is_closer_than_an_unrelated_one() {
    let server = TestServer::spawn().await;
    let r = server
        .post(
            "/v1/embeddings",
            &json!({
                "model": "all-minilm-l6-v2",
                "input": [
                    "A cat sits on the mat.",
                    "A kitten is sitting on a rug.",
                    "Quarterly tax filings are due in April.",
                ],
            }),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("x-websplat-model")
            .and_then(|v| v.to_str().ok()),
        Some("local-small")
    );
    let answer: Value = r.json().await.expect("JSON");
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["model"], "all-minilm-l6-v2");
    let indexes: Vec<_> = answer["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["index"].as_u64())
        .collect();
    assert_eq!(indexes, [Some(0), Some(1), Some(2)]);
    let v = vectors(&answer);
    for vector in &v {
        assert_eq!(vector.len(), 384);
        let norm = dot(vector, vector).sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "unit length: {norm}");
    }
    // Unit vectors: the dot product is the cosine.
    let (related, unrelated) = (dot(&v[0], &v[1]), dot(&v[0], &v[2]));
    assert!(
        related > unrelated + 0.2,
        "related {related} vs unrelated {unrelated}"
    );
    let tokens = answer["usage"]["prompt_tokens"].as_u64().expect("usage");
    assert!(tokens > 15, "{answer}");
    assert_eq!(answer["usage"]["total_tokens"].as_u64(), Some(tokens));
}

#[tokio::test]
async fn a_single_string_gives_one_vector_in_float_or_base64() {
    let server = TestServer::spawn().await;
    let ask = |format: &str| json!({"model": "all-minilm-l6-v2", "input": "Hello there.", "encoding_format": format});
    let floats: Value = server
        .post("/v1/embeddings", &ask("float"))
        .await
        .json()
        .await
        .expect("JSON");
    let v = vectors(&floats);
    assert_eq!(v.len(), 1);
    let packed: Value = server
        .post("/v1/embeddings", &ask("base64"))
        .await
        .json()
        .await
        .expect("JSON");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(
            packed["data"][0]["embedding"]
                .as_str()
                .expect("base64 text"),
        )
        .expect("valid base64");
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(decoded.len(), 384);
    for (a, b) in decoded.iter().zip(&v[0]) {
        assert!((a - b).abs() < 1e-5);
    }
}
