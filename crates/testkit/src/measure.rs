//! Running a process and measuring it: wall time is the caller's, CPU time and peak
//! RSS come from the kernel's accounting of that one child (`wait4`), so nothing
//! else running on the machine counts.

use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `cmd` to completion and returns its stdout, exit status, CPU time (user +
/// system) and peak RSS in KiB, from wait4's rusage for that one process.
pub fn run_measured(cmd: &mut Command) -> Result<(Vec<u8>, i32, Duration, u64), String> {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    let mut stdout = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut stdout).map_err(|e| e.to_string())?;
    }
    let pid = child.id() as libc::pid_t;
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
        usage.ru_maxrss as u64,
    ))
}
