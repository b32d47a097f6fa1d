//! The C programs in `tests/c/`, for what shells and python never do (openat2,
//! execveat, renameat2, overlong socket paths, exec from a thread, mass forks...).
//! Each is compiled once per test process into the world-readable bin directory.

use crate::env::env;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

static CACHE: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);

/// `tests/c/NAME.c` compiled with `cc -O1 -pthread`; returns the binary's path.
pub fn c_prog(name: &str) -> PathBuf {
    c_prog_with(name, name, &[])
}

/// `tests/c/NAME.c` compiled with extra flags into a binary called `out` (one name per
/// flag set: the cache is keyed by it).
pub fn c_prog_with(name: &str, out: &str, extra: &[&str]) -> PathBuf {
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(p) = cache.get(out) {
        return p.clone();
    }
    let src_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("c");
    let src = src_dir.join(format!("{name}.c"));
    assert!(src.is_file(), "no C source {}", src.display());
    let dst = env().bin_dir.join(out);
    let tmp = env().bin_dir.join(format!(".{out}.tmp"));
    let cc = crate::prereq::find_in_path("cc").unwrap_or_else(|| {
        panic!(
            "`cc` is needed to build {} but is not in PATH: install gcc (apt-get install gcc)",
            src.display()
        )
    });
    let res = Command::new(&cc)
        .args([
            "-O1",
            "-pthread",
            "-Wall",
            "-Werror=implicit-function-declaration",
            "-I",
        ])
        .arg(&src_dir)
        .args(extra)
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", cc.display()));
    assert!(
        res.status.success(),
        "compiling {} failed ({}):\n{}",
        src.display(),
        res.status,
        String::from_utf8_lossy(&res.stderr)
    );
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(&tmp, &dst).unwrap();
    cache.insert(out.to_string(), dst.clone());
    dst
}
