//! The host's cgroup layout, and the workaround crun 1.8 needs on a hybrid
//! host ("cgroups in hybrid mode not supported"): the calling *thread*
//! moves into a private mount namespace (`unshare(CLONE_NEWNS)`, everything
//! made rprivate) in which the cgroup2 mounts are detached, so crun sees a
//! plain cgroup v1 host. Only that thread and the processes it spawns are
//! affected; the rest of the bench (crabcan, runc, ...) keeps the host's
//! view. Done once per thread, so crun's timings contain no extra
//! `unshare`/`sh` processes.

use std::ffi::CString;
use std::io;
use std::sync::mpsc;
use std::thread;

use super::measure::{ErrLog, Harness, Sample, Trial};

/// How cgroups are mounted on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    V1,
    V2,
    /// v1 controllers plus cgroup2 at these mount points.
    Hybrid(Vec<String>),
    None,
}

impl Layout {
    /// Reads /proc/self/mountinfo.
    pub fn detect() -> Layout {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Layout::from_mountinfo(&text)
    }

    /// The layout described by a mountinfo text.
    pub fn from_mountinfo(text: &str) -> Layout {
        let mut v1 = false;
        let mut v2 = Vec::new();
        for line in text.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let mount_point = left.split(' ').nth(4).unwrap_or("");
            match right.split(' ').next() {
                Some("cgroup") => v1 = true,
                Some("cgroup2") => v2.push(mount_point.to_string()),
                _ => {}
            }
        }
        match (v1, v2.is_empty()) {
            (true, false) => Layout::Hybrid(v2),
            (true, true) => Layout::V1,
            (false, false) => Layout::V2,
            (false, true) => Layout::None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Layout::V1 => "cgroup v1".to_string(),
            Layout::V2 => "cgroup v2 (unified)".to_string(),
            Layout::Hybrid(v2) => format!("hybrid (cgroup v1 controllers + cgroup2 at {})", v2.join(", ")),
            Layout::None => "no cgroup filesystem mounted".to_string(),
        }
    }
}

/// Moves the calling thread into a private mount namespace without the
/// cgroup2 mounts of a hybrid host. A no-op on other layouts.
pub fn enter_v1_only_namespace(layout: &Layout) -> Result<(), String> {
    let Layout::Hybrid(unified) = layout else {
        return Ok(());
    };
    // SAFETY: plain syscalls on constant or owned NUL-terminated strings.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(format!("unshare(CLONE_NEWNS): {}", io::Error::last_os_error()));
    }
    let root = c_string("/")?;
    let flags = libc::MS_REC | libc::MS_PRIVATE;
    // SAFETY: as above; null source/fstype/data are allowed for MS_PRIVATE.
    let r = unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(format!("making / rprivate: {}", io::Error::last_os_error()));
    }
    for mount_point in unified.iter().rev() {
        let path = c_string(mount_point)?;
        // SAFETY: as above.
        if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(format!("umount {mount_point}: {}", io::Error::last_os_error()));
        }
    }
    Ok(())
}

fn c_string(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("path with a NUL byte: {s:?}"))
}

/// Work for the namespace thread: it is given the harness and the thread's
/// stderr scratch file.
type Call = Box<dyn FnOnce(&Harness, &mut ErrLog) + Send>;

/// A thread living in the v1-only namespace that runs and measures
/// commands for the interleaved latency loop (one at a time), and runs
/// whatever else must happen in that namespace (the engines' setup).
pub struct NsWorker {
    calls: mpsc::Sender<Call>,
}

impl NsWorker {
    pub fn spawn(layout: &Layout, harness: &Harness, log_dir: &std::path::Path) -> Result<NsWorker, String> {
        let (calls, call_rx) = mpsc::channel::<Call>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let layout = layout.clone();
        let harness = harness.clone();
        let mut log = ErrLog::new_in(log_dir)?;
        thread::Builder::new()
            .name("bench-ns".to_string())
            .spawn(move || {
                let entered = enter_v1_only_namespace(&layout);
                let ok = entered.is_ok();
                let _ = ready_tx.send(entered);
                if !ok {
                    return;
                }
                for call in call_rx {
                    call(&harness, &mut log);
                }
            })
            .map_err(|e| format!("spawning the namespace thread: {e}"))?;
        ready_rx.recv().map_err(|_| "the namespace thread died".to_string())??;
        Ok(NsWorker { calls })
    }

    /// Runs `trial` in the namespace and measures it.
    pub fn run(&self, trial: Trial) -> Result<Sample, String> {
        self.call(move |harness, log| harness.run_trial(trial, log))?
    }

    /// Runs `work` on the namespace thread (processes it spawns are in the
    /// namespace) and returns its result.
    pub fn call<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Harness, &mut ErrLog) -> T + Send + 'static,
    ) -> Result<T, String> {
        let (result_tx, result_rx) = mpsc::channel();
        let call: Call = Box::new(move |harness, log| {
            let _ = result_tx.send(work(harness, log));
        });
        self.calls
            .send(call)
            .map_err(|_| "the namespace thread is gone".to_string())?;
        result_rx.recv().map_err(|_| "the namespace thread is gone".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn layouts_are_told_apart() {
        assert_eq!(
            Layout::from_mountinfo(HYBRID),
            Layout::Hybrid(vec!["/sys/fs/cgroup/unified".to_string()])
        );
        assert_eq!(
            Layout::from_mountinfo("1 0 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"),
            Layout::V2
        );
        assert_eq!(Layout::from_mountinfo("garbage\n"), Layout::None);
    }
}
