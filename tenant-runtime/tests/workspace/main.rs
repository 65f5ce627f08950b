//! The workspace API against the real `tenant-runtime` binary and a real data directory,
//! one module per capability, their shared harness in `helpers`: projects, pages with
//! optimistic concurrency, versions, undo/redo, diff, restore, preview, hostile input, and
//! durability when the process is killed mid-write; documents indexed, sites exported and
//! published by background jobs that list their steps and resume after a kill, a crash at
//! their worst moment (`WEBSPLAT_RUNTIME_TEST_CRASH_AT`) or a database fault (a trigger);
//! with a tenant secret, only requests the platform signed; notes that outlive a restart;
//! large staged uploads streamed to the volume.

mod helpers;

mod agents;
mod analytics;
mod api;
mod chat;
mod documents;
mod fuzz;
mod generation;
mod jobs;
mod notes;
mod pages;
mod projects;
mod sites;
mod trust;
mod uploads;
mod websocket;
