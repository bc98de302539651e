//! The broker's rack (broker.rack): given by `--broker-rack`, or read at start-up from
//! `--broker-rack-file`, which may not exist yet when the process starts.
//!
//! On Kubernetes a pod cannot read its node's labels, so the operator copies the node's topology
//! label into a pod annotation once the pod is scheduled, and the broker reads that annotation
//! from a downward-API volume. The kubelet writes the file when the annotation appears, so the
//! broker waits for it (with a deadline) before it registers with the controller.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::BrokerConfig;

/// Longest rack accepted, in bytes.
pub const MAX_RACK_LEN: usize = 255;

/// How often the file is looked at while waiting.
const POLL: Duration = Duration::from_millis(200);

/// How often the wait is reported in the log.
const REPORT_EVERY: Duration = Duration::from_secs(15);

/// The rack this broker registers with: `--broker-rack`, the content of `--broker-rack-file`
/// (waiting for it up to `--broker-rack-file-timeout-ms`), or none.
pub async fn resolve(config: &BrokerConfig) -> anyhow::Result<Option<String>> {
    if let Some(rack) = &config.broker_rack {
        return check(rack)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("--broker-rack {rack:?}: {e}"));
    }
    let Some(path) = &config.broker_rack_file else {
        return Ok(None);
    };
    let timeout = Duration::from_millis(config.broker_rack_file_timeout_ms);
    wait_for_file(path, timeout).await.map(Some)
}

/// Reads `path` until it holds a rack, for at most `timeout`.
async fn wait_for_file(path: &Path, timeout: Duration) -> anyhow::Result<String> {
    let started = Instant::now();
    let mut reported = started;
    let mut logged_wait = false;
    loop {
        let state = match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => {
                let rack = check(&text)
                    .map_err(|e| anyhow::anyhow!("--broker-rack-file {}: {e}", path.display()))?;
                tracing::info!(rack = %rack, file = %path.display(), "rack read from file");
                return Ok(rack);
            }
            Ok(_) => "the file is empty".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                "the file does not exist".to_string()
            }
            Err(e) => format!("cannot read it: {e}"),
        };
        let waited = started.elapsed();
        if waited >= timeout {
            anyhow::bail!(
                "--broker-rack-file {}: no rack after {} ms ({state}); on Kubernetes, check that \
                 the pod's node has the cluster's rack topology label and that the operator runs",
                path.display(),
                timeout.as_millis()
            );
        }
        if !logged_wait || reported.elapsed() >= REPORT_EVERY {
            tracing::info!(
                file = %path.display(),
                waited_ms = waited.as_millis() as u64,
                timeout_ms = timeout.as_millis() as u64,
                "waiting for the rack file: {state}"
            );
            logged_wait = true;
            reported = Instant::now();
        }
        tokio::time::sleep(POLL.min(timeout - waited)).await;
    }
}

/// A rack as given, without surrounding whitespace: non-empty, at most [`MAX_RACK_LEN`] bytes,
/// no control characters.
pub fn check(rack: &str) -> Result<String, String> {
    let rack = rack.trim();
    if rack.is_empty() {
        return Err("the rack is empty".into());
    }
    if rack.len() > MAX_RACK_LEN {
        return Err(format!(
            "the rack is {} bytes, longer than {MAX_RACK_LEN}",
            rack.len()
        ));
    }
    if rack.chars().any(char::is_control) {
        return Err(format!("the rack {rack:?} holds control characters"));
    }
    Ok(rack.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> BrokerConfig {
        use clap::Parser;
        BrokerConfig::try_parse_from(std::iter::once("samsa-broker").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn check_trims_and_refuses_bad_racks() {
        assert_eq!(check(" zone-a\n").unwrap(), "zone-a");
        assert!(check(" \n").unwrap_err().contains("empty"));
        assert!(check(&"r".repeat(256)).unwrap_err().contains("256 bytes"));
        assert!(check("a\u{7}b").unwrap_err().contains("control"));
    }

    #[tokio::test]
    async fn flag_file_or_none() {
        assert_eq!(resolve(&config(&[])).await.unwrap(), None);
        let c = config(&["--broker-rack", "r1"]);
        assert_eq!(resolve(&c).await.unwrap().as_deref(), Some("r1"));
        let c = config(&["--broker-rack", " "]);
        assert!(resolve(&c)
            .await
            .unwrap_err()
            .to_string()
            .contains("--broker-rack"));
        use clap::Parser;
        let both = BrokerConfig::try_parse_from([
            "samsa-broker",
            "--broker-rack",
            "r1",
            "--broker-rack-file",
            "/x",
        ]);
        assert!(
            both.is_err(),
            "--broker-rack and --broker-rack-file are exclusive"
        );
    }

    #[tokio::test]
    async fn waits_for_the_file_to_hold_a_rack() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rack");
        let path_arg = path.to_str().unwrap().to_string();
        let c = config(&["--broker-rack-file", &path_arg]);
        let waiting = tokio::spawn(async move { resolve(&c).await });
        // Missing, then empty (as the kubelet's file is before the annotation exists), then set.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "resolved while the file is missing");
        std::fs::write(&path, "").unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "resolved while the file is empty");
        std::fs::write(&path, "zone-b\n").unwrap();
        let rack = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(rack.as_deref(), Some("zone-b"));
    }

    #[tokio::test]
    async fn gives_up_after_the_timeout_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rack");
        let path_arg = path.to_str().unwrap().to_string();
        let c = config(&[
            "--broker-rack-file",
            &path_arg,
            "--broker-rack-file-timeout-ms",
            "300",
        ]);
        let err = resolve(&c).await.unwrap_err().to_string();
        assert!(err.contains("no rack after 300 ms"), "{err}");
        assert!(err.contains("does not exist"), "{err}");
        std::fs::write(&path, "bad\u{1}rack").unwrap();
        let err = resolve(&c).await.unwrap_err().to_string();
        assert!(err.contains("control characters"), "{err}");
    }
}
