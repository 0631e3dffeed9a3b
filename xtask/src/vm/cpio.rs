//! A writer for the newc (SVR4, "070701") cpio format the kernel unpacks
//! as an initramfs. Entries are written as given: parents must come first.

use std::io::{self, Write};

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Owner and permission bits of an entry.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u32,
}

impl Meta {
    pub fn root(mode: u32) -> Meta {
        Meta {
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }
}

/// Streams newc entries to `out`; call [`CpioWriter::finish`] at the end.
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> CpioWriter<W> {
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    pub fn dir(&mut self, name: &str, meta: Meta) -> io::Result<()> {
        self.entry(name, S_IFDIR | (meta.mode & 0o7777), meta, 2, (0, 0), &[])
    }

    pub fn file(&mut self, name: &str, meta: Meta, data: &[u8]) -> io::Result<()> {
        self.entry(name, S_IFREG | (meta.mode & 0o7777), meta, 1, (0, 0), data)
    }

    pub fn symlink(&mut self, name: &str, target: &[u8], meta: Meta) -> io::Result<()> {
        self.entry(name, S_IFLNK | 0o777, meta, 1, (0, 0), target)
    }

    pub fn char_dev(&mut self, name: &str, meta: Meta, major: u32, minor: u32) -> io::Result<()> {
        self.entry(name, S_IFCHR | (meta.mode & 0o7777), meta, 1, (major, minor), &[])
    }

    /// Writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.entry("TRAILER!!!", 0, Meta::root(0), 1, (0, 0), &[])?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        meta: Meta,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> io::Result<()> {
        let name = name.trim_start_matches('/');
        let ino = if name == "TRAILER!!!" { 0 } else { self.next_ino };
        self.next_ino += 1;
        let size = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: too big for cpio")))?;
        let fields = [
            ino,
            mode,
            meta.uid,
            meta.gid,
            nlink,
            meta.mtime,
            size,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        let mut header = String::with_capacity(110);
        header.push_str("070701");
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.write(header.as_bytes())?;
        self.write(name.as_bytes())?;
        self.write(&[0])?;
        self.pad()?;
        self.write(data)?;
        self.pad()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> io::Result<()> {
        let rem = (self.written % 4) as usize;
        if rem != 0 {
            self.write(&[0u8; 3][..4 - rem])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_tool_reads_our_archive() {
        let mut w = CpioWriter::new(Vec::new());
        w.dir("bin", Meta::root(0o755)).unwrap();
        w.file(
            "bin/hello",
            Meta {
                mode: 0o755,
                uid: 100000,
                gid: 100000,
                mtime: 0,
            },
            b"hi\n",
        )
        .unwrap();
        w.symlink("bin/sh", b"/bin/busybox", Meta::root(0)).unwrap();
        w.char_dev("console", Meta::root(0o600), 5, 1).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        if std::process::Command::new("cpio").arg("--version").output().is_err() {
            return; // cpio not installed: format checked by the VM test
        }
        let mut child = std::process::Command::new("cpio")
            .args(["-t", "-v", "--numeric-uid-gid"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("100000") && listing.contains("bin/hello"), "{listing}");
        assert!(listing.contains("bin/sh -> /bin/busybox"), "{listing}");
        assert!(listing.contains("console"), "{listing}");
    }
}
