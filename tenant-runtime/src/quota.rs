//! The storage quota: how much of the disk this workspace may use (set by the platform from
//! the user's access level, `WEBSPLAT_RUNTIME_STORAGE_QUOTA`). Usage is measured on disk —
//! the database with its journal, published sites, documents and staged uploads — so it is
//! what the host really pays. A write that would pass the quota is refused with 413 before
//! anything is written; a streamed upload, counted as it arrives, is refused as soon as it
//! would pass it, and what it had written is removed.

use std::path::{Path, PathBuf};

use crate::error::ApiError;

pub const DEFAULT_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Quota {
    data_dir: PathBuf,
    pub limit_bytes: u64,
}

/// What `GET /api/v1/usage` answers: the report the platform reads (the shared contract).
pub use websplat_contract::UsageReport as Usage;

/// Parses `1073741824`, `512M`, `10G`, `100K` (binary units).
pub fn parse_size(raw: &str) -> Option<u64> {
    let raw = raw.trim();
    let (digits, unit) = match raw.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => raw.split_at(i),
        None => (raw, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(factor).filter(|v| *v > 0)
}

fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

impl Quota {
    pub fn new(data_dir: &Path, limit_bytes: u64) -> Self {
        Quota {
            data_dir: data_dir.to_owned(),
            limit_bytes,
        }
    }

    pub fn usage(&self) -> Usage {
        Usage {
            used_bytes: self.used(),
            quota_bytes: self.limit_bytes,
        }
    }

    /// The bytes the data directory holds now. Blocking: it walks the directory.
    pub fn used(&self) -> u64 {
        dir_size(&self.data_dir)
    }

    /// Refuses a write of `additional` bytes that would take usage past the quota.
    pub fn check(&self, additional: u64) -> Result<(), ApiError> {
        self.admit(self.used(), additional)
    }

    /// Refuses `additional` bytes on top of `used` (measured with [`Quota::used`]) that
    /// would pass the quota; for a write that measures once and then counts as it goes.
    pub fn admit(&self, used: u64, additional: u64) -> Result<(), ApiError> {
        if used.saturating_add(additional) > self.limit_bytes {
            return Err(ApiError::TooLarge(format!(
                "this would exceed your storage quota: {} of {} used, this needs {} more; delete projects, versions or uploads you no longer need, or ask for a larger plan",
                human(used),
                human(self.limit_bytes),
                human(additional)
            )));
        }
        Ok(())
    }
}

/// A size for people: `512 bytes`, `1.5 MiB`.
pub fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / (1u64 << 10) as f64),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("10 GiB"), Some(10 << 30));
        for bad in ["", "0", "-1", "10X", "M", "99999999999999999999T"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }
}
