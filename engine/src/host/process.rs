//! Running a program to its end (validators, checks) so that it cannot
//! hang arca or outlive it.
//!
//! `Command::output` waits for end of file on the child's pipes, so a
//! validator that starts a background process (`pg_ctl start`, which keeps
//! its standard output) would hang the caller forever. Here the child's
//! output goes to an unlinked temporary file, the child runs in a process
//! group of its own, and once it has exited whatever it left running in
//! that group is killed (a drill's scratch copy is removed next; a server
//! left on it would serve a deleted directory).

use std::io::{Read, Seek};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};

/// Runs `cmd` to its end with standard input closed; its exit status and
/// its standard output and error, interleaved, as text (lossy UTF-8).
pub fn run_to_end(cmd: &mut Command) -> std::io::Result<(ExitStatus, String)> {
    let mut out = tempfile::tempfile()?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out.try_clone()?)
        .process_group(0)
        .spawn()?;
    let pgid = child.id();
    let status = child.wait();
    // what it left behind in its group
    if let Ok(pgid) = i32::try_from(pgid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pgid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let status = status?;
    let mut bytes = vec![];
    out.rewind()?;
    out.read_to_end(&mut bytes)?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_background_process_neither_hangs_the_caller_nor_survives() {
        let start = std::time::Instant::now();
        let (st, text) = run_to_end(
            Command::new("sh")
                .arg("-c")
                .arg("sleep 30 & echo $! >&2; echo started"),
        )
        .unwrap();
        assert!(st.success());
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        let mut lines = text.lines();
        let pid: i32 = lines.next().unwrap().trim().parse().unwrap();
        assert_eq!(lines.next(), Some("started"));
        std::thread::sleep(std::time::Duration::from_millis(100));
        // killed: gone, or a zombie of init's at most
        let alive =
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "the background sleep was killed");
    }
}
