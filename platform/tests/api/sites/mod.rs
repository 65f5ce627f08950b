//! Sites the world can see: the preview under its capability (styled, still unable to act
//! as the workspace, its beacon counted) and published sites on their own origin, kept
//! on disk or in an S3-compatible bucket.
//! Real platform, real workspace containers, real Chromium.

pub(crate) mod preview;
mod published;
mod s3;
