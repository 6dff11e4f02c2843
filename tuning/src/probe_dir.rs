//! Probe files in a directory we may not own: every file and directory
//! weir-tune creates is recorded and removed when the [`ProbeDir`] drops,
//! on success, on error and on panic (unwinding). SIGINT and SIGTERM set
//! [`interrupted`] instead of killing the process, so long probes stop at
//! the next block and unwind through this cleanup too.
//!
//! Names start with `.weir-tune-probe-<pid>-` so a leftover (after SIGKILL)
//! is recognisable and never collides with weir's own files.

use std::{
    fs::{self, File, OpenOptions},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static NEXT_FILE_NUMBER: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_signal(_signal: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT and SIGTERM only set [`interrupted`].
pub fn catch_interrupts() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// True once SIGINT or SIGTERM arrived (after [`catch_interrupts`]).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err` if interrupted: the caller returns it and the guards clean up.
pub fn check_interrupted() -> Result<(), String> {
    if interrupted() {
        Err("interrupted (SIGINT/SIGTERM): probe files removed".to_string())
    } else {
        Ok(())
    }
}

/// A directory holding probe files; removes what it created on drop.
pub struct ProbeDir {
    dir: PathBuf,
    /// Directories created for the probe, outermost first.
    created_dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

impl ProbeDir {
    /// Uses `dir`, creating it (and missing parents) if needed; whatever was
    /// created is removed again on drop.
    pub fn open(dir: &Path) -> Result<ProbeDir, String> {
        let mut missing = Vec::new();
        let mut cursor = Some(dir);
        while let Some(path) = cursor {
            if path.as_os_str().is_empty() || path.exists() {
                break;
            }
            missing.push(path.to_path_buf());
            cursor = path.parent();
        }
        missing.reverse();
        let mut probe_dir = ProbeDir {
            dir: dir.to_path_buf(),
            created_dirs: Vec::new(),
            files: Vec::new(),
        };
        for path in missing {
            fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            probe_dir.created_dirs.push(path);
        }
        if !dir.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        Ok(probe_dir)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// True when the directory did not exist before.
    pub fn was_created(&self) -> bool {
        !self.created_dirs.is_empty()
    }

    /// Creates a new probe file (O_EXCL) with extra open flags (e.g. O_DIRECT).
    pub fn create_file(&mut self, purpose: &str, custom_flags: i32) -> Result<(File, PathBuf), String> {
        let number = NEXT_FILE_NUMBER.fetch_add(1, Ordering::SeqCst);
        let name = format!(".weir-tune-probe-{}-{number}-{purpose}", std::process::id());
        let path = self.dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .custom_flags(custom_flags)
            .open(&path)
            .map_err(|e| format!("cannot create probe file {}: {e}", path.display()))?;
        self.files.push(path.clone());
        Ok((file, path))
    }

    /// Removes one probe file now (frees its space before the next one).
    pub fn remove_file(&mut self, path: &Path) {
        let _ = fs::remove_file(path);
        self.files.retain(|file| file != path);
    }
}

impl Drop for ProbeDir {
    fn drop(&mut self) {
        for file in self.files.drain(..) {
            let _ = fs::remove_file(&file);
        }
        // Only directories we created, innermost first, and only if empty.
        for dir in self.created_dirs.drain(..).rev() {
            let _ = fs::remove_dir(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_files_and_created_directories_are_removed_on_drop() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("a/b");
        {
            let mut probe_dir = ProbeDir::open(&dir).unwrap();
            assert!(probe_dir.was_created());
            let (_file, path) = probe_dir.create_file("test", 0).unwrap();
            assert!(path.exists());
            let (_file, second) = probe_dir.create_file("test", 0).unwrap();
            probe_dir.remove_file(&second);
            assert!(!second.exists());
        }
        assert!(!base.path().join("a").exists());
        assert_eq!(fs::read_dir(base.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_existing_directory_is_kept() {
        let base = tempfile::tempdir().unwrap();
        {
            let mut probe_dir = ProbeDir::open(base.path()).unwrap();
            assert!(!probe_dir.was_created());
            probe_dir.create_file("test", 0).unwrap();
        }
        assert!(base.path().exists());
        assert_eq!(fs::read_dir(base.path()).unwrap().count(), 0);
    }
}
