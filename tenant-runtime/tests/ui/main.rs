//! The workspace UI in a real headless Chromium (through chromedriver), against the real
//! `tenant-runtime` binary on a fresh data directory: generating a site from a brief with
//! live progress, editing and saving a page with the sandboxed preview following, undo,
//! the SEO score following an edit, a stale save resolved from the conflict panel,
//! documents indexed in the background with highlighted search, exports and publishing
//! with their progress and download, agents with the API's validation messages, a chat
//! whose reply streams in with its sources, analytics with their chart — and the
//! preview's sandbox: a previewed page can neither read the workspace's cookie nor call its
//! API. `scripts/test` sets `WEBSPLAT_TEST_CHROMEDRIVER` and `WEBSPLAT_TEST_CHROMIUM`.
//! One module per part of the UI; their harness in `helpers`, extra WebDriver commands in
//! `driver`.

mod driver;
mod helpers;

mod analytics;
mod chat;
mod documents;
mod editor;
mod sandbox;
mod sites;
mod tools;
