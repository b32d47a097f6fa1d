//! ptrace engine
