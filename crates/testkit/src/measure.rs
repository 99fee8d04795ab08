//! Running a process and measuring it: wall time is the caller's; CPU time comes from
//! the kernel's accounting of that one child (`wait4`), peak RSS from the child's own
//! high-water mark (`VmHWM`).
//!
//! Not `ru_maxrss`: Linux keeps, in the child's `ru_maxrss`, the peak RSS of the image
//! it replaced at `exec`, which is the parent's (copied at fork), even if the parent
//! has since freed it. The benchmark, which peaks at 730 MB generating 20,000
//! services, then reported 730 MB for every carl it ran, whatever carl used.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Runs `cmd` to completion and returns its stdout, exit status, CPU time (user +
/// system) and peak RSS in KiB.
///
/// The peak is the child's `VmHWM` (its own address space's high-water mark, after
/// `exec`), read from `/proc` every millisecond until it has exited and before it is
/// reaped: the mark only grows, so the last reading is the peak but for what it grew
/// in its last millisecond.
pub fn run_measured(cmd: &mut Command) -> Result<(Vec<u8>, i32, Duration, u64), String> {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let peak = Arc::new(AtomicU64::new(0));
    let exited = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, exited) = (Arc::clone(&peak), Arc::clone(&exited));
        std::thread::spawn(move || {
            let path = format!("/proc/{pid}/status");
            while !exited.load(Ordering::Acquire) {
                if let Some(kib) = std::fs::read_to_string(&path).ok().and_then(|s| hwm(&s)) {
                    peak.fetch_max(kib, Ordering::AcqRel);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout).map_err(|e| e.to_string())?;
    }
    // SAFETY: waitid on our own child's pid into a local we own. WNOWAIT leaves it a
    // zombie, so its pid cannot be reused while the watcher may still read /proc.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        if libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        ) < 0
        {
            return Err(format!("waitid: {}", std::io::Error::last_os_error()));
        }
    }
    exited.store(true, Ordering::Release);
    let _ = watcher.join();
    let mut status = 0;
    // SAFETY: wait4 on our own child's pid, writing into locals we own. The child is
    // reaped here, so `child` is never waited on again.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::wait4(pid, &mut status, 0, &mut usage) < 0 {
            return Err(format!("wait4: {}", std::io::Error::last_os_error()));
        }
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((
        stdout,
        code,
        tv(usage.ru_utime) + tv(usage.ru_stime),
        peak.load(Ordering::Acquire),
    ))
}

/// `VmHWM: 123456 kB` from `/proc/PID/status` (absent once the process has exited).
fn hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parent holding 400 MB measures a child that holds next to nothing as next to
    /// nothing (the child's `ru_maxrss` says 400 MB), and a child that holds 64 MB as
    /// at least that.
    #[test]
    fn a_childs_peak_is_its_own_not_its_parents() {
        let held: Vec<u8> = vec![1; 400 << 20];
        // Touch every page, so that it is resident.
        let touched: u64 = held.iter().step_by(4096).map(|&b| u64::from(b)).sum();
        assert!(touched > 0);
        let (_, code, _, small) = run_measured(Command::new("sleep").arg("0.05")).unwrap();
        assert_eq!(code, 0);
        assert!(small < 32 << 10, "sleep peaked at {small} KiB");
        let (_, code, _, big) = run_measured(Command::new("python3").args([
            "-c",
            "import time; b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.05)",
        ]))
        .unwrap();
        assert_eq!(code, 0);
        assert!(
            (64 << 10..300 << 10).contains(&big),
            "python peaked at {big} KiB"
        );
        drop(held);
    }
}
