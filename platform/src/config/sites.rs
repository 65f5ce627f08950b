//! The published sites' settings: where they are served (`{site}.{domain}`), where their
//! files are kept (a folder, or an S3-compatible bucket when `WEBSPLAT_SITES_S3_BUCKET` is
//! set), and how large one may be. See README.md, "Published sites and previews". The
//! bucket's secret key is a `SecretString`: never logged, never shown by `Debug`.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

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
    /// An S3-compatible bucket to keep the sites' files in instead of `dir`
    /// (`WEBSPLAT_SITES_S3_*`); `None` keeps them on disk.
    pub s3: Option<S3Config>,
    /// How long a replaced or unpublished build's files stay for requests already reading
    /// them (`WEBSPLAT_SITES_RETIRE_AFTER`, default 60s).
    pub retire_after: Duration,
}

/// An S3-compatible bucket, addressed path-style (`{endpoint}/{bucket}/{key}`), which AWS,
/// MinIO, Ceph, Garage, R2 and the rest all answer.
#[derive(Clone)]
pub struct S3Config {
    /// `WEBSPLAT_SITES_S3_ENDPOINT`, e.g. `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: Url,
    /// `WEBSPLAT_SITES_S3_BUCKET`: it must exist; the platform writes under `builds/`.
    pub bucket: String,
    /// `WEBSPLAT_SITES_S3_REGION` (default `us-east-1`), part of every signature.
    pub region: String,
    /// `WEBSPLAT_SITES_S3_ACCESS_KEY`.
    pub access_key: String,
    /// `WEBSPLAT_SITES_S3_SECRET_KEY`.
    pub secret_key: SecretString,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint.as_str())
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field("secret_key", &"[hidden]")
            .finish()
    }
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
        s3: s3(s)?,
        retire_after: s.duration("sites_retire_after", Duration::from_secs(60))?,
    })
}

fn s3(s: &Settings) -> Result<Option<S3Config>, ConfigError> {
    let Some(bucket) = s.raw("sites_s3_bucket").filter(|b| !b.is_empty()) else {
        return Ok(None);
    };
    // The bucket goes into a path unescaped: the rules S3 gives bucket names.
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !bucket.starts_with(['-', '.'])
        && !bucket.ends_with(['-', '.']);
    if !bucket_ok {
        return Err(s.invalid(
            "sites_s3_bucket",
            format!(
                "{bucket:?} is not a bucket name (3 to 63 lower-case letters, digits, '-' or '.')"
            ),
        ));
    }
    let hint = "the S3-compatible store's address, e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000";
    let endpoint = s.url("sites_s3_endpoint", s.required("sites_s3_endpoint", hint)?)?;
    if !matches!(endpoint.scheme(), "http" | "https")
        || endpoint.host_str().is_none()
        || endpoint.query().is_some()
    {
        return Err(s.invalid("sites_s3_endpoint", format!("it must be {hint}")));
    }
    let access_key = s
        .required(
            "sites_s3_access_key",
            "the access key id of the bucket's credentials",
        )?
        .to_owned();
    let secret_key = SecretString::from(
        s.required(
            "sites_s3_secret_key",
            "the secret access key of the bucket's credentials",
        )?
        .to_owned(),
    );
    let region = s.raw("sites_s3_region").unwrap_or("us-east-1").to_owned();
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(s.invalid(
            "sites_s3_region",
            format!("{region:?} is not a region name (e.g. us-east-1)"),
        ));
    }
    Ok(Some(S3Config {
        endpoint,
        bucket: bucket.to_owned(),
        region,
        access_key,
        secret_key,
    }))
}
