//! What can go wrong with a store, each with what the operator should do next.

use std::path::{Path, PathBuf};

use crate::Column;

/// Most key bytes shown in an error message; longer keys are cut and marked.
const MAX_KEY_HEX_BYTES: usize = 64;

/// An error from the store. Every message ends with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory does not exist and the options did not allow creating it.
    #[error(
        "no Banyan data directory at {path}; run `banyan init` to create one, or point --data-dir \
         at the right directory"
    )]
    NotFound {
        /// The directory asked for.
        path: PathBuf,
    },

    /// The path exists but holds something other than a Banyan store.
    #[error(
        "{path} is not a Banyan data directory ({reason}); point --data-dir at an empty directory \
         or the right one"
    )]
    NotADataDir {
        /// The path asked for.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },

    /// The store was written in an on-disk format this build does not read.
    #[error(
        "{path} holds a Banyan store in format version {found}, but this build reads version \
         {supported}; {advice}"
    )]
    UnsupportedFormat {
        /// The data directory.
        path: PathBuf,
        /// The format version on disk.
        found: u32,
        /// The format version this build reads and writes.
        supported: u32,
        /// What to do about it (upgrade, or migrate).
        advice: &'static str,
    },

    /// Another process (or another handle in this process) has the store open.
    #[error(
        "{path} is in use by another Banyan process ({detail}); stop that process, or point \
         --data-dir at a different directory"
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// RocksDB's message.
        detail: String,
    },

    /// A stored value does not decode as the type asked for.
    #[error(
        "value in column `{column}` at key {key_hex} is corrupt ({reason}); the data directory is \
         damaged or was written by incompatible software — stop the node, then restore the \
         directory from a backup or resync into an empty --data-dir"
    )]
    Corrupt {
        /// The column read.
        column: Column,
        /// The key read, in hex (cut after 64 bytes).
        key_hex: String,
        /// Why decoding failed.
        reason: String,
    },

    /// RocksDB found damaged files: a log record or table block whose checksum fails, a missing
    /// or truncated file, or an inconsistent manifest.
    #[error(
        "the data directory {path} is damaged: {detail}; the node will not serve damaged state — \
         restore the directory from a backup or resync into an empty --data-dir"
    )]
    CorruptDatabase {
        /// The data directory.
        path: PathBuf,
        /// RocksDB's description of the damage.
        detail: String,
    },

    /// The operating system refused a file operation.
    #[error(
        "I/O error on {path}: {detail}; check free disk space, permissions and the disk's \
         health, then restart the node"
    )]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What failed.
        detail: String,
    },

    /// RocksDB failed in a way the store does not classify further.
    #[error(
        "storage engine error on {path}: {detail}; restart the node, and if this repeats report it \
         with the RocksDB log at {path}/LOG"
    )]
    Engine {
        /// The data directory.
        path: PathBuf,
        /// RocksDB's message.
        detail: String,
    },
}

impl StoreError {
    /// Whether the data on disk is damaged: the node must stop and be restored or resynced;
    /// retrying cannot help.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt { .. } | StoreError::CorruptDatabase { .. }
        )
    }

    /// Classify a RocksDB error met while working on the store at `path`.
    pub(crate) fn from_rocks(path: &Path, err: rocksdb::Error) -> Self {
        let detail = err.to_string();
        let path = path.to_path_buf();
        match err.kind() {
            rocksdb::ErrorKind::Corruption => StoreError::CorruptDatabase { path, detail },
            rocksdb::ErrorKind::IOError if is_lock_error(&detail) => {
                StoreError::Locked { path, detail }
            }
            rocksdb::ErrorKind::IOError => StoreError::Io { path, detail },
            _ => StoreError::Engine { path, detail },
        }
    }

    /// A std I/O error on `path`.
    pub(crate) fn from_io(path: &Path, err: &std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            detail: err.to_string(),
        }
    }

    /// A value at (`column`, `key`) that does not decode.
    pub(crate) fn corrupt_value(column: Column, key: &[u8], reason: impl ToString) -> Self {
        StoreError::Corrupt {
            column,
            key_hex: key_hex(key),
            reason: reason.to_string(),
        }
    }
}

/// RocksDB reports a held `LOCK` file as an I/O error; these are its two messages for it
/// (env/fs_posix.cc: held by this process, or by another).
fn is_lock_error(detail: &str) -> bool {
    detail.contains("lock hold by current process") || detail.contains("While lock file")
}

/// Hex of `key`, cut after [`MAX_KEY_HEX_BYTES`] bytes.
fn key_hex(key: &[u8]) -> String {
    use std::fmt::Write;
    let shown = &key[..key.len().min(MAX_KEY_HEX_BYTES)];
    let mut out = String::with_capacity(shown.len() * 2 + 16);
    for b in shown {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    if key.len() > shown.len() {
        let _ = write!(out, "… ({} bytes)", key.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hex_cuts_long_keys() {
        assert_eq!(key_hex(&[0x00, 0xab]), "00ab");
        let long = [0x11u8; 100];
        let shown = key_hex(&long);
        assert!(shown.starts_with(&"11".repeat(64)));
        assert!(shown.ends_with("(100 bytes)"));
    }

    #[test]
    fn lock_messages_are_recognised() {
        assert!(is_lock_error(
            "IO error: While lock file: /d/LOCK: Resource temporarily unavailable"
        ));
        assert!(is_lock_error(
            "IO error: lock hold by current process, acquire time 1 acquiring thread 2: /d/LOCK: \
             No locks available"
        ));
        assert!(!is_lock_error("IO error: No space left on device"));
    }
}
