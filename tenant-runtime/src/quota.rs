//! The storage quota: how much of the disk this workspace may use (set by the platform from
//! the user's access level, `WEBSPLAT_RUNTIME_STORAGE_QUOTA`). Usage is measured on disk —
//! the database with its journal, published sites, documents and staged uploads — so it is
//! what the host really pays.
//!
//! Room is reserved atomically: a write takes a [`Reservation`] before it writes, under one
//! lock that measures the disk and counts every other reservation still held, so writes
//! running side by side can never pass the quota together. A streamed upload reserves its
//! declared length up front, or grows its reservation as it arrives, always before the bytes
//! reach the disk; its partial file is not measured (its reservation stands for it). A write
//! that would pass the quota is refused with 413 before anything is written; a reservation
//! is given back when it is dropped, however the write ends.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::ApiError;

pub const DEFAULT_QUOTA_BYTES: u64 = 1024 * 1024 * 1024;

/// The suffix of a staged upload's partial file (`uploads/.<id>.partial`): its bytes are
/// its reservation's, not the disk's.
pub const PARTIAL_SUFFIX: &str = ".partial";

#[derive(Debug, Clone)]
pub struct Quota {
    data_dir: PathBuf,
    pub limit_bytes: u64,
    /// Bytes reserved by writes under way, over all of them (shared by every clone).
    reserved: Arc<Mutex<u64>>,
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

/// The bytes under `path`; without `partials`, less the staged uploads' partial files
/// (hidden files ending in [`PARTIAL_SUFFIX`]), which their reservations count instead.
fn dir_size(path: &Path, partials: bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path(), partials),
            Ok(_) if !partials && is_partial(&e.file_name().to_string_lossy()) => 0,
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

fn is_partial(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(PARTIAL_SUFFIX)
}

/// Room held for one write until it is on disk or given up: returned to the quota when
/// dropped.
#[derive(Debug)]
pub struct Reservation {
    reserved: Arc<Mutex<u64>>,
    bytes: u64,
}

impl Reservation {
    /// The bytes it holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut total = self.reserved.lock().unwrap_or_else(|e| e.into_inner());
        *total = total.saturating_sub(self.bytes);
    }
}

impl Quota {
    pub fn new(data_dir: &Path, limit_bytes: u64) -> Self {
        Quota {
            data_dir: data_dir.to_owned(),
            limit_bytes,
            reserved: Arc::new(Mutex::new(0)),
        }
    }

    pub fn usage(&self) -> Usage {
        Usage {
            used_bytes: self.used(),
            quota_bytes: self.limit_bytes,
        }
    }

    /// The bytes the data directory holds now, staged uploads still arriving included (as
    /// far as they have come). Blocking: it walks the directory.
    pub fn used(&self) -> u64 {
        dir_size(&self.data_dir, true)
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        // The count stays right even if a holder panicked: each change is one assignment.
        self.reserved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses a write of `additional` bytes that would take usage, with what other writes
    /// under way have reserved, past the quota. Blocking: it walks the directory.
    pub fn check(&self, additional: u64) -> Result<(), ApiError> {
        self.reserve(additional).map(drop)
    }

    /// Reserves `bytes` for a write, atomically with every other reservation: refused when
    /// the disk, what is reserved and these bytes would pass the quota. Blocking: it walks
    /// the directory (under the lock, so two reservations never measure the same room).
    pub fn reserve(&self, bytes: u64) -> Result<Reservation, ApiError> {
        let mut reservation = Reservation {
            reserved: Arc::clone(&self.reserved),
            bytes: 0,
        };
        if bytes > 0 {
            self.grow(&mut reservation, bytes, 0)?;
        }
        Ok(reservation)
    }

    /// [`Quota::reserve`] off the async threads.
    pub async fn reserve_async(&self, bytes: u64) -> Result<Reservation, ApiError> {
        let quota = self.clone();
        tokio::task::spawn_blocking(move || quota.reserve(bytes))
            .await
            .map_err(ApiError::internal)?
    }

    /// Grows `reservation` to hold at least `need` bytes, and up to `ahead` more while the
    /// quota has room to spare (so a stream need not come back for every chunk); refused,
    /// and left as it was, when `need` does not fit. Blocking: it walks the directory.
    pub fn grow(
        &self,
        reservation: &mut Reservation,
        need: u64,
        ahead: u64,
    ) -> Result<(), ApiError> {
        if need <= reservation.bytes {
            return Ok(());
        }
        let mut total = self.lock();
        let others = total.saturating_sub(reservation.bytes);
        let used = dir_size(&self.data_dir, false).saturating_add(others);
        let room = self.limit_bytes.saturating_sub(used);
        if need > room {
            return Err(self.refusal(used, need));
        }
        // Ahead by at most half the room left after `need`, so one stream never takes
        // every byte another would fit in.
        let spare = (room - need) / 2;
        let grown = need.saturating_add(ahead.min(spare));
        *total = others.saturating_add(grown);
        reservation.bytes = grown;
        Ok(())
    }

    fn refusal(&self, used: u64, additional: u64) -> ApiError {
        ApiError::TooLarge(format!(
            "this would exceed your storage quota: {} of {} used or being written, this needs {} more; delete projects, versions or uploads you no longer need, or ask for a larger plan",
            human(used),
            human(self.limit_bytes),
            human(additional)
        ))
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

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("quota-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("uploads")).expect("dir");
        dir
    }

    #[test]
    fn reservations_side_by_side_never_pass_the_quota_together() {
        let dir = scratch();
        let quota = Quota::new(&dir, 1000);
        let a = quota.reserve(600).expect("room for the first");
        let refused = quota.reserve(600);
        assert!(
            matches!(&refused, Err(ApiError::TooLarge(m)) if m.contains("storage quota")),
            "{refused:?}"
        );
        assert!(quota.check(401).is_err());
        let mut b = quota.reserve(400).expect("what is left");
        assert!(quota.grow(&mut b, 401, 0).is_err(), "no room to grow");
        assert_eq!(b.bytes(), 400, "a refused growth leaves it as it was");
        drop(a);
        // Given back when dropped: room to grow, ahead by half of what is left to spare.
        quota.grow(&mut b, 500, 10_000).expect("room again");
        assert_eq!(b.bytes(), 750);
        quota.grow(&mut b, 1000, 10_000).expect("to the last byte");
        assert_eq!(b.bytes(), 1000);
        drop(b);
        // What is on disk counts; a partial file does not (its reservation does).
        std::fs::write(dir.join("kept"), [0u8; 300]).expect("write");
        std::fs::write(dir.join("uploads/.x.partial"), [0u8; 500]).expect("write");
        assert!(quota.check(700).is_ok());
        assert!(quota.check(701).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
