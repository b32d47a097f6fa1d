//! Seccomp filters of the tracee's own.
//!
//! Nix's builder installs one (filter-syscalls), and so do sandboxes such as
//! Chromium's. seccomp(2): when several filters are installed, "the return value
//! with the highest precedence" wins, so a filter's ERRNO or KILL simply beats
//! ptnix's TRACE, as it would natively. The one case that needs ptnix is
//! SECCOMP_RET_TRACE from the tracee's filter: "If there is no tracer present, the
//! system call is not executed and returns a failure status with errno set to
//! ENOSYS." With ptnix there is a tracer, so the kernel stops the tracee for it
//! instead. ptnix tells such stops from its own by their SECCOMP_RET_DATA (its own
//! are `PTNIX_TRACE_DATA`; of two equal actions the kernel keeps the newest filter's
//! data) and answers them as the missing tracer would: ENOSYS, the syscall not run.
//! Reading the data costs a ptrace call, so ptnix does it only for tracees that
//! installed a filter (it stops `seccomp` and `prctl(PR_SET_SECCOMP)` for that) or
//! descend from one, and, once any tracee has, for tracees whose fork event it has not
//! processed yet (a child's first stops can come before it). In pure-ptrace mode every
//! seccomp stop is the tracee's own.
//!
//! A Landlock domain of the tracee's own is the other restriction a tracee can give
//! itself (it needs no_new_privs, which every tracee of the filter has): see
//! `mark_landlocked`.

use crate::engine::Engine;
use crate::ptrace::{self, Pid};
use crate::regs::skip;
use ptnix_syscalls::bpf::PTNIX_TRACE_DATA;

impl Engine {
    /// `pid` installs a filter: with SECCOMP_FILTER_FLAG_TSYNC it applies to its
    /// whole thread group, so the whole group is marked.
    pub(crate) fn mark_own_filter(&mut self, pid: Pid) {
        self.any_own_filter = true;
        // The in-process object (see `shim`) stops making calls of its own here: the
        // filter may refuse or kill them (openat2). It reads the word after its
        // gadget; POKEDATA writes the read-only page (ptrace's forced access). Not
        // mapped (no object in this process): nothing to do.
        if self.shim.is_some() {
            let _ = ptrace::poke(pid, ptnix_syscalls::bpf::GADGET_ADDR + 8, 0);
        }
        let tgid = self.tgid(pid);
        // Threads made by clone are not in a thread group until ptnix asks /proc.
        let tids: Vec<Pid> = self.tracees.keys().copied().collect();
        for t in tids {
            if t == pid || self.tgid(t) == tgid {
                if let Some(tr) = self.tracees.get_mut(&t) {
                    tr.own_filter = true;
                }
            }
        }
    }

    /// `pid` restricts itself with Landlock (which applies to the calling thread and
    /// what it starts): its execs get no in-process object where that object is
    /// reached through `/proc/PTNIX/fd/N`, which its loader could not open (ld.so
    /// would print an error at each). A call that fails still marks it: the fast path
    /// is lost, nothing else.
    pub(crate) fn mark_landlocked(&mut self, pid: Pid) {
        if let Some(t) = self.tracees.get_mut(&pid) {
            t.landlocked = true;
        }
    }

    /// This seccomp stop was asked for by a filter of the tracee's own.
    pub(crate) fn foreign_trace(&self, pid: Pid) -> bool {
        let Some(t) = self.tracees.get(&pid) else { return false };
        if !(t.own_filter || (self.any_own_filter && !t.linked)) {
            return false;
        }
        ptrace::event_msg(pid).is_ok_and(|d| d as u32 & 0xffff != PTNIX_TRACE_DATA)
    }

    /// Answers a seccomp stop as if there were no tracer: ENOSYS, the syscall not run.
    /// A syscall number of -1 makes the kernel skip it without running the filters
    /// again (kernel/seccomp.c: "if (this_syscall < 0) goto skip").
    pub(crate) fn no_tracer(&mut self, pid: Pid) {
        if let Ok(mut regs) = ptrace::get_regs(pid) {
            skip(&mut regs, -i64::from(libc::ENOSYS));
            let _ = ptrace::set_regs(pid, &regs);
        }
        self.resume(pid, 0);
    }
}
