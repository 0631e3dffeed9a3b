//! `crabcan exec`: a new process in a created or running container.
//!
//! The process is the container's own `process`, from the `config.json` that `create` kept in
//! the container's state folder ([`CONFIG_COPY`]; the bundle is never read again, its owner may
//! have changed it since), with the command after the id and the flags applied as runc applies
//! them: `--env` over its environment, `--cwd`, `--user UID[:GID]`, `--additional-gids` added,
//! `--cap` added to the bounding, effective and permitted sets, `--tty`, `--no-new-privs`.
//! `--process FILE` replaces that `process` with a runtime-spec `process` object, checked field
//! by field like a bundle's (the same flags apply over it). The process gets the container's
//! seccomp filter, capabilities, rlimits, no_new_privs, ids and umask as its first process does.
//!
//! Before anything is joined: the container must be created or running, and its process the one
//! `create` recorded (same start time); crabcan must run from a sealed copy of itself
//! ([`crate::sealed_exe`]). Joining is `crate::enter`'s.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::bundle;
use super::runtime::{send_console, send_pidfd, write_pid_file, ExecOptions};
use super::state::{ContainerState, StateStore, Status};
use super::OciError;
use crate::capabilities::{parse_capabilities, CapabilitySet};
use crate::config::{CapabilitySets, ContainerConfig, Terminal};
use crate::container::ExitStatus;
use crate::enter::{self, Target};
use crate::Error;

/// The copy of the bundle's `config.json` in the container's state folder.
pub(crate) const CONFIG_COPY: &str = "config.json";

/// Keeps `source` (the bundle's `config.json` as `create` parsed it) in the container's state
/// folder `dir`, readable by root only.
pub(crate) fn save_config(dir: &Path, source: &[u8]) -> Result<(), OciError> {
    let path = dir.join(CONFIG_COPY);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .and_then(|mut file| file.write_all(source))
        .map_err(|source| OciError::io("keep a copy of the config in", &path, source))
}

/// Runs `options`' process in container `id`: its exit code (128+N for signal N), or 0 once
/// it has exec'd with `--detach`.
pub(crate) fn exec(store: &StateStore, id: &str, options: &ExecOptions) -> Result<i32, OciError> {
    // First, before crabcan opens anything: no descriptor of crabcan's may land on a number
    // the caller passes on.
    enter::reserve_preserved_fds(options.preserve_fds)?;
    if !store.exists(id)? {
        return Err(OciError::NotExist { id: id.to_owned() });
    }
    crate::sealed_exe::require_sealed()?;
    let state = store.load(id)?;
    match state.current_status() {
        Status::Created | Status::Running => {}
        status @ Status::Stopped => return Err(OciError::CannotExec { status, hint: "" }),
        status @ Status::Paused => {
            return Err(OciError::CannotExec {
                status,
                hint: " (resume it first)",
            })
        }
        status @ Status::Creating => {
            return Err(OciError::WrongState {
                id: id.to_owned(),
                status,
                wanted: "created or running",
            })
        }
    }
    let start_time = state.crabcan.init_start_time.ok_or_else(|| OciError::StateIncomplete {
        id: id.to_owned(),
        missing: "start time of its process",
    })?;
    let config = process_config(&store.container_dir(id)?, &state, options)?;
    let terminal = config.terminal == Terminal::Pty;
    check_terminal(options, terminal)?;
    let target = Target::open(state.pid, start_time, &state.crabcan.cgroup_paths).map_err(|error| match error {
        Error::ContainerProcessGone { .. } => OciError::CannotExec {
            status: Status::Stopped,
            hint: "",
        },
        other => other.into(),
    })?;
    let mut entered = enter::spawn(&config, target, options.preserve_fds, !options.detach)?;
    if let (true, Some(socket)) = (terminal, &options.console_socket) {
        let master = entered.take_pty_master().ok_or_else(|| {
            OciError::Container(Error::Protocol {
                detail: "the process sent no pty".into(),
            })
        })?;
        send_console(socket, &master)?;
    }
    if let Some(socket) = &options.pidfd_socket {
        send_pidfd(socket, entered.pid())?;
    }
    if let Some(pid_file) = &options.pid_file {
        write_pid_file(pid_file, entered.pid())?;
    }
    if options.detach {
        entered.detach();
        return Ok(0);
    }
    Ok(match entered.wait()? {
        ExitStatus::Exited(code) => code,
        ExitStatus::Signaled(signal) => 128 + signal,
    })
}

fn bad_options(why: impl Into<String>) -> OciError {
    OciError::BadExecOptions { why: why.into() }
}

/// runc's rules: a detached process's terminal goes to a console socket, and a console socket
/// is for a detached process with a terminal.
fn check_terminal(options: &ExecOptions, terminal: bool) -> Result<(), OciError> {
    match (options.detach, terminal, options.console_socket.is_some()) {
        (true, true, false) => Err(bad_options(
            "a detached process cannot get a terminal without --console-socket",
        )),
        (false, _, true) | (_, false, true) => Err(bad_options(
            "--console-socket needs --detach and a terminal (--tty, or process.terminal of --process)",
        )),
        _ => Ok(()),
    }
}

/// The process to run: the saved config's `process` (or `--process`'s), then the flags.
fn process_config(dir: &Path, state: &ContainerState, options: &ExecOptions) -> Result<ContainerConfig, OciError> {
    let copy = dir.join(CONFIG_COPY);
    if !copy.exists() {
        return Err(OciError::StateIncomplete {
            id: state.id.clone(),
            missing: "copy of its config.json",
        });
    }
    let process = options.process.as_deref().map(bundle::read_process).transpose()?;
    let from_file = process.is_some();
    let mut config = bundle::load_saved(&copy, &state.bundle, process)?.config;
    apply_options(&mut config, options, from_file)?;
    Ok(config)
}

/// The flags over the process, as runc applies them.
fn apply_options(config: &mut ContainerConfig, options: &ExecOptions, from_file: bool) -> Result<(), OciError> {
    if !options.args.is_empty() {
        config.argv = options.args.clone();
    }
    if config.argv.first().is_none_or(String::is_empty) {
        return Err(bad_options(
            "no command: give one after the container id, or process.args",
        ));
    }
    for pair in &options.env {
        let Some((key, value)) = pair.split_once('=').filter(|(key, _)| !key.is_empty()) else {
            return Err(bad_options(format!("--env {pair:?} is not KEY=VALUE")));
        };
        config.env.retain(|(existing, _)| existing != key);
        config.env.push((key.to_owned(), value.to_owned()));
    }
    if let Some(cwd) = &options.cwd {
        config.workdir = cwd.clone();
    }
    if !config.workdir.is_absolute() {
        return Err(bad_options(format!(
            "the working folder {} must be an absolute path in the container",
            config.workdir.display()
        )));
    }
    if let Some(user) = options.user {
        config.uid = user.uid;
        config.gid = user.gid.unwrap_or(config.gid);
    }
    let (uid_map, gid_map) = config.id_mapping.inside();
    if !uid_map.contains_inside(config.uid) || !gid_map.contains_inside(config.gid) {
        return Err(bad_options(format!(
            "user {}:{} is not mapped in the container's user namespace",
            config.uid, config.gid
        )));
    }
    config.additional_gids.extend(&options.additional_gids);
    if !options.capabilities.is_empty() {
        let sets = config.capability_sets.get_or_insert_with(|| CapabilitySets {
            bounding: config.capabilities.clone(),
            effective: config.capabilities.clone(),
            permitted: config.capabilities.clone(),
            inheritable: CapabilitySet(Default::default()),
            ambient: CapabilitySet(Default::default()),
        });
        for name in &options.capabilities {
            for capability in parse_capabilities(name).map_err(Error::from)? {
                sets.bounding.0.insert(capability);
                sets.effective.0.insert(capability);
                sets.permitted.0.insert(capability);
                // Ambient needs inheritable, which --cap does not set (as runc's).
                if sets.inheritable.contains(capability) {
                    sets.ambient.0.insert(capability);
                }
            }
        }
    }
    let file_terminal = from_file && config.terminal == Terminal::Pty;
    config.terminal = if options.tty || file_terminal {
        Terminal::Pty
    } else {
        Terminal::Inherit
    };
    config.no_new_privs |= options.no_new_privs;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::runtime::ExecUser;

    fn config() -> ContainerConfig {
        let mut config = ContainerConfig::new("/rootfs", vec!["sh".into()]);
        config.default_env = false;
        config.env = vec![("PATH".into(), "/bin".into()), ("A".into(), "1".into())];
        config.terminal = Terminal::Pty;
        config.no_new_privs = false;
        config.capability_sets = Some(CapabilitySets {
            bounding: CapabilitySet::from_names(&["CAP_KILL".into()]).unwrap(),
            effective: CapabilitySet::from_names(&["CAP_KILL".into()]).unwrap(),
            permitted: CapabilitySet::from_names(&["CAP_KILL".into()]).unwrap(),
            inheritable: CapabilitySet::from_names(&[]).unwrap(),
            ambient: CapabilitySet::from_names(&[]).unwrap(),
        });
        config
    }

    #[test]
    fn the_flags_apply_over_the_process_as_runcs() {
        let mut config = config();
        let options = ExecOptions {
            args: vec!["ls".into(), "-l".into()],
            env: vec!["A=2".into(), "B=x=y".into()],
            cwd: Some("/tmp".into()),
            user: Some(ExecUser { uid: 1000, gid: None }),
            additional_gids: vec![5],
            capabilities: vec!["NET_ADMIN".into()],
            no_new_privs: true,
            ..ExecOptions::default()
        };
        apply_options(&mut config, &options, false).unwrap();
        assert_eq!(config.argv, ["ls", "-l"]);
        let env: Vec<String> = config.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(env, ["PATH=/bin", "A=2", "B=x=y"], "--env replaces, last wins");
        assert_eq!(config.workdir, Path::new("/tmp"));
        assert_eq!((config.uid, config.gid), (1000, 0), "the gid stays without :GID");
        assert_eq!(config.additional_gids, [5]);
        let sets = config.capability_sets.as_ref().unwrap();
        for set in [&sets.bounding, &sets.effective, &sets.permitted] {
            assert!(set.contains(caps::Capability::CAP_NET_ADMIN) && set.contains(caps::Capability::CAP_KILL));
        }
        assert!(sets.ambient.0.is_empty(), "no inheritable, so no ambient");
        assert_eq!(
            config.terminal,
            Terminal::Inherit,
            "no --tty: no terminal, whatever the config says"
        );
        assert!(config.no_new_privs);
    }

    #[test]
    fn a_process_file_keeps_its_terminal_and_bad_flags_are_named() {
        let mut config = config();
        apply_options(&mut config, &ExecOptions::default(), true).unwrap();
        assert_eq!(config.terminal, Terminal::Pty);
        assert_eq!(config.argv, ["sh"], "no command given: the process's");
        for (options, named) in [
            (
                ExecOptions {
                    env: vec!["NOEQUALS".into()],
                    ..ExecOptions::default()
                },
                "NOEQUALS",
            ),
            (
                ExecOptions {
                    cwd: Some("relative".into()),
                    ..ExecOptions::default()
                },
                "relative",
            ),
            (
                ExecOptions {
                    capabilities: vec!["NOT_A_CAP".into()],
                    ..ExecOptions::default()
                },
                "NOT_A_CAP",
            ),
        ] {
            let error = apply_options(&mut config.clone(), &options, false).unwrap_err();
            assert!(error.to_string().contains(named), "{error}");
        }
        let mut empty = config.clone();
        empty.argv.clear();
        assert!(apply_options(&mut empty, &ExecOptions::default(), false).is_err());
    }

    #[test]
    fn terminals_follow_runcs_rules() {
        let detached = |tty: bool, socket: bool| ExecOptions {
            detach: true,
            console_socket: socket.then(|| "/run/s.sock".into()),
            tty,
            ..ExecOptions::default()
        };
        assert!(check_terminal(&detached(true, true), true).is_ok());
        assert!(check_terminal(&detached(false, false), false).is_ok());
        assert!(check_terminal(&detached(true, false), true).is_err());
        assert!(check_terminal(&detached(false, true), false).is_err());
        let foreground = ExecOptions {
            console_socket: Some("/run/s.sock".into()),
            ..ExecOptions::default()
        };
        assert!(check_terminal(&foreground, true).is_err());
        assert!(check_terminal(&ExecOptions::default(), true).is_ok(), "relayed");
    }
}
