//! The local model server's tests: the real model files (fetched by `scripts/models`,
//! found through `WEBSPLAT_TEST_MODELS_DIR`), the real server in-process on port 0, real
//! HTTP. One binary, a module per concern.

mod chat;
mod embeddings;
mod errors;
mod helpers;
