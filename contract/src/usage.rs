//! The usage report: what a runtime answers at [`crate::runtime::USAGE_PATH`], and what the
//! platform records for operators and quotas.

use serde::{Deserialize, Serialize};

/// Storage used and allowed, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// The bytes the workspace's data directory holds now.
    pub used_bytes: u64,
    /// The bytes it may hold (its access level's storage).
    pub quota_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_reads_back_what_was_written() {
        let report = UsageReport {
            used_bytes: 12,
            quota_bytes: 1 << 30,
        };
        let text = serde_json::to_string(&report).unwrap_or_default();
        assert_eq!(text, r#"{"used_bytes":12,"quota_bytes":1073741824}"#);
        let back: Result<UsageReport, _> = serde_json::from_str(&text);
        assert_eq!(back.ok(), Some(report));
    }

    #[test]
    fn a_report_with_a_negative_or_missing_figure_is_refused() {
        assert!(
            serde_json::from_str::<UsageReport>(r#"{"used_bytes":-1,"quota_bytes":1}"#).is_err()
        );
        assert!(serde_json::from_str::<UsageReport>(r#"{"used_bytes":1}"#).is_err());
    }
}
