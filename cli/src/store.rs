//! Choosing and preparing the store directory.

use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The store root: `--store`, else `$PTNIX_STORE`, else
/// `${XDG_DATA_HOME:-$HOME/.local/share}/nix/root` (Nix's own chroot store location, so
/// the two share one store). `$HOME` is read from the environment: a static binary must
/// not call getpwnam.
pub fn choose(flag: Option<&OsString>) -> Result<PathBuf, String> {
    if let Some(d) = flag {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("PTNIX_STORE").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/share"),
            None => return Err("HOME is not set; pass --store DIR or set PTNIX_STORE".into()),
        },
    };
    Ok(data.join("nix/root"))
}

fn describe(e: &std::io::Error) -> String {
    // "Permission denied (os error 13)" -> "Permission denied"
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// Refuses a store directory another user controls, as Nix refuses a store path with
/// a symlink in it: each of `ROOT`, `ROOT/nix`, `ROOT/nix/store`, `ROOT/nix/var` and
/// `ROOT/nix/var/nix` must be a real directory (not a symlink, except that `ROOT`
/// itself may be reached through one), owned by you or by root, and not writable by
/// everyone (nor, below `ROOT`, by its group: ptnix makes them 0755). Otherwise a
/// directory planted by someone else in a shared place such as /tmp would become your
/// store. `root` is true for `ROOT` itself.
fn trusted(d: &Path, root: bool) -> Result<(), String> {
    let may_be_link = root;
    use std::os::unix::fs::MetadataExt;
    let shown = d.display();
    let m = std::fs::symlink_metadata(d).map_err(|e| format!("cannot use store directory {shown}: {}", describe(&e)))?;
    if m.file_type().is_symlink() && !may_be_link {
        return Err(format!("store directory {shown} is a symlink: Nix needs a store path without symlinks, and a planted one would hand your store to whoever made it"));
    }
    let m = if m.file_type().is_symlink() { std::fs::metadata(d).map_err(|e| format!("cannot use store directory {shown}: {}", describe(&e)))? } else { m };
    if !m.is_dir() {
        return Err(format!("store directory {shown} is not a directory"));
    }
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if m.uid() != me && m.uid() != 0 {
        return Err(format!("store directory {shown} belongs to uid {}, not you (uid {me}): use a directory of your own", m.uid()));
    }
    if m.mode() & 0o002 != 0 {
        return Err(format!("store directory {shown} is writable by everyone: chmod o-w it, or use another"));
    }
    if !root && m.mode() & 0o020 != 0 {
        return Err(format!("store directory {shown} is writable by its group: its members could change your store; chmod g-w it"));
    }
    Ok(())
}

/// The directories above the store root must not let another user move it away or
/// put another in its place: each is yours or root's, and one writable by everyone
/// has the sticky bit (as /tmp does). A group-writable one is accepted (project
/// directories on HPC systems are), since its group is a choice of your site.
fn trusted_above(root: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    for d in root.ancestors().skip(1) {
        let Ok(m) = std::fs::metadata(d) else { continue };
        if m.uid() != me && m.uid() != 0 {
            return Err(format!(
                "the store directory lies in {}, which belongs to uid {}: they could replace your store; use a directory of your own",
                d.display(),
                m.uid()
            ));
        }
        if m.mode() & 0o002 != 0 && m.mode() & 0o1000 == 0 {
            return Err(format!("the store directory lies in {}, which everyone may write to (and it has no sticky bit): they could replace your store", d.display()));
        }
    }
    Ok(())
}

/// Creates `root/nix/store` and `root/nix/var/nix` (without `/nix/var/nix`, Nix falls
/// back to its chroot store, which needs namespaces) and returns the canonical root:
/// the kernel reports canonical host paths (/proc/PID/cwd), so the bind must be one too.
pub fn prepare(root: &Path) -> Result<PathBuf, String> {
    let root = if root.is_absolute() {
        root.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {}", describe(&e)))?.join(root)
    };
    if root.exists() && !root.is_dir() {
        return Err(format!("store directory {} is not a directory", root.display()));
    }
    // Before creating anything below an existing directory: nothing another user
    // planted there is used.
    for d in [root.clone(), root.join("nix"), root.join("nix/var")] {
        if std::fs::symlink_metadata(&d).is_ok() {
            trusted(&d, d == root)?;
        }
    }
    for sub in ["nix/store", "nix/var/nix"] {
        let d = root.join(sub);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&d)
            .map_err(|e| format!("cannot create store directory {}: {}", d.display(), describe(&e)))?;
    }
    let canon = std::fs::canonicalize(&root)
        .map_err(|e| format!("cannot resolve store directory {}: {}", root.display(), describe(&e)))?;
    trusted(&canon, true)?;
    trusted_above(&canon)?;
    for sub in ["nix", "nix/store", "nix/var", "nix/var/nix"] {
        trusted(&canon.join(sub), false)?;
    }
    for sub in ["nix/store", "nix/var/nix"] {
        let d = canon.join(sub);
        let c = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).map_err(|_| "NUL in path".to_string())?;
        // SAFETY: access(2) on a valid C string.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(format!("store directory {} is not writable: {}", d.display(), describe(&e)));
        }
    }
    Ok(canon)
}
