//! Sites the world can see: the preview under its capability (styled, still unable to act
//! as the workspace, its beacon counted) and published sites on their own origin.
//! Real platform, real workspace containers, real Chromium.

mod preview;
mod published;
