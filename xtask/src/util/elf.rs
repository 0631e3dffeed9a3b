//! Tells a static ELF executable from a dynamic one without `file`: a
//! dynamically linked executable has a PT_INTERP program header.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

const PT_INTERP: u32 = 3;

/// What the ELF header says about linking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linking {
    Static,
    Dynamic,
    NotElf,
}

/// Reads `path`'s ELF header and program headers (64-bit little-endian only;
/// other ELF classes are reported as `NotElf`).
pub fn linking(path: &Path) -> io::Result<Linking> {
    let mut file = File::open(path)?;
    let mut header = [0u8; 64];
    if file.read(&mut header)? < 64 || &header[..4] != b"\x7fELF" {
        return Ok(Linking::NotElf);
    }
    if header[4] != 2 || header[5] != 1 {
        return Ok(Linking::NotElf);
    }
    let phoff = u64::from_le_bytes(header[32..40].try_into().unwrap_or_default());
    let phentsize = u16::from_le_bytes([header[54], header[55]]) as usize;
    let phnum = u16::from_le_bytes([header[56], header[57]]) as usize;
    if phentsize < 4 || phnum == 0 {
        return Ok(Linking::Static);
    }
    let mut table = vec![0u8; phentsize * phnum];
    file.seek(SeekFrom::Start(phoff))?;
    file.read_exact(&mut table)?;
    let has_interp = table
        .chunks_exact(phentsize)
        .any(|ph| u32::from_le_bytes([ph[0], ph[1], ph[2], ph[3]]) == PT_INTERP);
    Ok(if has_interp { Linking::Dynamic } else { Linking::Static })
}

/// True if `path` is a static ELF executable.
pub fn is_static_elf(path: &Path) -> io::Result<bool> {
    Ok(linking(path)? == Linking::Static)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_and_text() {
        let me = std::env::current_exe().unwrap();
        let expected = if cfg!(target_feature = "crt-static") {
            Linking::Static
        } else {
            Linking::Dynamic
        };
        assert_eq!(linking(&me).unwrap(), expected);
        let me = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert_eq!(linking(&me).unwrap(), Linking::NotElf);
    }
}
