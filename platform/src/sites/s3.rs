//! A small client for an S3-compatible bucket, enough for published sites: put an object,
//! get one, list a prefix, delete one — each request signed with AWS Signature Version 4,
//! written here over the `reqwest` client the platform already has (`hmac` and `sha2` are
//! already in the build), addressed path-style so any S3-compatible store answers it.
//! Why not a crate: `aws-sdk-s3` alone would add minutes to a cold build on two cores, and
//! four requests need no more than the signature below. The secret key stays a
//! `SecretString`: it is only ever read to derive a signing key, never logged.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use prometheus::{HistogramOpts, HistogramVec};
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::S3Config;

/// What went wrong talking to the bucket (the request, never a credential).
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("the bucket cannot be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
    #[error("the bucket answered {status} to {method} {key}: {body}")]
    Refused {
        method: Method,
        key: String,
        status: StatusCode,
        body: String,
    },
}

pub struct S3 {
    config: S3Config,
    client: reqwest::Client,
    /// `websplat_sites_bucket_request_duration_seconds{op, outcome}` (its count is the
    /// number of requests), for operators watching the bucket.
    requests: Option<HistogramVec>,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3").field("config", &self.config).finish()
    }
}

/// The signed parts of a request.
struct Signed {
    url: String,
    headers: Vec<(&'static str, String)>,
}

impl S3 {
    /// A client for the bucket; with a registry, its requests are measured there.
    pub fn new(config: S3Config, registry: Option<&prometheus::Registry>) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()?;
        let requests = match registry {
            Some(registry) => {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "sites_bucket_request_duration_seconds",
                        "Requests to the published sites' S3-compatible bucket, by operation (put, get, head, list, delete) and outcome (ok, not_found, refused, unreachable)",
                    )
                    .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                    &["op", "outcome"],
                )?;
                registry.register(Box::new(h.clone()))?;
                Some(h)
            }
            None => None,
        };
        Ok(S3 {
            config,
            client,
            requests,
        })
    }

    fn observe(&self, op: &str, started: Instant, outcome: &str) {
        if let Some(h) = &self.requests {
            h.with_label_values(&[op, outcome])
                .observe(started.elapsed().as_secs_f64());
        }
    }

    /// The outcome label of an answer (or of no answer).
    fn measured(
        &self,
        op: &str,
        started: Instant,
        answer: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<reqwest::Response, S3Error> {
        let outcome = match &answer {
            Ok(a) if a.status().is_success() => "ok",
            Ok(a) if a.status() == StatusCode::NOT_FOUND => "not_found",
            Ok(_) => "refused",
            Err(_) => "unreachable",
        };
        self.observe(op, started, outcome);
        Ok(answer?)
    }

    /// Stores `body` at `key`.
    #[tracing::instrument(name = "s3.put", skip(self, body), fields(bytes = body.len()))]
    pub async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), S3Error> {
        let signed = self.sign(&Method::PUT, key, &[], &body, Utc::now());
        let mut request = self
            .client
            .put(&signed.url)
            .header("content-type", content_type);
        for (name, value) in signed.headers {
            request = request.header(name, value);
        }
        let started = Instant::now();
        let answer = self.measured("put", started, request.body(body).send().await)?;
        expect_success(Method::PUT, key, answer).await.map(drop)
    }

    /// The object at `key`, or `None` when there is none.
    #[tracing::instrument(name = "s3.get", skip(self))]
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
        let answer = self.send("get", Method::GET, key, &[]).await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let answer = expect_success(Method::GET, key, answer).await?;
        Ok(Some(answer.bytes().await?.to_vec()))
    }

    /// Whether there is an object at `key`.
    #[tracing::instrument(name = "s3.head", skip(self))]
    pub async fn exists(&self, key: &str) -> Result<bool, S3Error> {
        let answer = self.send("head", Method::HEAD, key, &[]).await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        expect_success(Method::HEAD, key, answer)
            .await
            .map(|_| true)
    }

    /// Every key under `prefix`, page after page.
    #[tracing::instrument(name = "s3.list", skip(self))]
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("list-type", "2".to_owned()), ("prefix", prefix.to_owned())];
            if let Some(token) = token.take() {
                query.push(("continuation-token", token));
            }
            let answer = self.send("list", Method::GET, "", &query).await?;
            let xml = expect_success(Method::GET, prefix, answer)
                .await?
                .text()
                .await?;
            keys.extend(tags(&xml, "Key").map(unescape_xml));
            let truncated = tags(&xml, "IsTruncated").next() == Some("true");
            token = tags(&xml, "NextContinuationToken").next().map(unescape_xml);
            if !truncated || token.is_none() {
                return Ok(keys);
            }
        }
    }

    /// Removes the object at `key` (no error when there is none).
    #[tracing::instrument(name = "s3.delete", skip(self))]
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let answer = self.send("delete", Method::DELETE, key, &[]).await?;
        if answer.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        expect_success(Method::DELETE, key, answer).await.map(drop)
    }

    async fn send(
        &self,
        op: &str,
        method: Method,
        key: &str,
        query: &[(&str, String)],
    ) -> Result<reqwest::Response, S3Error> {
        let signed = self.sign(&method, key, query, b"", Utc::now());
        let mut request = self.client.request(method, &signed.url);
        for (name, value) in signed.headers {
            request = request.header(name, value);
        }
        let started = Instant::now();
        self.measured(op, started, request.send().await)
    }

    /// Signs a request for `key` in the bucket (the bucket itself when `key` is empty)
    /// with Signature Version 4: the URL to call and the headers to send with it.
    fn sign(
        &self,
        method: &Method,
        key: &str,
        query: &[(&str, String)],
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Signed {
        let endpoint = &self.config.endpoint;
        let host = match endpoint.port() {
            Some(port) => format!("{}:{port}", endpoint.host_str().unwrap_or_default()),
            None => endpoint.host_str().unwrap_or_default().to_owned(),
        };
        let base = endpoint.path().trim_end_matches('/');
        let mut path = format!("{base}/{}", encode(&self.config.bucket, false));
        if !key.is_empty() {
            path = format!("{path}/{}", encode(key, true));
        }
        let mut pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (encode(k, false), encode(v, false)))
            .collect();
        pairs.sort();
        let query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let payload = hex(&Sha256::digest(body));
        let headers = vec![
            ("host", host),
            ("x-amz-content-sha256", payload),
            ("x-amz-date", now.format("%Y%m%dT%H%M%SZ").to_string()),
        ];
        let signature = signature(&self.config, method.as_str(), &path, &query, &headers, now);
        let url = format!(
            "{}://{}{path}{}{query}",
            endpoint.scheme(),
            headers[0].1,
            if query.is_empty() { "" } else { "?" },
        );
        let mut headers = headers;
        headers.remove(0);
        headers.push(("authorization", signature));
        Signed { url, headers }
    }
}

/// The `Authorization` header of Signature Version 4 for a request whose headers (sorted
/// by name, lower-case, `x-amz-content-sha256` holding the payload's hash) are all signed.
fn signature(
    config: &S3Config,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, String)],
    now: DateTime<Utc>,
) -> String {
    let date = now.format("%Y%m%d").to_string();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{date}/{}/s3/aws4_request", config.region);
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", value.trim()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(";");
    let payload = headers
        .iter()
        .find(|(name, _)| *name == "x-amz-content-sha256")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let canonical =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload}");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let secret = format!("AWS4{}", config.secret_key.expose_secret());
    let key = [date.as_str(), &config.region, "s3", "aws4_request"]
        .iter()
        .fold(secret.into_bytes(), |key, part| mac(&key, part.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={}",
        config.access_key,
        hex(&mac(&key, to_sign.as_bytes()))
    )
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// S3's URI encoding: unreserved characters as they are, `/` kept in a key's path, the
/// rest as `%XX`.
fn encode(raw: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn expect_success(
    method: Method,
    key: &str,
    answer: reqwest::Response,
) -> Result<reqwest::Response, S3Error> {
    let status = answer.status();
    if status.is_success() {
        return Ok(answer);
    }
    let body = answer.text().await.unwrap_or_default();
    Err(S3Error::Refused {
        method,
        key: key.to_owned(),
        status,
        body: body.chars().take(300).collect(),
    })
}

/// The texts of every `<tag>…</tag>` in an S3 answer (flat elements only, which is all a
/// listing's keys and tokens are).
fn tags<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let end = rest[start..].find(&close)? + start;
        let text = &rest[start..end];
        rest = &rest[end + close.len()..];
        Some(text)
    })
}

fn unescape_xml(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use secrecy::SecretString;

    use super::*;

    fn example() -> S3Config {
        // The credentials of AWS's own Signature Version 4 examples.
        S3Config {
            endpoint: url::Url::parse("https://s3.amazonaws.com").expect("url"),
            bucket: "examplebucket".to_owned(),
            region: "us-east-1".to_owned(),
            access_key: "AKIAIOSFODNN7EXAMPLE".to_owned(),
            secret_key: SecretString::from("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned()),
        }
    }

    #[test]
    fn the_signature_is_the_one_aws_documents() {
        // "GET Bucket (List Objects)" in AWS's "Signature Calculations for the Authorization
        // Header" (virtual-hosted there, so the host and the path differ from ours; the
        // algorithm is the same).
        let now = Utc
            .with_ymd_and_hms(2013, 5, 24, 0, 0, 0)
            .single()
            .expect("date");
        let empty = hex(&Sha256::digest(b""));
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com".to_owned()),
            ("x-amz-content-sha256", empty),
            ("x-amz-date", "20130524T000000Z".to_owned()),
        ];
        let auth = signature(&example(), "GET", "/", "max-keys=2&prefix=J", &headers, now);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn a_request_is_addressed_path_style_and_its_secret_is_not_shown() {
        let s3 = S3::new(example(), None).expect("client");
        let now = Utc
            .with_ymd_and_hms(2013, 5, 24, 0, 0, 0)
            .single()
            .expect("date");
        let signed = s3.sign(
            &Method::GET,
            "builds/ab/a b.html",
            &[("prefix", "x/".to_owned())],
            b"",
            now,
        );
        assert_eq!(
            signed.url,
            "https://s3.amazonaws.com/examplebucket/builds/ab/a%20b.html?prefix=x%2F"
        );
        assert!(!format!("{s3:?}").contains("EXAMPLEKEY"));
        let keys: Vec<String> = tags(
            "<ListBucketResult><Contents><Key>a&amp;b</Key></Contents><Contents><Key>c</Key></Contents></ListBucketResult>",
            "Key",
        )
        .map(unescape_xml)
        .collect();
        assert_eq!(keys, ["a&b", "c"]);
    }
}
