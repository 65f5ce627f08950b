//! The rules of a document upload, before anything is stored: at most [`MAX_FILES`] files,
//! each at most the user's upload limit and all together at most four times it, counted as
//! the bytes arrive so an upload too large is refused before it is held whole; then every
//! file is recognised by its content ([`admit`]) before any is stored, so one bad file
//! stores none. Nothing here reads a request: the handler feeds it names and chunks.

use super::{Kind, sniff};
use crate::error::ApiError;

/// At most this many files in one upload.
pub const MAX_FILES: usize = 20;
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 20 * 1024 * 1024;

/// The largest file a user may upload (from their access level, passed in by the platform).
#[derive(Debug, Clone, Copy)]
pub struct UploadLimit(pub u64);

/// How many times the upload limit all the files of one upload may take together.
const BATCH_LIMITS: u64 = 4;

/// The largest `word/document.xml` a Word document may unpack to.
pub(super) const MAX_DOCX_XML: u64 = 10 * 1024 * 1024;

/// What an upload is, if it may be stored: the cheap checks done before anything is
/// written. Reading the text (the slow part, which can still fail) is left to the job.
pub fn admit(name: &str, bytes: &[u8]) -> Result<Kind, ApiError> {
    let kind = sniff(name, bytes)?;
    if kind == Kind::Docx {
        // What the archive declares; extraction still stops at the same limit if it lies.
        let declared = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .ok()
            .and_then(|mut a| a.by_name("word/document.xml").ok().map(|f| f.size()));
        if declared.is_none_or(|size| size > MAX_DOCX_XML) {
            return Err(ApiError::BadRequest(format!(
                "{name:?} could not be read: it unpacks to more than 10 MiB of text"
            )));
        }
    }
    Ok(kind)
}

/// A file of an upload being received: its name and the bytes so far.
pub struct File {
    name: String,
    bytes: Vec<u8>,
}

/// An upload being received, file by file and chunk by chunk.
pub struct Batch {
    max: u64,
    total: u64,
    files: Vec<(String, Vec<u8>)>,
}

impl Batch {
    pub fn new(limit: UploadLimit) -> Self {
        Batch {
            max: limit.0,
            total: 0,
            files: Vec::new(),
        }
    }

    /// Starts the next file; refused past [`MAX_FILES`].
    pub fn file(&self, name: String) -> Result<File, ApiError> {
        if self.files.len() == MAX_FILES {
            return Err(ApiError::BadRequest(format!(
                "upload at most {MAX_FILES} files at a time"
            )));
        }
        Ok(File {
            name,
            bytes: Vec::new(),
        })
    }

    /// Adds a chunk to `file`; refused (413) once the file passes the upload limit or the
    /// files together pass four times it.
    pub fn add(&mut self, file: &mut File, chunk: &[u8]) -> Result<(), ApiError> {
        self.total += chunk.len() as u64;
        let max = self.max;
        if (file.bytes.len() + chunk.len()) as u64 > max {
            return Err(ApiError::TooLarge(format!(
                "{:?} is larger than your upload limit of {max} bytes",
                file.name
            )));
        }
        if self.total > max.saturating_mul(BATCH_LIMITS) {
            return Err(ApiError::TooLarge(
                "the files together are too large for one upload".to_owned(),
            ));
        }
        file.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// Keeps a file whose bytes have all arrived.
    pub fn push(&mut self, file: File) {
        self.files.push((file.name, file.bytes));
    }

    /// The files received; an upload without one is refused.
    pub fn finish(self) -> Result<Received, ApiError> {
        if self.files.is_empty() {
            return Err(ApiError::BadRequest(
                "attach one or more files (multipart/form-data with file fields)".to_owned(),
            ));
        }
        Ok(Received {
            files: self.files,
            bytes: self.total,
        })
    }
}

/// Every file of an upload, received whole.
pub struct Received {
    files: Vec<(String, Vec<u8>)>,
    bytes: u64,
}

impl Received {
    /// The room storing them takes at most: the files, and their text in the index.
    pub fn room(&self) -> u64 {
        self.bytes.saturating_mul(2)
    }

    /// Every file checked before any is stored: a bad one stores none. Reading their text,
    /// which can still fail for one of them, is the indexing job's. Slow for large files:
    /// run it on a blocking thread.
    pub fn admit(self) -> Result<Vec<Upload>, ApiError> {
        self.files
            .into_iter()
            .map(|(name, bytes)| Ok(Upload::new(&name, admit(&name, &bytes)?, bytes)))
            .collect()
    }
}

/// An admitted upload, with the id it will be stored under.
pub struct Upload {
    pub id: String,
    pub name: String,
    pub kind: Kind,
    pub bytes: Vec<u8>,
}

impl Upload {
    pub fn new(name: &str, kind: Kind, bytes: Vec<u8>) -> Self {
        Upload {
            id: uuid::Uuid::new_v4().to_string(),
            name: sanitize_name(name),
            kind,
            bytes,
        }
    }
}

fn sanitize_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let name: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    if name.trim().is_empty() {
        "document".to_owned()
    } else {
        name.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(batch: &mut Batch, name: &str, chunks: &[&[u8]]) -> Result<(), ApiError> {
        let mut file = batch.file(name.to_owned())?;
        for chunk in chunks {
            batch.add(&mut file, chunk)?;
        }
        batch.push(file);
        Ok(())
    }

    #[test]
    fn a_file_may_be_as_large_as_the_limit_and_no_larger() {
        let mut batch = Batch::new(UploadLimit(10));
        file(&mut batch, "a.txt", &[b"12345", b"67890"]).expect("at the limit");
        let refused = file(&mut batch, "b.txt", &[b"123456", b"78901"]);
        assert!(
            matches!(&refused, Err(ApiError::TooLarge(m)) if m == "\"b.txt\" is larger than your upload limit of 10 bytes"),
            "{refused:?}"
        );
    }

    #[test]
    fn the_files_together_may_take_four_times_the_limit() {
        let mut batch = Batch::new(UploadLimit(10));
        for name in ["a", "b", "c", "d"] {
            file(&mut batch, name, &[b"0123456789"]).expect("within four limits");
        }
        let refused = file(&mut batch, "e", &[b"0"]);
        assert!(
            matches!(&refused, Err(ApiError::TooLarge(m)) if m.contains("together")),
            "{refused:?}"
        );
    }

    #[test]
    fn an_upload_has_one_to_twenty_files() {
        assert!(matches!(
            Batch::new(UploadLimit(10)).finish(),
            Err(ApiError::BadRequest(_))
        ));
        let mut batch = Batch::new(UploadLimit(1000));
        for i in 0..MAX_FILES {
            file(&mut batch, &format!("{i}.txt"), &[b"x"]).expect("up to twenty");
        }
        assert!(matches!(
            file(&mut batch, "21.txt", &[b"x"]),
            Err(ApiError::BadRequest(m)) if m == "upload at most 20 files at a time"
        ));
        let received = batch.finish().expect("twenty files");
        assert_eq!(received.room(), 40);
        assert_eq!(received.admit().expect("text files").len(), MAX_FILES);
    }

    #[test]
    fn one_bad_file_admits_none() {
        let mut batch = Batch::new(UploadLimit(1000));
        file(&mut batch, "notes.txt", &[b"plain words"]).expect("a file");
        file(
            &mut batch,
            "photo.txt",
            &[&[0x89, b'P', b'N', b'G', 0, 0xff]],
        )
        .expect("a file");
        assert!(batch.finish().expect("two files").admit().is_err());
    }
}
