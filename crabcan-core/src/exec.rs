//! The last steps before the command runs: building argv and envp, making sure no descriptor
//! but 0, 1, 2 and those the caller asked to pass (`--preserve-fds`) crosses execve (a leaked fd to a host directory is an escape,
//! CVE-2024-21626), and looking the program up in the container's PATH.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

/// argv, envp and the candidate paths of the program, all ready for execve.
#[derive(Debug)]
pub struct PreparedExec {
    pub program: String,
    argv: Vec<CString>,
    envp: Vec<CString>,
    candidates: Vec<CString>,
}

/// An argument, variable or path holds a NUL byte, which execve cannot carry.
#[derive(Debug, thiserror::Error)]
#[error("{} contains a NUL byte", crate::spec::display_word(.0))]
pub struct NulByte(pub String);

/// Prepares execve of `argv` with `env`. The program is searched in the PATH of `env` unless it
/// contains a '/'.
pub fn prepare(argv: &[String], env: &[(String, String)]) -> Result<PreparedExec, NulByte> {
    let to_c = |text: &str| CString::new(text).map_err(|_| NulByte(text.to_owned()));
    let program = argv.first().cloned().unwrap_or_default();
    let argv_c = argv.iter().map(|arg| to_c(arg)).collect::<Result<Vec<_>, _>>()?;
    let envp = env
        .iter()
        .map(|(key, value)| to_c(&format!("{key}={value}")))
        .collect::<Result<Vec<_>, _>>()?;
    let path = env
        .iter()
        .rev()
        .find(|(key, _)| key == "PATH")
        .map(|(_, value)| value.as_str())
        .unwrap_or("");
    let candidates = candidate_paths(&program, path)
        .iter()
        .map(|candidate| to_c(candidate))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PreparedExec {
        program,
        argv: argv_c,
        envp,
        candidates,
    })
}

/// Where to look for `program`: itself if it has a '/', else each PATH entry (empty = ".").
pub fn candidate_paths(program: &str, path: &str) -> Vec<String> {
    if program.contains('/') {
        return vec![program.to_owned()];
    }
    path.split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
        .collect()
}

/// Closes every descriptor from 3 up except `keep` (the handshake socket) and the `preserved`
/// ones of crabcan's caller (3 to 3+`preserved`-1).
pub fn close_inherited_fds(keep: std::os::fd::RawFd, preserved: u32) -> Result<(), Errno> {
    close_fds_except(3 + preserved, &[keep])
}

/// Closes every descriptor from `first` up except those in `keep` (`crabcan exec`: the
/// descriptors below `first` are the ones the caller passes on with `--preserve-fds`).
/// Allocates nothing: it may run in a freshly forked child.
pub fn close_fds_except(first: u32, keep: &[std::os::fd::RawFd]) -> Result<(), Errno> {
    let mut from = first;
    let mut kept: [u32; 32] = [u32::MAX; 32];
    if keep.len() > kept.len() {
        return Err(Errno::E2BIG);
    }
    for (slot, fd) in kept.iter_mut().zip(keep) {
        *slot = u32::try_from(*fd).unwrap_or(u32::MAX);
    }
    kept.sort_unstable();
    for fd in kept.into_iter().filter(|fd| *fd >= first && *fd != u32::MAX) {
        if fd > from {
            for_fds_in(from, fd - 1, FdAction::Close)?;
        }
        from = fd.saturating_add(1).max(from);
    }
    for_fds_in(from, u32::MAX, FdAction::Close)
}

/// Marks every descriptor from 3+`preserved` up close-on-exec, so only stdin, stdout, stderr
/// and the `preserved` descriptors from 3 up reach the command (the handshake socket is
/// already close-on-exec and closes at execve, telling the parent the command started); the
/// preserved ones are made to stay open across it.
pub fn mark_inherited_fds_cloexec(preserved: u32) -> Result<(), Errno> {
    for fd in 3..3 + preserved as i32 {
        // SAFETY: clears the close-on-exec flag of a descriptor crabcan's caller handed over.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
            return Err(Errno::last());
        }
    }
    mark_fds_cloexec_from(3 + preserved)
}

/// Marks every descriptor from `first` up close-on-exec (`crabcan exec --preserve-fds N`
/// passes 3 to 3+N-1 on).
pub fn mark_fds_cloexec_from(first: u32) -> Result<(), Errno> {
    for_fds_in(first, u32::MAX, FdAction::CloseOnExec)
}

#[derive(Clone, Copy)]
enum FdAction {
    Close,
    CloseOnExec,
}

/// Applies `action` to the open descriptors in [first, last]: close_range(2), or on kernels
/// without it (5.9) or its CLOEXEC flag (5.11) a walk of /proc/self/fd.
fn for_fds_in(first: u32, last: u32, action: FdAction) -> Result<(), Errno> {
    let flags = match action {
        FdAction::Close => 0,
        FdAction::CloseOnExec => libc::CLOSE_RANGE_CLOEXEC,
    };
    // SAFETY: close_range only closes descriptors or sets their close-on-exec flag; none in the
    // range is owned by Rust code that will use it again in this process.
    if unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) } == 0 {
        return Ok(());
    }
    let entries = std::fs::read_dir("/proc/self/fd").map_err(|_| Errno::last())?;
    let fds: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| (first..=last).contains(fd))
        .collect();
    for fd in fds {
        // SAFETY: acting on a descriptor number; a stale one (the directory listing's own)
        // fails harmlessly with EBADF.
        unsafe {
            match action {
                FdAction::Close => libc::close(fd as i32),
                FdAction::CloseOnExec => libc::fcntl(fd as i32, libc::F_SETFD, libc::FD_CLOEXEC),
            }
        };
    }
    Ok(())
}

/// Whether execve could find the program: Ok when a candidate is an executable file, else the
/// errno a shell would report (EACCES when one exists but may not be executed, ENOENT when none
/// exists). Checked before the container is reported ready, so that a missing command fails
/// `create` (as runc's does) rather than a detached container's start.
pub fn find_program(prepared: &PreparedExec) -> Result<(), Errno> {
    let mut denied = false;
    for candidate in &prepared.candidates {
        match nix::unistd::access(candidate.as_c_str(), nix::unistd::AccessFlags::X_OK) {
            Ok(()) => {
                let is_file =
                    std::fs::metadata(std::ffi::OsStr::from_bytes(candidate.as_bytes())).is_ok_and(|m| m.is_file());
                if is_file {
                    return Ok(());
                }
                denied = true;
            }
            Err(Errno::EACCES) => denied = true,
            Err(_) => {}
        }
    }
    Err(if denied { Errno::EACCES } else { Errno::ENOENT })
}

/// Runs the program. Only returns on failure, with the errno that best explains it: EACCES from
/// any candidate wins over ENOENT, as in a shell.
pub fn exec(prepared: &PreparedExec) -> Errno {
    let mut saw_permission_denied = false;
    for candidate in &prepared.candidates {
        let Err(errno) = nix::unistd::execve(candidate, &prepared.argv, &prepared.envp);
        match errno {
            Errno::ENOENT | Errno::ENOTDIR => continue,
            Errno::EACCES => saw_permission_denied = true,
            other => return other,
        }
    }
    if saw_permission_denied {
        Errno::EACCES
    } else {
        Errno::ENOENT
    }
}

/// Why execve said ENOENT although the program is there: the `#!` interpreter of a script, or
/// the dynamic loader (`PT_INTERP`) of an ELF program, is missing. Returns the program's path
/// and the missing interpreter.
pub fn missing_interpreter(prepared: &PreparedExec) -> Option<(String, String)> {
    use std::io::Read;
    for candidate in &prepared.candidates {
        let path = candidate.to_str().ok()?;
        let Ok(mut file) = std::fs::File::open(path) else {
            continue;
        };
        let mut head = Vec::with_capacity(4096);
        if file.by_ref().take(4096).read_to_end(&mut head).is_err() {
            continue;
        }
        let interpreter = script_interpreter(&head).or_else(|| elf_interpreter(&mut file, &head))?;
        let exists = std::fs::metadata(&interpreter).is_ok();
        return (!exists).then(|| (path.to_owned(), interpreter));
    }
    None
}

/// The interpreter of a `#!` line.
fn script_interpreter(head: &[u8]) -> Option<String> {
    let line = head.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let text = String::from_utf8_lossy(line);
    text.split_whitespace().next().map(str::to_owned)
}

/// The `PT_INTERP` of a 64-bit little-endian ELF file (the dynamic loader it needs).
fn elf_interpreter(file: &mut std::fs::File, head: &[u8]) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    const PT_INTERP: u32 = 3;
    if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
        return None;
    }
    let u16_at = |bytes: &[u8], at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |bytes: &[u8], at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |bytes: &[u8], at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
    let table_offset = u64_at(head, 0x20)?;
    let entry_size = u16_at(head, 0x36)? as u64;
    let entries = u16_at(head, 0x38)? as u64;
    for index in 0..entries.min(64) {
        let mut entry = [0u8; 56];
        file.seek(SeekFrom::Start(table_offset.checked_add(index * entry_size)?))
            .ok()?;
        file.read_exact(&mut entry).ok()?;
        if u32_at(&entry, 0)? != PT_INTERP {
            continue;
        }
        let (offset, size) = (u64_at(&entry, 8)?, u64_at(&entry, 32)?.min(4096));
        let mut name = vec![0u8; size as usize];
        file.seek(SeekFrom::Start(offset)).ok()?;
        file.read_exact(&mut name).ok()?;
        let name = name.split(|&b| b == 0).next()?;
        return Some(String::from_utf8_lossy(name).into_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searches_path_only_for_bare_names() {
        assert_eq!(candidate_paths("/bin/sh", "/usr/bin:/bin"), vec!["/bin/sh"]);
        assert_eq!(candidate_paths("./run", "/bin"), vec!["./run"]);
        assert_eq!(
            candidate_paths("ls", "/usr/bin:/bin/:"),
            vec!["/usr/bin/ls", "/bin/ls", "./ls"]
        );
    }

    #[test]
    fn finds_the_missing_interpreter_of_a_script_and_of_an_elf_program() {
        let dir = crate::test_support::TempTree::new("interpreter");
        let script = dir.join("script");
        std::fs::write(&script, "#!/nonexistent/sh -e\necho hi\n").unwrap();
        let env = [("PATH".to_owned(), "/bin".to_owned())];
        let prepared = prepare(&[script.display().to_string()], &env).unwrap();
        assert_eq!(
            missing_interpreter(&prepared),
            Some((script.display().to_string(), "/nonexistent/sh".to_owned()))
        );
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert_eq!(missing_interpreter(&prepared), None, "the interpreter exists");
        // This test binary is a dynamically linked ELF program whose loader exists.
        let me = std::env::current_exe().unwrap();
        let mut file = std::fs::File::open(&me).unwrap();
        let head = std::fs::read(&me).unwrap();
        let loader = elf_interpreter(&mut file, &head[..4096]).expect("a PT_INTERP");
        assert!(
            loader.starts_with('/') && std::path::Path::new(&loader).exists(),
            "{loader}"
        );
    }

    #[test]
    fn refuses_nul_bytes() {
        assert!(prepare(&["a\0b".into()], &[]).is_err());
        assert!(prepare(&["ls".into()], &[("K".into(), "v\0".into())]).is_err());
        let prepared = prepare(&["ls".into()], &[("PATH".into(), "/bin".into())]).unwrap();
        assert_eq!(prepared.program, "ls");
    }
}
