//! The published sites' settings: where they are served (`{site}.{domain}`), where their
//! files are kept, and how large one may be. See README.md, "Published sites and previews".

use std::path::PathBuf;

use super::settings::{ConfigError, Settings, positive};

/// Published sites.
#[derive(Debug, Clone)]
pub struct SitesConfig {
    /// Sites are served at `{site}.{domain}` on the platform's scheme and port
    /// (`WEBSPLAT_SITES_DOMAIN`); never the workspace domain or the platform's own host.
    pub domain: String,
    /// Where the sites' files live (`WEBSPLAT_SITES_DIR`, by default `sites/` under
    /// `WEBSPLAT_DATA_DIR`). Replicas must share it.
    pub dir: PathBuf,
    /// The largest site, in bytes, whatever the owner's storage allows
    /// (`WEBSPLAT_SITES_MAX_BYTES`).
    pub max_bytes: u64,
}

pub(super) fn sites(s: &Settings, workspace_domain: &str) -> Result<SitesConfig, ConfigError> {
    let domain = s
        .raw("sites_domain")
        .unwrap_or("sites.localhost")
        .trim_matches('.')
        .to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !domain.split('.').all(label_ok) {
        return Err(s.invalid(
            "sites_domain",
            format!("{domain:?} is not a host name (e.g. sites.localhost or sites.example.com)"),
        ));
    }
    let overlaps = |a: &str, b: &str| a == b || a.ends_with(&format!(".{b}"));
    if overlaps(&domain, workspace_domain) || overlaps(workspace_domain, &domain) {
        return Err(s.invalid(
            "sites_domain",
            format!(
                "{domain:?} must be apart from the workspace domain {workspace_domain:?}: a published site must never share an origin or a cookie scope with a workspace"
            ),
        ));
    }
    let data_dir = PathBuf::from(s.raw("data_dir").unwrap_or(".data/platform"));
    let dir = s
        .raw("sites_dir")
        .map_or_else(|| data_dir.join("sites"), PathBuf::from);
    Ok(SitesConfig {
        domain,
        dir,
        max_bytes: positive(s, "sites_max_bytes", 256 * 1024 * 1024)?,
    })
}
