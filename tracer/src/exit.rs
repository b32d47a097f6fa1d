//! Syscall exit: rewrite the host paths coming out of the kernel.

use crate::engine::Engine;
use crate::hostfs;
use crate::mem;
use crate::ptrace::{self, Pid};
use crate::tracee::ExitWork;
use ptnix_syscalls::sockaddr;

impl Engine {
    pub(crate) fn exit_stop(&mut self, pid: Pid) {
        self.stats.exit += 1;
        let work = self.tracees.get_mut(&pid).and_then(|t| t.exit.take());
        if let Some(w) = work {
            if let Ok(mut regs) = ptrace::get_regs(pid) {
                let ret = regs.rax as i64;
                let new = match w {
                    ExitWork::Return(v) => Some(v),
                    ExitWork::Getdents { fd, buf, count, format, pos, listing } => {
                        self.getdents_exit(pid, &regs, (fd, buf, count, format, pos), listing)
                    }
                    ExitWork::Records { buf, records } => {
                        if ret < 0 {
                            None
                        } else if mem::write(pid, buf, &records).is_ok() {
                            Some(records.len() as i64)
                        } else {
                            Some(-i64::from(libc::EFAULT))
                        }
                    }
                    ExitWork::Uname(buf) => {
                        if let (0, Some(rel)) = (ret, self.launcher.release.as_ref()) {
                            // struct utsname: six 65-byte fields; release is the third.
                            let mut field = [0u8; 65];
                            let n = rel.len().min(64);
                            field[..n].copy_from_slice(&rel[..n]);
                            let _ = mem::write(pid, buf + 130, &field);
                        }
                        None
                    }
                    ExitWork::UmaskSet => {
                        // Every thread sharing its fs (threads, CLONE_FS children) has
                        // it now: forget all, umask calls are rare.
                        if let Some(u) = &self.umasks {
                            u.clear();
                        }
                        None
                    }
                    ExitWork::Unlink(p) => {
                        if let Ok(c) = std::ffi::CString::new(p) {
                            // SAFETY: unlink of a valid C string.
                            unsafe { libc::unlink(c.as_ptr()) };
                        }
                        None
                    }
                    ExitWork::Restore { regs: saved, fallback } => {
                        self.restore(pid, &regs, &saved, fallback);
                        None
                    }
                    ExitWork::MoveFd { cloexec } => {
                        self.move_fd_exit(pid, &regs, cloexec);
                        None
                    }
                    ExitWork::CopyRaised { saved } => {
                        self.copy_raised_exit(pid, &regs, *saved);
                        None
                    }
                    ExitWork::Injected { saved, step } => {
                        self.injected_exit(pid, &regs, *saved, step);
                        None
                    }
                    ExitWork::GetAffinity { tid, buf } => {
                        self.get_affinity_exit(pid, ret, tid, buf);
                        None
                    }
                    ExitWork::SetAffinity { tid, was_near } => {
                        self.set_affinity_exit(ret, tid, was_near);
                        None
                    }
                    ExitWork::Getcwd { buf, size } => self.getcwd_exit(pid, ret, buf, size),
                    ExitWork::Sockaddr { addr, len_ptr, cap } => {
                        self.sockaddr_exit(pid, ret, addr, len_ptr, cap);
                        None
                    }
                };
                if let Some(v) = new {
                    regs.rax = v as u64;
                    let _ = ptrace::set_regs(pid, &regs);
                }
            }
        }
        self.resume(pid, 0)
    }

    /// getcwd(2) returns the length including the NUL. The guest path replaces the
    /// host path; if the host path did not fit (ERANGE) the guest path may, so it is
    /// read from /proc then.
    fn getcwd_exit(&mut self, pid: Pid, ret: i64, buf: u64, size: u64) -> Option<i64> {
        let host = if ret > 0 {
            let mut b = vec![0u8; ret as usize];
            mem::read(pid, buf, &mut b).ok()?;
            b.pop();
            b
        } else if ret == -i64::from(libc::ERANGE) {
            hostfs::readlink(format!("/proc/{pid}/cwd").as_bytes()).ok()?
        } else {
            return None;
        };
        if host.first() != Some(&b'/') {
            return None; // "(unreachable)/..." and such stay as the kernel said
        }
        let mut guest = self.mapping.to_guest(&host);
        if guest == host && ret > 0 {
            return None;
        }
        guest.push(0);
        if guest.len() as u64 > size {
            return Some(-i64::from(libc::ERANGE));
        }
        mem::write(pid, buf, &guest).ok()?;
        Some(guest.len() as i64)
    }

    /// getsockname/getpeername/accept: the kernel wrote `*len_ptr` (the full length)
    /// and at most `cap` bytes of address.
    fn sockaddr_exit(&mut self, pid: Pid, ret: i64, addr: u64, len_ptr: u64, cap: u32) {
        if ret < 0 {
            return;
        }
        let Ok(full) = mem::read_u32(pid, len_ptr) else { return };
        let n = full.min(cap) as usize;
        let mut raw = vec![0u8; n];
        if mem::read(pid, addr, &mut raw).is_err() {
            return;
        }
        let Some(p) = sockaddr::unix_path(&raw) else { return };
        let host = self.shortlinks.lengthen(p).unwrap_or_else(|| p.to_vec());
        let guest = match self.bound_names.get(&host) {
            Some(name) => name.clone(),
            None => self.mapping.to_guest(&host),
        };
        if guest == p {
            return;
        }
        let Some(built) = sockaddr::build(&guest) else { return };
        let _ = mem::write(pid, addr, &built[..built.len().min(cap as usize)]);
        let _ = mem::write(pid, len_ptr, &(built.len() as u32).to_ne_bytes());
    }
}
