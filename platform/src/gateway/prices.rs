//! The price table (`platform/prices.toml`, versioned in the repository and compiled in):
//! dollars per million tokens for input, output, cached input and reasoning, and a fee per
//! request, by provider kind and model. Costs are kept in billionths of a dollar (integers,
//! so sums are exact). It must never fail a call: an unknown model costs 0, logged.

use std::collections::HashMap;

use serde::Deserialize;

use super::usage::Usage;

const TABLE: &str = include_str!("../../prices.toml");

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Price {
    #[serde(default)]
    pub input: f64,
    #[serde(default)]
    pub output: f64,
    #[serde(default)]
    pub cached: Option<f64>,
    #[serde(default)]
    pub reasoning: Option<f64>,
    #[serde(default)]
    pub per_request: f64,
}

#[derive(Deserialize)]
struct Row {
    kind: String,
    model: String,
    #[serde(flatten)]
    price: Price,
}

#[derive(Deserialize)]
struct File {
    version: String,
    price: Vec<Row>,
}

pub struct Prices {
    pub version: String,
    table: HashMap<(String, String), Price>,
}

impl Prices {
    /// The compiled-in table; a malformed table is a build mistake, caught by its test.
    pub fn load() -> anyhow::Result<Self> {
        let file: File = toml::from_str(TABLE)?;
        Ok(Prices {
            version: file.version,
            table: file
                .price
                .into_iter()
                .map(|r| ((r.kind, r.model), r.price))
                .collect(),
        })
    }

    pub fn get(&self, kind: &str, model: &str) -> Option<Price> {
        self.table
            .get(&(kind.to_owned(), model.to_owned()))
            .copied()
    }

    /// What `usage` costs on `kind`'s `model`, in billionths of a dollar; the provider's
    /// own figure when it gave one.
    pub fn cost_nanos(&self, kind: &str, model: &str, usage: &Usage) -> i64 {
        if let Some(own) = usage.cost_nanos {
            return own;
        }
        let Some(p) = self.get(kind, model) else {
            return 0;
        };
        // Dollars per million tokens = thousandths of a nano-dollar... per token: ×1000.
        let per_token = |dollars_per_million: f64| dollars_per_million * 1000.0;
        let cached = usage.cached.min(usage.input);
        let reasoning = usage.reasoning.min(usage.output);
        let nanos = (usage.input - cached) as f64 * per_token(p.input)
            + cached as f64 * per_token(p.cached.unwrap_or(p.input))
            + (usage.output - reasoning) as f64 * per_token(p.output)
            + reasoning as f64 * per_token(p.reasoning.unwrap_or(p.output))
            + p.per_request * 1e9;
        nanos.round() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_loads_and_prices_every_part_of_a_call() {
        let prices = Prices::load().expect("prices.toml parses");
        assert!(!prices.version.is_empty());
        let usage = Usage {
            input: 1_000_000,
            output: 1_000_000,
            cached: 500_000,
            reasoning: 0,
            cost_nanos: None,
        };
        // gpt-4o-mini: 0.5M × 0.15 + 0.5M × 0.075 + 1M × 0.60 = 0.7125 dollars.
        assert_eq!(
            prices.cost_nanos("openai", "gpt-4o-mini", &usage),
            712_500_000
        );
        assert_eq!(prices.cost_nanos("openai", "no-such-model", &usage), 0);
        let own = Usage {
            cost_nanos: Some(42),
            ..usage
        };
        assert_eq!(prices.cost_nanos("openai", "gpt-4o-mini", &own), 42);
        // Perplexity's fee per request.
        let none = Usage::default();
        assert_eq!(prices.cost_nanos("perplexity", "sonar", &none), 5_000_000);
    }
}
