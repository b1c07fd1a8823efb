//! Turns a dataset path into a regular, uncompressed file that the format
//! detector and the loaders can read (and read again). A `.gz` or `.zst`
//! file is decompressed, and a pipe (`<(zcat f.jsonl.gz)`) or FIFO is read
//! to its end, into a temporary folder; both are capped at
//! `FLIPSCOPE_MAX_DATA_MB` (16 GiB by default). A device, socket or other
//! file that is not regular is refused: reading one could never end.

use super::error::DataError;
use super::spec::ext;
use crate::fsutil::{copy_capped, kind_of, mib_limit, TempDir};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A dataset file ready to read; the temporary copy, if any, lives as long as this.
pub struct Staged {
    pub path: PathBuf,
    _temp: Option<TempDir>,
}

const GZIP: &[u8] = &[0x1f, 0x8b];
const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Most bytes a staged dataset may take.
pub fn max_data_bytes() -> u64 {
    mib_limit("FLIPSCOPE_MAX_DATA_MB", 16 << 10)
}

pub fn stage(path: &Path) -> Result<Staged, DataError> {
    let io = |e| DataError::io(path, e);
    let meta = std::fs::metadata(path).map_err(io)?;
    let ft = meta.file_type();
    let compressed = matches!(ext(path).as_str(), "gz" | "zst");
    if meta.is_file() && !compressed {
        return Ok(Staged { path: path.to_path_buf(), _temp: None });
    }
    let stream = {
        use std::os::unix::fs::FileTypeExt;
        ft.is_fifo()
    };
    if !meta.is_file() && !stream {
        return Err(DataError::Other {
            path: path.into(),
            message: format!("is {}; a dataset is a file, a folder or a pipe", kind_of(ft)),
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = BufReader::new(file);
    let head = reader.fill_buf().map_err(io)?.to_vec();
    // A compressed file keeps its inner name (data.jsonl.gz -> data.jsonl);
    // a pipe has none, so its first bytes say what it holds.
    let inner_name = if compressed { path.file_stem().map(PathBuf::from) } else { None };
    let decoded: Box<dyn Read> = if head.starts_with(GZIP) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(ZSTD) {
        Box::new(
            ruzstd::decoding::StreamingDecoder::new(reader)
                .map_err(|e| DataError::Other { path: path.into(), message: format!("not a zstd stream: {e}") })?,
        )
    } else if compressed {
        return Err(DataError::Other { path: path.into(), message: format!("named .{} but not compressed that way", ext(path)) });
    } else {
        Box::new(reader)
    };
    let temp = TempDir::new("flipscope-data").map_err(io)?;
    let tmp = temp.path().join("staged");
    let mut out = std::fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    copy_capped(decoded, &mut out, max_data_bytes()).map_err(io)?;
    drop(out);
    let name = match inner_name {
        Some(n) if !ext(&n).is_empty() => n,
        _ => PathBuf::from(format!("{}.{}", stem_or(path), sniff_ext(&tmp).map_err(io)?)),
    };
    let staged = temp.path().join(name.file_name().unwrap_or(name.as_os_str()));
    std::fs::rename(&tmp, &staged).map_err(|e| DataError::io(&staged, e))?;
    Ok(Staged { path: staged, _temp: Some(temp) })
}

fn stem_or(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().replace(['.', ' '], "_")).filter(|s| !s.is_empty()).unwrap_or_else(|| "stream".into())
}

/// The extension a stream's content calls for: parquet by its magic, JSON
/// when it opens a list, JSONL when it opens an object, TSV otherwise.
fn sniff_ext(path: &Path) -> std::io::Result<&'static str> {
    let mut head = [0u8; 4096];
    let n = std::fs::File::open(path)?.read(&mut head)?;
    let head = &head[..n];
    if head.starts_with(b"PAR1") {
        return Ok("parquet");
    }
    Ok(match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => "json",
        Some(b'{') => "jsonl",
        _ => "tsv",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_zstd_and_pipes_are_read_devices_refused() {
        let dir = tempfile::tempdir().unwrap();
        let line = b"{\"question\": \"q\", \"image\": \"a.png\"}\n";
        let gz = dir.path().join("d.jsonl.gz");
        let mut enc = flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(line).unwrap();
        enc.finish().unwrap();
        let staged = stage(&gz).unwrap();
        assert_eq!(staged.path.file_name().unwrap(), "d.jsonl");
        assert_eq!(std::fs::read(&staged.path).unwrap(), line);
        let temp = staged.path.parent().unwrap().to_path_buf();
        drop(staged);
        assert!(!temp.exists(), "the temporary copy goes with the Staged");

        let fake = dir.path().join("e.jsonl.zst");
        std::fs::write(&fake, line).unwrap();
        assert!(stage(&fake).err().unwrap().to_string().contains("not compressed that way"));

        let err = stage(Path::new("/dev/zero")).err().unwrap().to_string();
        assert!(err.contains("/dev/zero") && err.contains("a device"), "{err}");

        // A FIFO fed by a writer thread, as `<(zcat ...)` would be.
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::OpenOptions::new().write(true).open(fifo).unwrap().write_all(line).unwrap())
        };
        let staged = stage(&fifo).unwrap();
        writer.join().unwrap();
        assert_eq!(staged.path.extension().unwrap(), "jsonl");
        assert_eq!(std::fs::read(&staged.path).unwrap(), line);
    }
}
