//! A local OpenID provider that serves crafted ID tokens, for the cases a real provider will
//! not produce: bad signatures, `alg: none`, expired tokens, wrong issuer or audience, an
//! unpublished key, a rotated key. It speaks the real wire format (discovery, JWKS, token
//! endpoint) with its own RSA keys; the tokens are signed for real.

use std::sync::{Arc, Mutex};

use actix_web::{HttpResponse, web};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use serde_json::{Value, json};

use crate::helpers::LocalServer;

pub const CLIENT_ID: &str = "websplat-test-client";

/// How the next ID token is signed.
#[derive(Clone, Copy)]
pub enum Signing {
    /// With the named key ("a" or "b").
    Key(&'static str),
    /// With key "a", then one byte of the signature changed.
    Tampered,
    /// Not at all: `alg: none`.
    None,
    /// HS256 keyed with the client secret (a MAC, not a signature).
    Hs256,
}

struct State {
    issuer: String,
    /// Key ids the JWKS publishes.
    published: Vec<&'static str>,
    next_id_token: Option<String>,
}

#[derive(Clone)]
pub struct Forge {
    pub issuer: String,
    state: Arc<Mutex<State>>,
    _server: Arc<LocalServer>,
}

fn key(kid: &str) -> CoreRsaPrivateSigningKey {
    let pem = match kid {
        "a" => include_str!("../../../tests/fixtures/provider-key-a.pem"),
        _ => include_str!("../../../tests/fixtures/provider-key-b.pem"),
    };
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.to_owned())))
        .expect("test key")
}

impl Forge {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            issuer: String::new(),
            published: vec!["a"],
            next_id_token: None,
        }));
        let data = web::Data::from(state.clone());
        let server = LocalServer::start(move |cfg| {
            cfg.app_data(data.clone())
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(discovery),
                )
                .route("/jwks", web::get().to(jwks))
                .route("/token", web::post().to(token));
        });
        let issuer = server.base.clone();
        state.lock().expect("state").issuer = issuer.clone();
        Forge {
            issuer,
            state,
            _server: Arc::new(server),
        }
    }

    /// Publishes exactly these keys from now on (a key rotation).
    pub fn publish(&self, kids: &[&'static str]) {
        self.state.lock().expect("state").published = kids.to_vec();
    }

    /// Claims of a valid token for `nonce`; tests change what they need.
    pub fn claims(&self, nonce: &str) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "forged-subject",
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "email": "forge@example.com",
            "name": "Forge User",
        })
    }

    /// The token endpoint answers the next code exchange with this ID token.
    pub fn serve_token(&self, claims: &Value, signing: Signing) {
        let kid = match signing {
            Signing::Key(k) => k,
            _ => "a",
        };
        let alg = match signing {
            Signing::None => "none",
            Signing::Hs256 => "HS256",
            _ => "RS256",
        };
        let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = match signing {
            Signing::None => Vec::new(),
            Signing::Hs256 => {
                use sha2::Digest;
                // Any bytes do: the platform must refuse the algorithm before checking them.
                sha2::Sha256::digest(format!("test-client-secret{input}")).to_vec()
            }
            Signing::Key(k) => key(k)
                .sign(
                    &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                    input.as_bytes(),
                )
                .expect("sign"),
            Signing::Tampered => {
                let mut sig = key("a")
                    .sign(
                        &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                        input.as_bytes(),
                    )
                    .expect("sign");
                sig[10] ^= 0x01;
                sig
            }
        };
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
        self.state.lock().expect("state").next_id_token = Some(token);
    }
}

async fn discovery(state: web::Data<Mutex<State>>) -> HttpResponse {
    let issuer = state.lock().expect("state").issuer.clone();
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "HS256", "none"],
    }))
}

async fn jwks(state: web::Data<Mutex<State>>) -> HttpResponse {
    use openidconnect::PrivateSigningKey as _;
    let published = state.lock().expect("state").published.clone();
    let keys: Vec<Value> = published
        .iter()
        .map(|kid| serde_json::to_value(key(kid).as_verification_key()).expect("jwk"))
        .collect();
    HttpResponse::Ok().json(json!({ "keys": keys }))
}

async fn token(state: web::Data<Mutex<State>>) -> HttpResponse {
    match state.lock().expect("state").next_id_token.take() {
        Some(id_token) => HttpResponse::Ok().json(json!({
            "access_token": "forge-access-token",
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        })),
        None => HttpResponse::BadRequest().json(json!({"error": "invalid_grant"})),
    }
}
