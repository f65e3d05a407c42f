//! The one way nodeimg opens a file it was given to read (a disk image, a spec, a lock, a BOM,
//! an advisory feed): only a regular file, never a FIFO, socket or device (a FIFO would block
//! forever, `/dev/zero` would never end), and text documents only up to a stated size.
//!
//! Errors are plain [`io::Error`]s (kind `InvalidInput` for a refused file) so every crate wraps
//! them in its own error type with the path.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Opens `path` read-only if it is a regular file. The open does not block on a FIFO
/// (`O_NONBLOCK`, cleared again for a regular file), and the type is checked on the opened
/// descriptor, so a file swapped between a check and the open cannot slip through.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        // A socket cannot be opened at all (ENXIO): say what it is rather than the errno.
        Err(e) => match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => return Err(not_regular(meta.file_type())),
            _ => return Err(e),
        },
    };
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(not_regular(kind));
    }
    // Back to blocking reads (O_NONBLOCK has no effect on regular files on Linux, but keep the
    // descriptor ordinary for whoever reads it).
    let fd = std::os::fd::AsFd::as_fd(&file);
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let mut flags = nix::fcntl::OFlag::from_bits_truncate(flags);
    flags.remove(nix::fcntl::OFlag::O_NONBLOCK);
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(file)
}

/// Reads all of the regular file at `path`, refusing it (kind `InvalidData`) when it is larger
/// than `limit` bytes; `what` names the document in that message ("a spec", "a BOM").
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let too_big = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "is larger than {} (the limit for {what})",
                human_bytes(limit)
            ),
        )
    };
    let len = file.metadata()?.len();
    if len > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // The file may grow while we read: never read more than the limit plus one byte.
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

/// [`read_bounded`] for UTF-8 text.
pub fn read_bounded_string(path: &Path, limit: u64, what: &str) -> io::Result<String> {
    String::from_utf8(read_bounded(path, limit, what)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("is not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

fn not_regular(kind: std::fs::FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {}, not a regular file", describe(kind)),
    )
}

fn describe(kind: std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// `1 GiB`, `4 MiB`, `512 bytes`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `open_regular(path)` fails at once with InvalidInput and `message`.
    fn assert_refused(path: &Path, message: &str) {
        let e = open_regular(path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), message);
    }

    #[test]
    fn refuses_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.raw");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_refused(&fifo, "is a FIFO, not a regular file");
    }

    #[test]
    fn refuses_devices_and_directories() {
        let e = open_regular(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        let e = read_bounded(Path::new("/dev/zero"), 10, "a BOM").unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
        let dir = tempfile::tempdir().unwrap();
        let e = open_regular(dir.path()).unwrap_err();
        assert_eq!(e.to_string(), "is a directory, not a regular file");
    }

    #[test]
    fn bounded_read_names_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("spec.toml");
        std::fs::write(&p, vec![b'a'; 4097]).unwrap();
        let e = read_bounded(&p, 4096, "a spec").unwrap_err();
        assert_eq!(e.to_string(), "is larger than 4 KiB (the limit for a spec)");
        assert_eq!(read_bounded(&p, 4097, "a spec").unwrap().len(), 4097);
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        let e = read_bounded_string(&p, 10, "a spec").unwrap_err();
        assert_eq!(e.to_string(), "is not UTF-8 text (byte 0)");
    }

    #[test]
    fn refuses_a_socket_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.raw");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_refused(&sock, "is a socket, not a regular file");
    }

    #[test]
    fn missing_file_is_not_found() {
        let e = open_regular(Path::new("/nonexistent/x")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
