//! Guest directories that exist only because a bind lies below them.
//!
//! `-b DATA:/opt/tool/data` on a host without `/opt/tool`: the guest must see
//! `/opt/tool` as a directory holding `data`. ptnix backs each such directory with an
//! empty, read-only stand-in directory in its private directory (mode 0700, removed
//! at exit), bound at the guest path like any other bind; the bind below it then
//! shows up in its listing as every mount point does (see `dirents`). Nothing is
//! created in the user's directories or in a launcher's root (`proot -r EMPTYROOT`).

use crate::shortlinks::ShortLinks;
use ptnix_syscalls::mapping::Mapping;
use ptnix_syscalls::path::{components, has_prefix, push};
use std::ffi::CString;

fn chmod(p: &[u8], mode: libc::mode_t) -> Result<(), i32> {
    let c = CString::new(p).map_err(|_| libc::EINVAL)?;
    // SAFETY: chmod of a valid C string.
    if unsafe { libc::chmod(c.as_ptr(), mode) } != 0 {
        return Err(crate::ptrace::last_errno());
    }
    Ok(())
}

/// Adds stand-ins for every missing directory above a bind's guest path. Returns the
/// completed mapping; the stand-ins are recorded in `links` for removal.
pub fn complete(mapping: Mapping, links: &mut ShortLinks) -> Result<Mapping, String> {
    let fail = |what: &str, e: i32| format!("cannot make the stand-in for {what}: {}", std::io::Error::from_raw_os_error(e));
    let mut m = mapping;
    let guests: Vec<Vec<u8>> = m.binds().iter().map(|b| b.guest.clone()).filter(|g| g != b"/").collect();
    let mut made: Vec<Vec<u8>> = Vec::new();
    for g in guests {
        let comps: Vec<&[u8]> = components(&g).collect();
        let mut above = b"/".to_vec();
        for c in &comps[..comps.len().saturating_sub(1)] {
            push(&mut above, c);
            let host = m.to_host(&above);
            if crate::hostfs::lstat(&host).is_ok() {
                continue;
            }
            let shown = String::from_utf8_lossy(&above).into_owned();
            if made.iter().any(|d| has_prefix(&host, d)) {
                // Below a stand-in already made: a plain directory in it.
                links.stand_in_dir(&host).map_err(|e| fail(&shown, e))?;
                continue;
            }
            let dir = links.new_stand_in().map_err(|e| fail(&shown, e))?;
            made.push(dir.clone());
            let mut binds: Vec<(Vec<u8>, Vec<u8>)> = m.binds().iter().map(|b| (b.host.clone(), b.guest.clone())).collect();
            binds.push((dir, above.clone()));
            m = Mapping::new(binds).map_err(|e| e.to_string())?;
        }
    }
    // Read-only, as a directory that holds only mount points is to an ordinary user:
    // a tracee that tries to create something there gets EACCES, not a file that
    // vanishes when ptnix exits.
    for d in links.stand_ins() {
        chmod(d, 0o555).map_err(|e| fail(&String::from_utf8_lossy(d), e))?;
    }
    Ok(m)
}
