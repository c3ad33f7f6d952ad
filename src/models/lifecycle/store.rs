//! The model registry on disk: every trained artefact under an immutable
//! version id, and one small index saying what state each version is in.
//!
//! ```text
//! <root>/registry.json                      the index (states, promotions)
//! <root>/runs.json                          training runs and their outcomes
//! <root>/<model>/<version>/<model>.safetensors
//! <root>/<model>/<version>/<model>.json     the model card
//! <root>/<model>/<version>/lifecycle.json   gate verdict, build, run
//! <root>/.staging-<id>/                     a version being written
//! ```
//!
//! A version is written whole into a staging directory, synced, renamed
//! into place, and only then named in the index, which is itself replaced
//! by an atomic rename. The index is the truth: on open, staging
//! directories and version directories it does not name (a crash between
//! the rename and the index) are removed, so a crash at any point leaves
//! the registry as it was before the version or with the version whole.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::gate::Verdict;
use crate::models::neural::card::ModelCard;

/// What a version is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Serves the model's forecasts.
    Champion,
    /// Passed the held-out gate; serves the A/B share, waiting for promotion.
    Challenger,
    /// Serves nothing: refused by the gate, superseded or rolled back.
    Retired,
}

/// A version's entry in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VersionRecord {
    pub model: String,
    pub version: String,
    pub state: State,
    pub created_at: DateTime<Utc>,
    /// Why it is in its state (the gate's reason, a promotion, a rollback).
    pub reason: String,
    /// Who last made it champion, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<DateTime<Utc>>,
    /// The training run that made it (none for the pretrained seed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// What the registry adds to a model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Provenance {
    /// The build that trained it: crate name and version.
    pub build: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The promotion gate's comparison with the champion of its day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<Verdict>,
}

/// The index.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Index {
    /// Per model, its versions oldest first.
    models: BTreeMap<String, Vec<VersionRecord>>,
    /// Per model, every version that was champion, in the order it became
    /// one (a rollback pops the last).
    #[serde(default)]
    champions: BTreeMap<String, Vec<String>>,
}

/// A version being written, not yet in the registry; removed if dropped
/// uncommitted. Its writer holds a lock on `<dir>.lock` (released by the
/// system if the writer dies), so another process sweeping the registry
/// leaves it alone while it is being written.
pub struct Staging {
    pub dir: PathBuf,
    lock: Option<Locked>,
    committed: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if let Some(lock) = self.lock.take() {
            let _ = std::fs::remove_file(&lock.path);
        }
    }
}

/// An exclusive advisory lock (flock) on a file, held until dropped.
pub(super) struct Locked {
    path: PathBuf,
    _file: std::fs::File,
}

impl Locked {
    /// Waits for the lock (`wait`), or gives up at once if it is held.
    pub(super) fn take(path: &Path, wait: bool) -> anyhow::Result<Option<Locked>> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        let flags = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), flags) } != 0 {
            let e = std::io::Error::last_os_error();
            if !wait && e.kind() == std::io::ErrorKind::WouldBlock {
                return Ok(None);
            }
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
        Ok(Some(Locked {
            path: path.to_path_buf(),
            _file: file,
        }))
    }
}

/// When the index file last changed, to notice other writers.
type Stamp = Option<(std::time::SystemTime, u64)>;

pub struct Store {
    root: PathBuf,
    index: Index,
    stamp: Stamp,
}

fn read_index(root: &Path) -> anyhow::Result<(Index, Stamp)> {
    let path = root.join("registry.json");
    match std::fs::read(&path) {
        Ok(bytes) => {
            let index = serde_json::from_slice(&bytes)
                .with_context(|| format!("parsing {}", path.display()))?;
            Ok((index, stamp_of(&path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Index::default(), None)),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn stamp_of(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new
/// one, never a mix: a synced temporary file renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")));
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A version id or model name safe as one path component.
fn component(name: &str) -> anyhow::Result<&str> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(name)
    } else {
        anyhow::bail!("{name:?} is not a valid model or version name")
    }
}

impl Store {
    /// Opens (creating) the registry at `root`, clearing what a crash left.
    /// Several processes may share it: changes are made under a lock, each
    /// on the index as it is on disk then.
    pub fn open(root: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating the model registry {}", root.display()))?;
        let mut store = Store {
            root: root.to_path_buf(),
            index: Index::default(),
            stamp: None,
        };
        let _lock = store.lock()?;
        store.reload()?;
        store.sweep()?;
        Ok(store)
    }

    fn lock(&self) -> anyhow::Result<Locked> {
        Ok(Locked::take(&self.root.join("registry.lock"), true)?.expect("a waiting lock is taken"))
    }

    fn reload(&mut self) -> anyhow::Result<()> {
        (self.index, self.stamp) = read_index(&self.root)?;
        Ok(())
    }

    /// Rereads the index if another process changed it; whether it did.
    pub fn refresh(&mut self) -> anyhow::Result<bool> {
        if stamp_of(&self.root.join("registry.json")) == self.stamp {
            return Ok(false);
        }
        let _lock = self.lock()?;
        self.reload()?;
        Ok(true)
    }

    /// Removes staging directories and versions the index does not name.
    fn sweep(&self) -> anyhow::Result<()> {
        for entry in std::fs::read_dir(&self.root)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with(".staging-") && path.is_dir() {
                let lock_path = self.root.join(format!("{name}.lock"));
                // Held: another process is writing it.
                let Some(_abandoned) = Locked::take(&lock_path, false)? else {
                    continue;
                };
                tracing::warn!(dir = %path.display(), "removing a version left half-written");
                std::fs::remove_dir_all(&path)?;
                let _ = std::fs::remove_file(&lock_path);
            } else if let (true, Some(known)) = (path.is_dir(), self.index.models.get(&name)) {
                // Only the directories of models the index knows: nothing
                // else in the registry's directory is ours to remove.
                for version in std::fs::read_dir(&path)?.flatten() {
                    let v = version.file_name().to_string_lossy().into_owned();
                    if !known.iter().any(|r| r.version == v) {
                        tracing::warn!(
                            model = name,
                            version = v,
                            "removing a version the registry never recorded"
                        );
                        std::fs::remove_dir_all(version.path())?;
                    }
                }
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A fresh staging directory for one version.
    pub fn stage(&self) -> anyhow::Result<Staging> {
        let name = format!(".staging-{}", uuid::Uuid::new_v4().simple());
        let lock = Locked::take(&self.root.join(format!("{name}.lock")), true)?;
        let dir = self.root.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(Staging {
            dir,
            lock,
            committed: false,
        })
    }

    /// The directory holding `version` of `model`.
    pub fn version_dir(&self, model: &str, version: &str) -> anyhow::Result<PathBuf> {
        Ok(self.root.join(component(model)?).join(component(version)?))
    }

    /// Moves `staging` (holding the model's files) into place as `record`
    /// and names it in the index; demotes any other version holding the
    /// record's state when that state is champion or challenger.
    pub fn commit(&mut self, mut staging: Staging, record: VersionRecord) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        self.reload()?;
        let dir = self.version_dir(&record.model, &record.version)?;
        if self.record(&record.model, &record.version).is_some() || dir.exists() {
            anyhow::bail!(
                "version {} of {} exists already",
                record.version,
                record.model
            );
        }
        for entry in std::fs::read_dir(&staging.dir)?.flatten() {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
        std::fs::create_dir_all(dir.parent().expect("a version has a model directory"))?;
        std::fs::rename(&staging.dir, &dir)
            .with_context(|| format!("moving the new version into {}", dir.display()))?;
        staging.committed = true;
        sync_dir(dir.parent().expect("a version has a model directory"));
        let mut index = self.index.clone();
        let model = record.model.clone();
        let state = record.state;
        let version = record.version.clone();
        let reason = format!("superseded by {version}");
        demote_others(&mut index, &model, &version, state, &reason);
        if state == State::Champion {
            index
                .champions
                .entry(model.clone())
                .or_default()
                .push(version);
        }
        index.models.entry(model).or_default().push(record);
        self.save(index)
    }

    fn save(&mut self, index: Index) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(&index)?;
        let path = self.root.join("registry.json");
        write_atomically(&path, &bytes)?;
        self.index = index;
        self.stamp = stamp_of(&path);
        Ok(())
    }

    pub fn record(&self, model: &str, version: &str) -> Option<&VersionRecord> {
        self.index
            .models
            .get(model)?
            .iter()
            .find(|r| r.version == version)
    }

    /// Every version of `model` (every model when `None`), oldest first.
    pub fn versions(&self, model: Option<&str>) -> Vec<VersionRecord> {
        self.index
            .models
            .iter()
            .filter(|(m, _)| model.is_none_or(|want| want == m.as_str()))
            .flat_map(|(_, vs)| vs.iter().cloned())
            .collect()
    }

    pub fn in_state(&self, model: &str, state: State) -> Option<&VersionRecord> {
        self.index
            .models
            .get(model)?
            .iter()
            .rev()
            .find(|r| r.state == state)
    }

    /// Makes `version` the champion, by `by`, retiring the champion before
    /// it; with `expected`, only if the version is still in that state.
    pub fn promote(
        &mut self,
        model: &str,
        version: &str,
        expected: Option<State>,
        by: &str,
        reason: &str,
    ) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        self.reload()?;
        self.expect(model, version, expected)?;
        let mut index = self.index.clone();
        let now = Utc::now();
        demote_others(
            &mut index,
            model,
            version,
            State::Champion,
            &format!("replaced by {version}"),
        );
        let record = index
            .models
            .get_mut(model)
            .and_then(|vs| vs.iter_mut().find(|r| r.version == version))
            .with_context(|| format!("{model} has no version {version}"))?;
        record.state = State::Champion;
        record.promoted_by = Some(by.to_string());
        record.promoted_at = Some(now);
        record.reason = reason.to_string();
        index
            .champions
            .entry(model.to_string())
            .or_default()
            .push(version.to_string());
        self.save(index)
    }

    /// Fails unless `version` of `model` is in state `expected` (if given).
    fn expect(&self, model: &str, version: &str, expected: Option<State>) -> anyhow::Result<()> {
        let Some(record) = self.record(model, version) else {
            anyhow::bail!("{model} has no version {version}");
        };
        match expected {
            Some(state) if record.state != state => anyhow::bail!(
                "{version} of {model} is {:?} now, not {state:?}: another change came first",
                record.state
            ),
            _ => Ok(()),
        }
    }

    /// The champion before the current one, if any.
    pub fn previous_champion(&self, model: &str) -> Option<&str> {
        let history = self.index.champions.get(model)?;
        let current = self.in_state(model, State::Champion)?.version.as_str();
        history
            .iter()
            .rev()
            .skip_while(|v| v.as_str() == current)
            .find(|v| v.as_str() != current)
            .map(String::as_str)
    }

    /// Restores the previous champion (by `by`); the current one retires.
    /// `None` when there is no earlier champion.
    pub fn roll_back(&mut self, model: &str, by: &str) -> anyhow::Result<Option<String>> {
        let _lock = self.lock()?;
        self.reload()?;
        let Some(current) = self
            .in_state(model, State::Champion)
            .map(|r| r.version.clone())
        else {
            return Ok(None);
        };
        let Some(previous) = self.previous_champion(model).map(str::to_string) else {
            return Ok(None);
        };
        let mut index = self.index.clone();
        let now = Utc::now();
        if let Some(history) = index.champions.get_mut(model) {
            // Forget the rolled-back champion's turns at the top, so a
            // second rollback goes further back.
            while history.last().is_some_and(|v| *v == current) {
                history.pop();
            }
        }
        for r in index.models.get_mut(model).into_iter().flatten() {
            if r.version == current {
                r.state = State::Retired;
                r.reason = format!("rolled back by {by} to {previous}");
            } else if r.version == previous {
                r.state = State::Champion;
                r.promoted_by = Some(by.to_string());
                r.promoted_at = Some(now);
                r.reason = format!("restored by {by}, rolling back {current}");
            }
        }
        self.save(index)?;
        Ok(Some(previous))
    }

    /// Moves `version` from state `expected` to `state` (a challenger
    /// retired); refused if another change got there first.
    pub fn set_state(
        &mut self,
        model: &str,
        version: &str,
        expected: State,
        state: State,
        reason: &str,
    ) -> anyhow::Result<()> {
        let _lock = self.lock()?;
        self.reload()?;
        self.expect(model, version, Some(expected))?;
        let mut index = self.index.clone();
        let record = index
            .models
            .get_mut(model)
            .and_then(|vs| vs.iter_mut().find(|r| r.version == version))
            .with_context(|| format!("{model} has no version {version}"))?;
        record.state = state;
        record.reason = reason.to_string();
        self.save(index)
    }

    /// The model card and provenance of a version.
    pub fn card(
        &self,
        model: &str,
        version: &str,
    ) -> anyhow::Result<(ModelCard, Option<Provenance>)> {
        let dir = self.version_dir(model, version)?;
        let card_path = dir.join(format!("{model}.json"));
        let card: ModelCard = serde_json::from_slice(
            &std::fs::read(&card_path)
                .with_context(|| format!("reading {}", card_path.display()))?,
        )
        .with_context(|| format!("parsing {}", card_path.display()))?;
        let provenance = match std::fs::read(dir.join("lifecycle.json")) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes)?),
            Err(_) => None,
        };
        Ok((card, provenance))
    }
}

/// Retires every other version of `model` in `state` (for the two
/// serving states, of which a model has at most one each).
fn demote_others(index: &mut Index, model: &str, keep: &str, state: State, reason: &str) {
    if state == State::Retired {
        return;
    }
    for r in index.models.get_mut(model).into_iter().flatten() {
        if r.version != keep && r.state == state {
            r.state = State::Retired;
            r.reason = reason.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: &str, state: State) -> VersionRecord {
        VersionRecord {
            model: "m".into(),
            version: version.into(),
            state,
            created_at: Utc::now(),
            reason: "test".into(),
            promoted_by: None,
            promoted_at: None,
            run_id: None,
        }
    }

    fn commit(store: &mut Store, version: &str, state: State) {
        let staging = store.stage().unwrap();
        std::fs::write(staging.dir.join("m.json"), "{}").unwrap();
        store.commit(staging, record(version, state)).unwrap();
    }

    fn states(store: &Store) -> Vec<(String, State)> {
        store
            .versions(Some("m"))
            .into_iter()
            .map(|r| (r.version, r.state))
            .collect()
    }

    #[test]
    fn versions_are_kept_whole_and_states_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        commit(&mut store, "v1", State::Champion);
        commit(&mut store, "v2", State::Challenger);
        commit(&mut store, "v3", State::Challenger);
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(
            states(&reopened),
            [
                ("v1".to_string(), State::Champion),
                ("v2".to_string(), State::Retired),
                ("v3".to_string(), State::Challenger)
            ]
        );
        assert!(dir.path().join("m/v3/m.json").is_file());
        assert!(store
            .commit(store.stage().unwrap(), record("v3", State::Retired))
            .is_err());
    }

    #[test]
    fn promotion_and_rollback_walk_the_champions_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        commit(&mut store, "v1", State::Champion);
        assert_eq!(store.roll_back("m", "ops").unwrap(), None);
        commit(&mut store, "v2", State::Challenger);
        store.promote("m", "v2", None, "alice", "by hand").unwrap();
        commit(&mut store, "v3", State::Challenger);
        store
            .promote("m", "v3", Some(State::Challenger), "gate", "gate passed")
            .unwrap();
        assert_eq!(store.in_state("m", State::Champion).unwrap().version, "v3");
        // A decision about a version whose state changed meanwhile is refused.
        assert!(store
            .set_state("m", "v3", State::Challenger, State::Retired, "late")
            .is_err());
        assert_eq!(store.roll_back("m", "bob").unwrap().as_deref(), Some("v2"));
        let champion = store.in_state("m", State::Champion).unwrap();
        assert_eq!(
            (champion.version.as_str(), champion.promoted_by.as_deref()),
            ("v2", Some("bob"))
        );
        assert_eq!(store.roll_back("m", "bob").unwrap().as_deref(), Some("v1"));
        assert_eq!(store.roll_back("m", "bob").unwrap(), None);
        assert_eq!(states(&store)[0], ("v1".to_string(), State::Champion));
    }

    #[test]
    fn a_crash_while_writing_a_version_leaves_the_registry_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        commit(&mut store, "v1", State::Champion);
        // A run that died with its weights half-written...
        // (its lock file stays, but nobody holds the lock once it is dead)
        let left = dir.path().join(".staging-0123");
        std::fs::create_dir_all(&left).unwrap();
        std::fs::write(left.join("m.safetensors"), b"half").unwrap();
        std::fs::write(dir.path().join(".staging-0123.lock"), b"").unwrap();
        // ...and one that died between moving its version in and the index.
        std::fs::create_dir_all(dir.path().join("m/v9")).unwrap();
        let reopened = Store::open(dir.path()).unwrap();
        assert!(!left.exists());
        assert!(!dir.path().join(".staging-0123.lock").exists());
        assert!(!dir.path().join("m/v9").exists());
        assert_eq!(states(&reopened), [("v1".to_string(), State::Champion)]);
    }

    #[test]
    fn two_processes_sharing_a_registry_see_each_others_changes() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Store::open(dir.path()).unwrap();
        commit(&mut server, "v1", State::Champion);
        let mut cli = Store::open(dir.path()).unwrap();
        // A version being written by one is left alone by the other's sweep.
        let writing = server.stage().unwrap();
        let _ = Store::open(dir.path()).unwrap();
        assert!(writing.dir.exists());
        std::fs::write(writing.dir.join("m.json"), "{}").unwrap();
        server
            .commit(writing, record("v2", State::Challenger))
            .unwrap();
        // The other commits on the index as it is on disk, not as it read it.
        commit(&mut cli, "v3", State::Challenger);
        assert!(server.refresh().unwrap());
        assert!(!server.refresh().unwrap());
        assert_eq!(
            states(&server),
            [
                ("v1".to_string(), State::Champion),
                ("v2".to_string(), State::Retired),
                ("v3".to_string(), State::Challenger)
            ]
        );
    }

    #[test]
    fn names_that_could_escape_the_registry_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for bad in ["../x", "", ".hidden", "a/b"] {
            assert!(store.version_dir("m", bad).is_err(), "{bad}");
        }
    }
}
