//! Real programs in a real distribution: a minimal Debian rootfs (`cargo xtask rootfs --distro
//! debian`: glibc, dash, coreutils, util-linux, apt, python3), owned by root as mmdebstrap leaves
//! it, run in direct mode. Built once per test binary (or reused from target/debian-rootfs, or
//! `$CRABCAN_TEST_DEBIAN_ROOTFS`); every test skips with the reason in the VM and where the
//! machine has no apt sources (see `debian_rootfs_or_skip`). Each run checks the host afterwards.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crabcan_tests::*;

/// `name:x:uid:gid:...` of `user` in the rootfs's own /etc/passwd, read from the host.
fn passwd_entry(rootfs: &Path, user: &str) -> (String, u32, u32) {
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    let line = passwd
        .lines()
        .find(|line| line.split(':').next() == Some(user))
        .unwrap_or_else(|| panic!("no {user} in the rootfs's /etc/passwd:\n{passwd}"));
    let fields: Vec<&str> = line.split(':').collect();
    (line.to_string(), fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

#[test]
fn the_rootfs_is_debian_owned_by_root_with_its_package_list() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    let os_release = std::fs::read_to_string(rootfs.join("etc/os-release")).unwrap();
    assert!(os_release.contains("ID=debian"), "{os_release}");
    for path in ["", "usr/bin/python3", "etc/passwd", "root"] {
        let meta = rootfs.join(path).symlink_metadata().unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "/{path} is left owned by root");
    }
    let list = xtask::rootfs::packages_path(&rootfs);
    if list.is_file() {
        let packages = std::fs::read_to_string(&list).unwrap();
        for package in ["apt", "libc6", "python3-minimal", "dash"] {
            assert!(
                packages.lines().any(|line| line.split('\t').next() == Some(package)),
                "{package} missing from {}",
                list.display()
            );
        }
    }
}

/// A dynamically linked glibc program: `ls` has a PT_INTERP header, its loader is in the rootfs,
/// and it runs.
#[test]
fn a_dynamically_linked_glibc_program_runs() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    let ls = rootfs.join("usr/bin/ls");
    assert_eq!(
        xtask::util::elf::linking(&ls).unwrap(),
        xtask::util::elf::Linking::Dynamic,
        "{} should be dynamically linked",
        ls.display()
    );
    if cfg!(target_arch = "x86_64") {
        assert!(rootfs.join("usr/lib64/ld-linux-x86-64.so.2").exists(), "glibc's loader");
    }
    let run = Crabcan::with_rootfs("deb-ls", &rootfs).run(&["/bin/ls", "/"]);
    run.expect_success();
    let names: Vec<&str> = run.stdout.lines().collect();
    for name in ["bin", "etc", "proc", "usr"] {
        assert!(names.contains(&name), "{name} missing from `ls /`: {names:?}");
    }
}

/// python3 writes and reads back a file in /root (the rootfs, owned by host root: writable
/// through crabcan's idmapped mount, owned by host root afterwards) and in /tmp (its tmpfs).
/// Where the filesystem cannot be idmapped, crabcan says so and /root is read-only.
#[test]
fn python_writes_and_reads_files_in_root_and_tmp() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    let c = Crabcan::with_rootfs("deb-py", &rootfs);
    let name = format!("crabcan-test-{}", c.hostname);
    let script = format!(
        "import os\n\
         for d in ('/root', '/tmp'):\n\
         \x20   p = os.path.join(d, '{name}')\n\
         \x20   try:\n\
         \x20       with open(p, 'w') as f: f.write('written in ' + d)\n\
         \x20       with open(p) as f: print(d + '=' + f.read())\n\
         \x20       print(d + '_owner=%d' % os.stat(p).st_uid)\n\
         \x20   except OSError as e:\n\
         \x20       print(d + '=' + type(e).__name__)\n"
    );
    let run = c.run(&["python3", "-c", &script]);
    run.expect_success();
    assert_eq!(run.value("/tmp").as_deref(), Some("written in /tmp"), "{run:?}");
    assert_eq!(run.value("/tmp_owner").as_deref(), Some("0"), "{run:?}");
    let on_host = rootfs.join("root").join(&name);
    if idmap_supported(&rootfs) {
        assert_eq!(run.value("/root").as_deref(), Some("written in /root"), "{run:?}");
        assert_eq!(run.value("/root_owner").as_deref(), Some("0"), "{run:?}");
        let meta = on_host.symlink_metadata().unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, 0), "the file is owned by host root");
        std::fs::remove_file(&on_host).unwrap();
    } else {
        assert_eq!(run.value("/root").as_deref(), Some("PermissionError"), "{run:?}");
        assert!(run.stderr.contains("cannot write to it"), "{}", run.stderr);
        assert!(!on_host.exists());
    }
}

/// glibc's NSS reads the rootfs's own /etc/passwd (not the host's).
#[test]
fn getent_finds_root_and_nobody() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    let run = Crabcan::with_rootfs("deb-getent", &rootfs).run(&["getent", "passwd", "root", "nobody"]);
    run.expect_success();
    let expected = format!(
        "{}\n{}\n",
        passwd_entry(&rootfs, "root").0,
        passwd_entry(&rootfs, "nobody").0
    );
    assert_eq!(run.stdout, expected);
}

/// A non-root `--uid`/`--gid` taken from the rootfs's /etc/passwd: the command runs as that
/// user, by name, and cannot write root's home.
#[test]
fn a_non_root_uid_from_its_passwd() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    let (_, uid, gid) = passwd_entry(&rootfs, "nobody");
    let run = Crabcan::with_rootfs("deb-nobody", &rootfs)
        .args(["--uid", &uid.to_string(), "--gid", &gid.to_string()])
        .sh("echo uid=$(id -u) gid=$(id -g); echo name=$(id -un); \
             touch /root/x 2>/dev/null && echo wrote=yes || echo wrote=no");
    run.expect_success();
    assert!(run.stdout.contains(&format!("uid={uid} gid={gid}")), "{run:?}");
    assert_eq!(run.value("name").as_deref(), Some("nobody"), "{run:?}");
    assert_eq!(run.value("wrote").as_deref(), Some("no"), "{run:?}");
}

/// apt answers, with the version the package list recorded.
#[test]
fn apt_get_answers() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    let run = Crabcan::with_rootfs("deb-apt", &rootfs).run(&["apt-get", "--version"]);
    run.expect_success();
    let first = run.stdout.lines().next().unwrap_or("");
    assert!(first.starts_with("apt "), "{first}");
    if let Ok(list) = std::fs::read_to_string(xtask::rootfs::packages_path(&rootfs)) {
        let version = list
            .lines()
            .find_map(|line| line.strip_prefix("apt\t"))
            .and_then(|rest| rest.split('\t').next())
            .expect("apt in the package list");
        assert!(first.starts_with(&format!("apt {version} ")), "{first} vs {version}");
    }
}

/// UTF-8 without any locale package: python3 in crabcan's environment (no LANG, no LC_*) writes
/// UTF-8 (PEP 538/540), and glibc's built-in C.UTF-8 counts characters, not bytes.
#[test]
fn utf8_output_without_locales() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    let run = Crabcan::with_rootfs("deb-utf8", &rootfs).run(&["python3", "-c", "print('héllo ✓')"]);
    run.expect_success();
    assert_eq!(run.stdout.as_bytes(), "héllo ✓\n".as_bytes());

    let run = Crabcan::with_rootfs("deb-cutf8", &rootfs)
        .args(["--env", "LC_ALL=C.UTF-8"])
        .sh("printf 'héllo ✓' | wc -m; python3 -c 'import sys; print(sys.stdout.encoding)'");
    run.expect_success();
    let lines: Vec<&str> = run.stdout.lines().map(str::trim).collect();
    assert_eq!(lines, ["7", "utf-8"], "{run:?}");
}

// The escapes of tests/escapes.rs, in this rootfs: its own mount, unshare, find, ls and mknod
// (util-linux and coreutils, not busybox) and its dash.

#[test]
fn escape_cgroup_release_agent() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    escapes::cgroup_release_agent_cannot_be_reached(&Target::root(&rootfs));
}

#[test]
fn escape_inherited_descriptors() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    escapes::inherited_directory_descriptors_do_not_leak(&Target::root(&rootfs));
}

#[test]
fn escape_through_proc_exe() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    escapes::crabcan_binary_cannot_be_overwritten_through_proc(&Target::root(&rootfs));
}

#[test]
fn escape_tiocsti() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    escapes::tiocsti_cannot_inject_into_the_callers_terminal(&Target::root(&rootfs));
}

#[test]
fn escape_keyring_and_file_handles() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    escapes::keyring_and_file_handles_are_refused(&Target::root(&rootfs));
}

#[test]
fn escape_block_devices() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    escapes::host_block_devices_cannot_be_created(&Target::root(&rootfs));
}

/// The same rootfs as an OCI bundle's root (runc's default spec from `crabcan spec`, read-only
/// root, no user namespace): python3 and glibc's NSS run in OCI mode too.
#[test]
fn the_debian_rootfs_runs_as_an_oci_bundle() {
    let Some(rootfs) = debian_rootfs_or_skip() else {
        return;
    };
    let dir = TempDir::new("debian-oci");
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let oci = |args: &[&str]| {
        let output = std::process::Command::new(crabcan_bin())
            .arg("--root")
            .arg(dir.path().join("root"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run::from_output(output)
    };
    oci(&["spec", "--bundle", bundle.to_str().unwrap()]).expect_success();
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    spec["root"]["path"] = serde_json::Value::from(rootfs.display().to_string());
    spec["process"]["terminal"] = serde_json::Value::Bool(false);
    spec["process"]["args"] = serde_json::json!([
        "/bin/sh",
        "-c",
        "python3 -c 'print(\"py=\" + str(6 * 7))'; echo user=$(getent passwd root | cut -d: -f1)"
    ]);
    std::fs::write(&path, spec.to_string()).unwrap();
    let before = HostSnapshot::take();
    let id = unique_hostname("debian-oci");
    let run = oci(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    run.expect_success();
    assert_eq!(run.value("py").as_deref(), Some("42"), "{run:?}");
    assert_eq!(run.value("user").as_deref(), Some("root"), "{run:?}");
    assert!(
        !dir.path().join("root").join(&id).exists(),
        "the container's state is left"
    );
    before.assert_clean_after(&id);
}
