//! What was last published, so an unchanged address costs no API call at all.
//! Kept in RAM-backed `/var/run` by default (no flash wear), written atomically
//! (temp file, fsync, rename), and guarded by a lock so cron and hotplug runs
//! never interleave. A corrupt or unreadable file is a warning, never fatal.

use crate::log;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One record's last known published value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value AliDNS was seen or made to hold.
    pub value: String,
    /// Its RecordId.
    pub record_id: String,
    /// System time (seconds) when AliDNS last confirmed it.
    pub checked: i64,
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// Keyed by [`key`].
    pub entries: BTreeMap<String, Entry>,
}

/// The state key of a record: its name, type and line.
pub fn key(fqdn: &str, rtype: &str, line: &str) -> String {
    format!("{fqdn}|{rtype}|{line}")
}

impl State {
    /// Reads the state file; a missing one is empty, a bad one is empty with a warning.
    pub fn load(path: &Path) -> State {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return State::default(),
            Err(e) => {
                log::warn(format!("state file {}: {e}; ignoring it", path.display()));
                return State::default();
            }
        };
        match Self::parse(&text) {
            Some(s) => s,
            None => {
                log::warn(format!("state file {} is corrupt; ignoring it (it will be rewritten)", path.display()));
                State::default()
            }
        }
    }

    fn parse(text: &str) -> Option<State> {
        let v: Value = serde_json::from_str(text).ok()?;
        let records = v.get("records")?.as_object()?;
        let mut entries = BTreeMap::new();
        for (k, e) in records {
            let value = e.get("value")?.as_str()?.to_string();
            let record_id = e.get("record_id").and_then(Value::as_str).unwrap_or_default().to_string();
            let checked = e.get("checked").and_then(Value::as_i64).unwrap_or(0);
            entries.insert(k.clone(), Entry { value, record_id, checked });
        }
        Some(State { entries })
    }

    fn to_json(&self) -> String {
        let mut records = Map::new();
        for (k, e) in &self.entries {
            records.insert(k.clone(), json!({"value": e.value, "record_id": e.record_id, "checked": e.checked}));
        }
        let mut s = json!({"version": 1, "records": records}).to_string();
        s.push('\n');
        s
    }

    /// Writes atomically: a reader (or a crash) sees the old file or the new one.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let tmp = tmp_path(path);
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            f.write_all(self.to_json().as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)?;
            // Make the rename itself durable where the file system needs it.
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                && let Ok(d) = File::open(dir)
            {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

/// An exclusive lock held for a whole pass; released on drop.
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock beside the state file, waiting up to `wait` for another
    /// run to finish. None (with a warning) when locking is impossible, e.g. a
    /// read-only directory: the pass then runs unlocked rather than not at all.
    pub fn acquire(state_path: &Path, wait: Duration) -> Option<Lock> {
        let mut name = state_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".lock");
        let path = state_path.with_file_name(name);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = fs::create_dir_all(dir);
        }
        let file = match OpenOptions::new().write(true).create(true).truncate(false).open(&path) {
            Ok(f) => f,
            Err(e) => {
                log::warn(format!("cannot open lock file {}: {e}; running without a lock", path.display()));
                return None;
            }
        };
        let start = Instant::now();
        let mut announced = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Some(Lock { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {
                    if !announced {
                        log::info("another aliddns pass is running; waiting for it to finish");
                        announced = true;
                    }
                    if start.elapsed() >= wait {
                        log::warn(format!(
                            "lock {} still held after {}s; running without it",
                            path.display(),
                            wait.as_secs()
                        ));
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(fs::TryLockError::Error(e)) => {
                    log::warn(format!("cannot lock {}: {e}; running without a lock", path.display()));
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aliddns-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trip_and_atomic_write() {
        let d = tmpdir("rt");
        let p = d.join("sub/state");
        let mut s = State::default();
        s.entries.insert(
            key("www.example.com", "A", "default"),
            Entry { value: "203.0.113.7".into(), record_id: "1".into(), checked: 1_700_000_000 },
        );
        s.save(&p).unwrap();
        assert_eq!(State::load(&p), s);
        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn corrupt_or_missing_is_empty() {
        let d = tmpdir("bad");
        let p = d.join("state");
        assert_eq!(State::load(&p), State::default());
        for junk in ["", "{", "[]", "{\"records\":5}", "\u{0}\u{1}", "{\"records\":{\"k\":{\"value\":1}}}"] {
            fs::write(&p, junk).unwrap();
            assert_eq!(State::load(&p), State::default(), "{junk:?}");
        }
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        let d = tmpdir("lock");
        let p = d.join("state");
        let first = Lock::acquire(&p, Duration::from_secs(1));
        assert!(first.is_some());
        let second = Lock::acquire(&p, Duration::from_millis(200));
        assert!(second.is_none(), "the lock must be held");
        drop(first);
        assert!(Lock::acquire(&p, Duration::from_millis(200)).is_some());
    }
}
