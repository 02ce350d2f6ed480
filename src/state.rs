//! What was last published, so an unchanged address costs no API call at all.
//! Kept in RAM-backed `/var/run` by default (no flash wear), written atomically
//! (temp file, fsync, rename), and guarded by a lock so cron and hotplug runs
//! never interleave. A corrupt or unreadable file is a warning, never fatal.

use crate::json::{self, Object, Value, ValueExt, object};
use crate::log;
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The largest state file read: a router's file is a few KB, so anything larger is
/// corrupt (and reading it whole could cost a small router its memory).
pub const MAX_STATE_BYTES: u64 = 1024 * 1024;

/// The format version written; version 1 (before results were kept) is still read.
pub const VERSION: u64 = 2;

/// What the last pass concluded about a record, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastResult {
    /// AliDNS already held the value.
    Unchanged,
    /// The record was changed to the value.
    Updated,
    /// The record was added.
    Created,
    /// No such record and `create` is off.
    Missing,
    /// The pass could not make the record current.
    Failed,
}

impl LastResult {
    /// The word used in the state file and by `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            LastResult::Unchanged => "unchanged",
            LastResult::Updated => "updated",
            LastResult::Created => "created",
            LastResult::Missing => "missing",
            LastResult::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<LastResult> {
        [LastResult::Unchanged, LastResult::Updated, LastResult::Created, LastResult::Missing, LastResult::Failed]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Whether AliDNS was seen or made to hold the value.
    pub fn published(self) -> bool {
        matches!(self, LastResult::Unchanged | LastResult::Updated | LastResult::Created)
    }
}

/// One record's last known state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value AliDNS was seen or made to hold; None when that is not known (after
    /// a failure, for a missing record, or while a change is under way).
    pub value: Option<String>,
    /// Its RecordId, when known.
    pub record_id: Option<String>,
    /// System time (seconds) when a pass last asked AliDNS about the record. A pass
    /// served from this file does not advance it, so such a pass writes nothing.
    pub checked_at: Option<i64>,
    /// System time when this program last changed (or created) the record.
    pub changed_at: Option<i64>,
    /// What the last pass that looked at the record concluded.
    pub result: LastResult,
    /// Why it failed: AliDNS's `Code: Message` or the local reason. Never a secret.
    pub error: Option<String>,
}

impl Entry {
    /// The value AliDNS holds according to this entry, if it may be trusted without
    /// asking: published, and confirmed less than `max_age` seconds before `now`.
    pub fn fresh_value(&self, now: i64, max_age: u64) -> Option<&str> {
        let age = now - self.checked_at?;
        (self.result.published() && (0..i64::try_from(max_age).unwrap_or(i64::MAX)).contains(&age))
            .then_some(self.value.as_deref())
            .flatten()
    }
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
    /// Reads the state file; a missing one is empty, a bad or oversized one is empty
    /// with a warning (it is rewritten by the next pass that has something to store).
    pub fn load(path: &Path) -> State {
        let text = match read_bounded(path) {
            Ok(Some(t)) => t,
            Ok(None) => {
                log::warn(format!(
                    "state file {} is larger than {} bytes; ignoring it as corrupt (it will be rewritten)",
                    path.display(),
                    MAX_STATE_BYTES
                ));
                return State::default();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return State::default(),
            Err(e) => {
                log::warn(format!("state file {}: {e}; ignoring it", path.display()));
                return State::default();
            }
        };
        Self::parse(&text).unwrap_or_else(|| {
            log::warn(format!("state file {} is corrupt; ignoring it (it will be rewritten)", path.display()));
            State::default()
        })
    }

    fn parse(text: &str) -> Option<State> {
        let v: Value = json::parse(text)?;
        let version = v.get("version").and_then(ValueExt::as_u64).unwrap_or(1);
        let records = v.get("records")?.as_object()?;
        let mut entries = BTreeMap::new();
        for (k, e) in records {
            let e = e.as_object()?;
            let text = |name: &str| -> Option<Option<String>> {
                match e.get(name) {
                    None | Some(Value::Null) => Some(None),
                    Some(Value::String(s)) => Some(Some(s.clone())),
                    Some(_) => None,
                }
            };
            let time = |name: &str| e.get(name).and_then(ValueExt::as_i64);
            let entry = if version < 2 {
                // Version 1 wrote an entry even for a missing record (with an empty
                // RecordId): such an entry never proves a value is published.
                let value = e.get("value")?.as_str()?.to_string();
                let record_id = text("record_id")?.filter(|id| !id.is_empty());
                if record_id.is_none() {
                    continue;
                }
                Entry {
                    value: Some(value),
                    record_id,
                    checked_at: time("checked"),
                    changed_at: None,
                    result: LastResult::Unchanged,
                    error: None,
                }
            } else {
                Entry {
                    value: text("value")?,
                    record_id: text("record_id")?,
                    checked_at: time("checked_at"),
                    changed_at: time("changed_at"),
                    result: LastResult::parse(e.get("result")?.as_str()?)?,
                    error: text("error")?,
                }
            };
            entries.insert(k.clone(), entry);
        }
        Some(State { entries })
    }

    fn to_json(&self) -> String {
        let mut records = Object::new();
        for (k, e) in &self.entries {
            records.insert(
                k.clone(),
                object!({"value": e.value, "record_id": e.record_id, "checked_at": e.checked_at,
                       "changed_at": e.changed_at, "result": e.result.as_str(), "error": e.error}),
            );
        }
        let mut s = json::to_string(&object!({"version": VERSION, "records" => Value::Object(records)}));
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
            let mut f = match create_tmp(&tmp) {
                // Left by a save that died before its rename (power cut, kill -9):
                // saves happen under the pass lock, so it is nobody's now.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    fs::remove_file(&tmp)?;
                    create_tmp(&tmp)?
                }
                r => r?,
            };
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

    /// Saves, or when that fails (disk full, read-only directory) makes sure the file
    /// on disk can no longer claim anything: it is removed, or else emptied (an empty
    /// file reads as corrupt, i.e. as no state). Errs only when the old file is still
    /// there, intact, after all of that. Ok(true): saved; Ok(false): discarded.
    pub fn save_or_discard(&self, path: &Path) -> Result<bool, String> {
        let Err(e) = self.save(path) else { return Ok(true) };
        let what = format!("cannot write state file {}: {e}", path.display());
        match discard(path) {
            Ok(()) => {
                log::warn(format!("{what}; removed it so that no pass trusts what it said"));
                Ok(false)
            }
            Err(e2) => Err(format!("{what}; nor remove or empty it: {e2}")),
        }
    }
}

/// Reads at most [`MAX_STATE_BYTES`]; Ok(None) when the file is larger.
fn read_bounded(path: &Path) -> std::io::Result<Option<String>> {
    let f = File::open(path)?;
    // A corrupt giant is refused by its size, without a megabyte of RAM to read it.
    if f.metadata()?.len() > MAX_STATE_BYTES {
        return Ok(None);
    }
    let mut buf = Vec::new();
    f.take(MAX_STATE_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_STATE_BYTES {
        return Ok(None);
    }
    String::from_utf8(buf).map(Some).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Removes the state file, or empties it in place where removing is not allowed.
fn discard(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => OpenOptions::new().write(true).open(path).and_then(|f| f.set_len(0)).map_err(|_| e),
    }
}

/// Creates the temporary file of a save, never opening what is already there: in a
/// shared directory (a `state_file` under /tmp), a symlink planted at the name
/// would otherwise have root truncate and write the file it points to.
fn create_tmp(tmp: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(tmp)
}

/// `state` → `state.tmp`. One fixed name: saves happen under the pass lock, and a
/// file left by an interrupted save is replaced by the next one, never piled up.
fn tmp_path(path: &Path) -> PathBuf {
    sibling(path, ".tmp")
}

/// An exclusive lock held for a whole pass; released on drop.
pub struct Lock {
    _file: File,
}

/// Why a pass did not run: two passes never run side by side, as both could
/// change the same record and the later save would claim what the other wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Busy {
    /// A pass runs and another already waits to start after it: that one reads the
    /// addresses after this trigger, so it serves this trigger too.
    Queued,
    /// The running pass held the lock for the whole wait: it is stuck.
    TimedOut { lock: PathBuf, waited: Duration },
    /// SIGTERM or SIGINT arrived while waiting.
    Stopped,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Busy::Queued => f.write_str(
                "another aliddns pass is running and one more is queued after it; that one serves this trigger",
            ),
            Busy::TimedOut { lock, waited } => write!(
                f,
                "another aliddns pass has held {} for {}s; this pass did not run rather than race it",
                lock.display(),
                waited.as_secs()
            ),
            Busy::Stopped => f.write_str("stopping while waiting for another aliddns pass"),
        }
    }
}

impl Lock {
    /// Takes the lock beside the state file (`STATE.lock`). When a pass holds it, at
    /// most one more waits for it, up to `wait`, holding `STATE.queue` meanwhile; any
    /// further pass finds the queue taken and ends at once ([`Busy::Queued`]). So a
    /// burst of cron and hotplug triggers costs one extra pass, not a pile of
    /// waiting processes, and the queued pass starts after every one of them.
    /// Ok(None) (with a warning) when locking is impossible, e.g. a read-only
    /// directory: the pass then runs unlocked rather than not at all.
    pub fn acquire(state_path: &Path, wait: Duration) -> Result<Option<Lock>, Busy> {
        let path = sibling(state_path, ".lock");
        let Some(file) = lock_file(&path) else { return Ok(None) };
        // Once this pass waits: the queue lock, held until this pass has the lock
        // (dropped on return), so later passes know one is queued and starts after
        // them; and when the wait began.
        let mut waiting: Option<(Option<File>, Instant)> = None;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(Lock { _file: file })),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => {
                    log::warn(format!("cannot lock {}: {e}; running without a lock", path.display()));
                    return Ok(None);
                }
            }
            match &waiting {
                None => {
                    let queue = lock_file(&sibling(state_path, ".queue"));
                    if let Some(q) = &queue
                        && matches!(q.try_lock(), Err(fs::TryLockError::WouldBlock))
                    {
                        return Err(Busy::Queued);
                    }
                    log::info("another aliddns pass is running; this one starts when it ends");
                    waiting = Some((queue, Instant::now()));
                }
                Some(_) if crate::signal::stop_requested() => return Err(Busy::Stopped),
                Some((_, start)) if start.elapsed() >= wait => {
                    return Err(Busy::TimedOut { lock: path, waited: start.elapsed() });
                }
                Some(_) => {}
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Opens a lock file, or warns that the pass runs without it.
fn lock_file(path: &Path) -> Option<File> {
    match open_lock_file(path) {
        Ok(f) => Some(f),
        Err(e) => {
            log::warn(format!("cannot open lock file {}: {e}; running without a lock", path.display()));
            None
        }
    }
}

/// `state` → `state.lock` / `state.daemon`: the lock files beside the state file.
fn sibling(state_path: &Path, suffix: &str) -> PathBuf {
    let mut name = state_path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(suffix);
    state_path.with_file_name(name)
}

fn open_lock_file(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = fs::create_dir_all(dir);
    }
    OpenOptions::new().write(true).create(true).truncate(false).open(path)
}

/// Held by `aliddns run` for its whole life (`state.daemon` beside the state file),
/// so `status` can tell whether a daemon runs. It is separate from the per-pass
/// [`Lock`], which an `update` from cron or hotplug also takes.
pub struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    /// Takes the daemon lock. A `status` probe holds it for an instant, so a busy
    /// lock is retried for a second; None (with a warning) when another daemon
    /// holds it or locking is impossible: the daemon then runs anyway.
    pub fn acquire(state_path: &Path) -> Option<DaemonLock> {
        let path = sibling(state_path, ".daemon");
        let file = match open_lock_file(&path) {
            Ok(f) => f,
            Err(e) => {
                log::warn(format!("cannot open {}: {e}; `status` will not see this daemon", path.display()));
                return None;
            }
        };
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Some(DaemonLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) if start.elapsed() < Duration::from_secs(1) => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    log::warn(format!("another `aliddns run` holds {}; running anyway", path.display()));
                    return None;
                }
                Err(fs::TryLockError::Error(e)) => {
                    log::warn(format!("cannot lock {}: {e}; `status` will not see this daemon", path.display()));
                    return None;
                }
            }
        }
    }
}

/// Whether an `aliddns run` holds the daemon lock of `state_path` now. Probes with a
/// shared lock, released at once, on a file opened read-only: it creates nothing and
/// never blocks; a daemon starting in that instant retries.
pub fn daemon_running(state_path: &Path) -> bool {
    let Ok(file) = File::open(sibling(state_path, ".daemon")) else { return false };
    matches!(file.try_lock_shared(), Err(fs::TryLockError::WouldBlock))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary directory removed on drop.
    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn tmpdir(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("aliddns-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn entry(value: &str, checked_at: i64) -> Entry {
        Entry {
            value: Some(value.into()),
            record_id: Some("1".into()),
            checked_at: Some(checked_at),
            changed_at: Some(checked_at - 10),
            result: LastResult::Updated,
            error: None,
        }
    }

    #[test]
    fn round_trip_and_atomic_write() {
        let d = tmpdir("rt");
        let p = d.0.join("sub/state");
        let mut s = State::default();
        s.entries.insert(key("www.example.com", "A", "default"), entry("203.0.113.7", 1_700_000_000));
        s.entries.insert(
            key("nas.example.com", "A", "default"),
            Entry {
                value: None,
                record_id: None,
                checked_at: None,
                changed_at: None,
                result: LastResult::Failed,
                error: Some("no address".into()),
            },
        );
        s.save(&p).unwrap();
        assert_eq!(State::load(&p), s);
        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn corrupt_or_missing_is_empty() {
        let d = tmpdir("bad");
        let p = d.0.join("state");
        assert_eq!(State::load(&p), State::default());
        for junk in [
            "",
            "{",
            "[]",
            "{\"records\":5}",
            "\u{0}\u{1}",
            "{\"records\":{\"k\":{\"value\":1}}}",
            "{\"version\":2,\"records\":{\"k\":{\"value\":null,\"result\":\"bogus\"}}}",
            "{\"version\":2,\"records\":{\"k\":{\"value\":5,\"result\":\"updated\"}}}",
        ] {
            fs::write(&p, junk).unwrap();
            assert_eq!(State::load(&p), State::default(), "{junk:?}");
        }
    }

    #[test]
    fn an_oversized_file_is_corrupt() {
        let d = tmpdir("big");
        let p = d.0.join("state");
        let mut s = State::default();
        s.entries.insert(key("www.example.com", "A", "default"), entry("203.0.113.7", 1_700_000_000));
        // Valid JSON, padded with whitespace past the bound: still not read.
        let mut text = s.to_json();
        text.push_str(&" ".repeat(MAX_STATE_BYTES as usize));
        fs::write(&p, &text).unwrap();
        assert_eq!(State::load(&p), State::default());
        fs::write(&p, s.to_json()).unwrap();
        assert_eq!(State::load(&p), s);
    }

    #[test]
    fn version_1_is_read_but_never_trusts_a_missing_record() {
        let d = tmpdir("v1");
        let p = d.0.join("state");
        fs::write(
            &p,
            r#"{"version":1,"records":{"www.example.com|A|default":{"value":"203.0.113.7","record_id":"7","checked":100},
                "gone.example.com|A|default":{"value":"203.0.113.7","record_id":"","checked":100}}}"#,
        )
        .unwrap();
        let s = State::load(&p);
        assert_eq!(s.entries.len(), 1, "{s:?}");
        let e = &s.entries["www.example.com|A|default"];
        assert_eq!(
            (e.value.as_deref(), e.record_id.as_deref(), e.checked_at),
            (Some("203.0.113.7"), Some("7"), Some(100))
        );
        assert_eq!(e.fresh_value(150, 3600), Some("203.0.113.7"));
    }

    #[test]
    fn only_a_published_recent_value_is_fresh() {
        let e = entry("203.0.113.7", 1000);
        assert_eq!(e.fresh_value(1000, 60), Some("203.0.113.7"));
        assert_eq!(e.fresh_value(1060, 60), None, "too old");
        assert_eq!(e.fresh_value(990, 60), None, "from the future: the clock was wrong");
        for result in [LastResult::Missing, LastResult::Failed] {
            assert_eq!(Entry { result, ..e.clone() }.fresh_value(1000, 60), None);
        }
        assert_eq!(Entry { value: None, ..e.clone() }.fresh_value(1000, 60), None);
    }

    #[test]
    fn a_failed_save_removes_the_old_file() {
        let d = tmpdir("discard");
        let p = d.0.join("state");
        let mut s = State::default();
        s.entries.insert(key("www.example.com", "A", "default"), entry("203.0.113.7", 1000));
        s.save(&p).unwrap();
        // The temp file's name is taken by a directory: the atomic save fails, even for root.
        fs::create_dir_all(tmp_path(&p).join("x")).unwrap();
        assert!(s.save(&p).is_err());
        assert_eq!(s.save_or_discard(&p), Ok(false));
        assert!(!p.exists(), "the stale file must be gone");
        assert_eq!(State::load(&p), State::default());
    }

    #[test]
    fn a_second_pass_waits_a_third_is_served_by_it_and_none_runs_unlocked() {
        let d = tmpdir("lock");
        let p = d.0.join("state");
        let first = Lock::acquire(&p, Duration::from_secs(1)).unwrap();
        assert!(first.is_some());
        // Alone in the queue, the second waits, then gives up: it never runs unlocked.
        match Lock::acquire(&p, Duration::from_millis(200)) {
            Err(Busy::TimedOut { lock, waited }) => {
                assert_eq!(lock, d.0.join("state.lock"));
                assert!(waited >= Duration::from_millis(200));
            }
            other => panic!("expected a timeout, got {:?}", other.map(|l| l.is_some())),
        }
        // While a second waits (it holds the queue), a third has nothing to wait for.
        let queue = open_lock_file(&d.0.join("state.queue")).unwrap();
        queue.try_lock().unwrap();
        assert!(matches!(Lock::acquire(&p, Duration::from_secs(30)), Err(Busy::Queued)));
        drop(queue);
        // The queued pass runs as soon as the running one ends.
        let p2 = p.clone();
        let waiter = std::thread::spawn(move || Lock::acquire(&p2, Duration::from_secs(30)).map(|l| l.is_some()));
        std::thread::sleep(Duration::from_millis(100));
        drop(first);
        assert_eq!(waiter.join().unwrap(), Ok(true));
        assert!(Lock::acquire(&p, Duration::ZERO).unwrap().is_some(), "and the queue is free again");
    }

    #[test]
    fn a_save_never_writes_through_a_planted_symlink() {
        let d = tmpdir("symlink");
        let p = d.0.join("state");
        let victim = d.0.join("victim");
        fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, tmp_path(&p)).unwrap();
        let mut s = State::default();
        s.entries.insert(key("www.example.com", "A", "default"), entry("203.0.113.7", 1000));
        s.save(&p).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(State::load(&p), s);
        assert!(fs::symlink_metadata(tmp_path(&p)).is_err(), "the planted link is gone, not followed");
        // What an interrupted save left is replaced the same way.
        fs::write(tmp_path(&p), "{\"half").unwrap();
        s.save(&p).unwrap();
        assert_eq!(State::load(&p), s);
        assert!(!tmp_path(&p).exists());
    }

    #[test]
    fn daemon_lock_is_seen_by_the_probe_and_not_the_pass_lock() {
        let d = tmpdir("daemon");
        let p = d.0.join("state");
        assert!(!daemon_running(&p));
        let pass = Lock::acquire(&p, Duration::from_secs(1));
        assert!(matches!(pass, Ok(Some(_))));
        assert!(!daemon_running(&p), "a pass is not a daemon");
        let daemon = DaemonLock::acquire(&p);
        assert!(daemon.is_some());
        assert!(daemon_running(&p));
        assert!(daemon_running(&p), "probing does not disturb the holder");
        drop(daemon);
        assert!(!daemon_running(&p));
    }
}
