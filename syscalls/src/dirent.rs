//! Directory listings: make bind mount points appear in their parent's listing.
//!
//! `/nix` exists only in the guest view, so the host's listing of `/` lacks it (or
//! shows the host's own, hidden, `/nix`). ptnix rewrites the records getdents64 and
//! getdents return for such a parent:
//! - a host entry with a mount point's name gets the mount point's inode and type, so
//!   it agrees with `stat`;
//! - a name the host lacks is appended after the last real entry, when the kernel
//!   reports the end of the directory. Its `d_off` (the position after it, what
//!   telldir returns) lies in a range of positions reserved for these records, so that
//!   seekdir to it and a re-read of the same fd work.
//!
//! Record layouts (getdents(2)):
//! - `linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }`
//! - `linux_dirent { unsigned long d_ino; unsigned long d_off; unsigned short d_reclen;
//!   char d_name[]; char pad; char d_type; }` (the type is the record's last byte)

/// Which syscall's record format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Dirent64,
    /// The old getdents(2).
    Dirent,
}

/// One entry to show in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synthetic {
    pub name: Vec<u8>,
    pub ino: u64,
    pub d_type: u8,
}

/// First of the directory positions ptnix gives its own records: the position after
/// the i-th synthetic record is `SYNTHETIC_POS + i + 1`. It is below 2^31, the largest
/// position ext4 accepts for 32-bit hash cookies, and far above the small indices of
/// tmpfs, overlayfs and procfs.
pub const SYNTHETIC_POS: u64 = 0x7fff_f000;

const HDR64: usize = 19; // d_ino(8) + d_off(8) + d_reclen(2) + d_type(1)
const HDR: usize = 18; // d_ino(8) + d_off(8) + d_reclen(2)

/// The smallest record that holds its fixed fields: the header, a name's NUL, and for
/// the old format the trailing d_type byte.
fn min_record(format: Format) -> usize {
    match format {
        Format::Dirent64 => HDR64 + 1,
        Format::Dirent => HDR + 2,
    }
}

fn reclen(format: Format, name_len: usize) -> usize {
    let raw = match format {
        Format::Dirent64 => HDR64 + name_len + 1,
        Format::Dirent => HDR + name_len + 2, // NUL, then d_type
    };
    (raw + 7) & !7
}

/// Builds one record.
pub fn record(format: Format, e: &Synthetic, d_off: u64) -> Vec<u8> {
    let len = reclen(format, e.name.len());
    let mut r = vec![0u8; len];
    r[0..8].copy_from_slice(&e.ino.to_ne_bytes());
    r[8..16].copy_from_slice(&d_off.to_ne_bytes());
    r[16..18].copy_from_slice(&(len as u16).to_ne_bytes());
    match format {
        Format::Dirent64 => {
            r[18] = e.d_type;
            r[HDR64..HDR64 + e.name.len()].copy_from_slice(&e.name);
        }
        Format::Dirent => {
            r[HDR..HDR + e.name.len()].copy_from_slice(&e.name);
            r[len - 1] = e.d_type;
        }
    }
    r
}

/// Records for `entries[from..]`, as many as fit in `cap` bytes, with positions in the
/// reserved range. Returns the bytes and the number of records.
pub fn synthetic_records(format: Format, entries: &[Synthetic], from: usize, cap: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut n = 0;
    for (i, e) in entries.iter().enumerate().skip(from) {
        let r = record(format, e, SYNTHETIC_POS + i as u64 + 1);
        if out.len() + r.len() > cap {
            break;
        }
        out.extend_from_slice(&r);
        n += 1;
    }
    (out, n)
}

/// Where a directory position lies relative to the synthetic records: `Some(i)` when
/// `i` of them have been read (the next one to return is `entries[i]`).
pub fn synthetic_index(pos: u64, count: usize) -> Option<usize> {
    (pos >= SYNTHETIC_POS && pos <= SYNTHETIC_POS + count as u64).then(|| (pos - SYNTHETIC_POS) as usize)
}

/// The records in `buf`, as (offset, length), up to the first that does not parse (a
/// `d_reclen` shorter than the fixed fields or running past the buffer).
fn records(format: Format, buf: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let min = min_record(format);
    let mut at = 0;
    std::iter::from_fn(move || {
        if at + min > buf.len() {
            return None;
        }
        let len = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
        if len < min || at + len > buf.len() {
            return None;
        }
        at += len;
        Some((at - len, len))
    })
}

/// A record's name (up to its NUL) and the index of its d_type byte.
fn name_and_type(format: Format, rec: &[u8]) -> (&[u8], usize) {
    let (area, t) = match format {
        Format::Dirent64 => (&rec[HDR64..], 18),
        Format::Dirent => (&rec[HDR..rec.len() - 1], rec.len() - 1),
    };
    (&area[..memchr::memchr(0, area).unwrap_or(area.len())], t)
}

/// Walks the records the kernel returned and gives each host entry named like a
/// synthetic one that entry's inode and type. Records that do not parse end the walk;
/// nothing is moved or resized.
pub fn patch_names(format: Format, buf: &mut [u8], entries: &[Synthetic]) -> usize {
    let spans: Vec<(usize, usize)> = records(format, buf).collect();
    let mut patched = 0;
    for (at, len) in spans {
        let rec = &mut buf[at..at + len];
        let (name, t) = name_and_type(format, rec);
        if let Some(e) = entries.iter().find(|e| e.name == name) {
            rec[0..8].copy_from_slice(&e.ino.to_ne_bytes());
            rec[t] = e.d_type;
            patched += 1;
        }
    }
    patched
}

/// The records in a buffer as (name, d_ino, d_type, d_off), for tests and checks.
pub fn names(format: Format, buf: &[u8]) -> Vec<(Vec<u8>, u64, u8, u64)> {
    records(format, buf)
        .map(|(at, len)| {
            let rec = &buf[at..at + len];
            let (name, t) = name_and_type(format, rec);
            let ino = u64::from_ne_bytes(rec[0..8].try_into().unwrap());
            let off = u64::from_ne_bytes(rec[8..16].try_into().unwrap());
            (name.to_vec(), ino, rec[t], off)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nix() -> Synthetic {
        Synthetic { name: b"nix".to_vec(), ino: 42, d_type: libc::DT_DIR }
    }

    #[test]
    fn records_round_trip() {
        for f in [Format::Dirent64, Format::Dirent] {
            let r = record(f, &nix(), 7);
            assert_eq!(r.len() % 8, 0);
            assert_eq!(names(f, &r), vec![(b"nix".to_vec(), 42, libc::DT_DIR, 7)]);
        }
    }

    #[test]
    fn small_buffers_take_what_fits() {
        let two = [nix(), Synthetic { name: b"opt".to_vec(), ino: 9, d_type: libc::DT_DIR }];
        let one = record(Format::Dirent64, &two[0], 0).len();
        assert_eq!(synthetic_records(Format::Dirent64, &two, 0, one - 1).1, 0);
        assert_eq!(synthetic_records(Format::Dirent64, &two, 0, one).1, 1);
        let (b, n) = synthetic_records(Format::Dirent64, &two, 1, 1000);
        assert_eq!(n, 1);
        assert_eq!(names(Format::Dirent64, &b)[0].3, SYNTHETIC_POS + 2);
    }

    /// Found by the `dirent` fuzz target: an old-format record of exactly 18 bytes
    /// (no room for the name's NUL and the type byte) made the name slice run backwards.
    #[test]
    fn record_shorter_than_its_fixed_fields() {
        let mut buf = vec![0xff, 0xff, 0xa6, 0x01, 0x00, 0x04, 0x00, 0x00, 0xff, 0xff, 0xff, 0x80, 0xa6, 0x01, 0x00, 0x00, 0x12, 0x00];
        for f in [Format::Dirent, Format::Dirent64] {
            assert_eq!(patch_names(f, &mut buf, &[nix()]), 0);
            assert!(names(f, &buf).is_empty());
        }
    }

    #[test]
    fn positions() {
        assert_eq!(synthetic_index(SYNTHETIC_POS, 1), Some(0));
        assert_eq!(synthetic_index(SYNTHETIC_POS + 1, 1), Some(1));
        assert_eq!(synthetic_index(SYNTHETIC_POS + 2, 1), None);
        assert_eq!(synthetic_index(5, 1), None);
    }

    proptest! {
        /// Patching a real listing changes exactly the records named like a synthetic
        /// entry, and only their inode and type.
        #[test]
        fn patch_touches_only_matching_names(
            names_in in proptest::collection::vec(proptest::collection::vec(1u8..=255, 1..40), 0..30),
            with_nix in any::<bool>(),
            dirent64 in any::<bool>(),
        ) {
            let f = if dirent64 { Format::Dirent64 } else { Format::Dirent };
            let mut all: Vec<Vec<u8>> = names_in.into_iter().map(|n| n.into_iter().filter(|&b| b != b'/').collect::<Vec<u8>>()).filter(|n| !n.is_empty() && n != b"nix").collect();
            if with_nix { all.push(b"nix".to_vec()); }
            let mut buf = Vec::new();
            for (i, n) in all.iter().enumerate() {
                buf.extend(record(f, &Synthetic { name: n.clone(), ino: 1000 + i as u64, d_type: libc::DT_REG }, i as u64 + 1));
            }
            let before = names(f, &buf);
            let patched = patch_names(f, &mut buf, &[nix()]);
            let after = names(f, &buf);
            prop_assert_eq!(patched, usize::from(with_nix));
            prop_assert_eq!(before.len(), after.len());
            for (b, a) in before.iter().zip(&after) {
                prop_assert_eq!(&b.0, &a.0);
                prop_assert_eq!(b.3, a.3);
                if a.0 == b"nix" {
                    prop_assert_eq!((a.1, a.2), (42, libc::DT_DIR));
                } else {
                    prop_assert_eq!((a.1, a.2), (b.1, b.2));
                }
            }
        }

        /// Arbitrary bytes (a hostile or torn buffer) never make the walk panic or
        /// write outside the records it accepted.
        #[test]
        fn arbitrary_buffers(mut buf in proptest::collection::vec(any::<u8>(), 0..512), dirent64 in any::<bool>()) {
            let f = if dirent64 { Format::Dirent64 } else { Format::Dirent };
            let len = buf.len();
            patch_names(f, &mut buf, &[nix()]);
            prop_assert_eq!(buf.len(), len);
            let _ = names(f, &buf);
        }
    }
}
