//! Documents: the knowledge a user gives their agents. Uploads (PDF, TXT, Markdown, HTML,
//! DOCX) are recognised by their content, not their name, and stored at once (status
//! `indexing`); a background job (`jobs::indexing`) then extracts their text, cuts it into
//! overlapping passages and indexes them for full-text search (tantivy, under the data
//! directory), leaving each document `indexed` or `failed` with the reason. Search ranks
//! passages and highlights the words found; a query returns the best passages with their
//! sources (document, page, offset). Indexing a document again replaces its passages, so a
//! job resumed after a crash never duplicates them. Deleting a document removes it from the
//! index, the database and the disk, whatever its status.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::Utc;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, INDEXED, STORED, STRING, Schema, TEXT, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, doc};

use crate::error::ApiError;
use crate::schema::documents;

pub mod http;
pub mod pdf;
mod upload;

use upload::MAX_DOCX_XML;
pub use upload::{
    Batch, DEFAULT_MAX_UPLOAD_BYTES, File, MAX_FILES, Received, Upload, UploadLimit, admit,
};

/// Passage length and overlap, in characters.
const PASSAGE_CHARS: usize = 800;
const OVERLAP_CHARS: usize = 120;
pub const MAX_RESULTS: usize = 50;
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pdf,
    Docx,
    Html,
    Markdown,
    Text,
}

impl Kind {
    pub fn parse(raw: &str) -> Option<Kind> {
        [
            Kind::Pdf,
            Kind::Docx,
            Kind::Html,
            Kind::Markdown,
            Kind::Text,
        ]
        .into_iter()
        .find(|k| k.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Docx => "docx",
            Kind::Html => "html",
            Kind::Markdown => "markdown",
            Kind::Text => "text",
        }
    }
}

/// What an upload really is, from its bytes (the name only tells Markdown from plain text).
pub fn sniff(name: &str, bytes: &[u8]) -> Result<Kind, ApiError> {
    if bytes.starts_with(b"%PDF-") {
        return Ok(Kind::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes));
        if archive.is_ok_and(|mut a| a.by_name("word/document.xml").is_ok()) {
            return Ok(Kind::Docx);
        }
        return Err(ApiError::UnsupportedMediaType(format!(
            "{name:?} is a zip archive but not a Word document (.docx)"
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        ApiError::UnsupportedMediaType(format!(
            "{name:?} is not a PDF, DOCX, HTML, Markdown or plain-text file (it is binary or not UTF-8)"
        ))
    })?;
    if text.contains('\0') {
        return Err(ApiError::UnsupportedMediaType(format!(
            "{name:?} is binary, not text"
        )));
    }
    let head = text
        .trim_start()
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.starts_with("<html") || head.contains("<body") {
        return Ok(Kind::Html);
    }
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".md") || lower.ends_with(".markdown") {
        return Ok(Kind::Markdown);
    }
    Ok(Kind::Text)
}

/// The text of a document, page by page (one page for formats without pages).
pub fn extract(name: &str, kind: Kind, bytes: &[u8]) -> Result<Vec<String>, ApiError> {
    let unreadable =
        |why: String| ApiError::BadRequest(format!("{name:?} could not be read: {why}"));
    let pages = match kind {
        Kind::Pdf => {
            let owned = bytes.to_vec();
            // The PDF parser can panic on hostile files; that must not take the runtime down.
            std::panic::catch_unwind(move || pdf::pages(&owned))
                .map_err(|_| unreadable("the PDF is malformed".to_owned()))?
                .map_err(unreadable)?
        }
        Kind::Docx => vec![docx_text(bytes).map_err(unreadable)?],
        Kind::Html => {
            let doc = scraper::Html::parse_document(&String::from_utf8_lossy(bytes));
            vec![doc.root_element().text().collect::<Vec<_>>().join(" ")]
        }
        Kind::Markdown | Kind::Text => vec![String::from_utf8_lossy(bytes).into_owned()],
    };
    if pages.iter().all(|p| p.trim().is_empty()) {
        return Err(ApiError::BadRequest(format!(
            "{name:?} contains no text to search"
        )));
    }
    Ok(pages)
}

fn docx_text(bytes: &[u8]) -> Result<String, String> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let file = archive
        .by_name("word/document.xml")
        .map_err(|e| e.to_string())?;
    // A zip bomb stops here: no more than this much XML is ever unpacked.
    let mut xml = String::new();
    file.take(MAX_DOCX_XML + 1)
        .read_to_string(&mut xml)
        .map_err(|e| e.to_string())?;
    if xml.len() as u64 > MAX_DOCX_XML {
        return Err("it unpacks to more than 10 MiB of text".to_owned());
    }
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut text = String::new();
    let mut in_text = false;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            quick_xml::events::Event::Start(e) if e.name().as_ref() == "w:t" => in_text = true,
            quick_xml::events::Event::End(e) if e.name().as_ref() == "w:t" => in_text = false,
            quick_xml::events::Event::End(e) if e.name().as_ref() == "w:p" => text.push('\n'),
            quick_xml::events::Event::Text(t) if in_text => {
                let raw: &str = t.as_ref();
                text.push_str(&quick_xml::escape::unescape(raw).map_err(|e| e.to_string())?);
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    Ok(text)
}

/// Overlapping passages of a page: (offset in characters, text).
pub fn passages(page: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = page.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + PASSAGE_CHARS).min(chars.len());
        // End at a space when one is near, so words stay whole.
        if end < chars.len()
            && let Some(space) = chars[start..end].iter().rposition(|c| c.is_whitespace())
            && space > PASSAGE_CHARS / 2
        {
            end = start + space;
        }
        let text: String = chars[start..end].iter().collect();
        if !text.trim().is_empty() {
            out.push((start, text.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
        if end == chars.len() {
            break;
        }
        start = end.saturating_sub(OVERLAP_CHARS).max(start + 1);
    }
    out
}

struct Fields {
    document_id: Field,
    document_name: Field,
    page: Field,
    offset: Field,
    text: Field,
}

/// The search index, one writer for the process.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    files: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct Hit {
    pub document_id: String,
    pub document_name: String,
    /// 1-based page for PDFs; 1 otherwise.
    pub page: u64,
    /// Where the passage starts on its page, in characters.
    pub offset: u64,
    pub score: f32,
    /// The passage around the words found, HTML-escaped, matches in `<mark>`.
    pub snippet: String,
    /// The whole passage (for query answers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passage: Option<String>,
}

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = documents, check_for_backend(diesel::sqlite::Sqlite))]
pub struct Document {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub size: i64,
    pub sha256: String,
    /// 0 until indexed.
    pub pages: i64,
    pub passages: i64,
    pub created_at: String,
    /// `indexing`, `indexed` (searchable) or `failed` (with `error`, the reason).
    pub status: String,
    pub error: Option<String>,
}

/// Where a document stands: stored and `Indexing` → `Indexed` (searchable) or `Failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Indexing,
    Indexed,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Indexing => "indexing",
            Status::Indexed => "indexed",
            Status::Failed => "failed",
        }
    }
}

impl Document {
    pub fn is(&self, status: Status) -> bool {
        self.status == status.as_str()
    }
}

/// A stored document and its bytes (or why they could not be read), for its job.
pub struct Pending {
    pub document: Document,
    pub bytes: Result<Vec<u8>, String>,
}

impl SearchIndex {
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let mut schema = Schema::builder();
        let fields = Fields {
            document_id: schema.add_text_field("document_id", STRING | STORED),
            document_name: schema.add_text_field("document_name", TEXT | STORED),
            page: schema.add_u64_field("page", INDEXED | STORED),
            offset: schema.add_u64_field("offset", STORED),
            text: schema.add_text_field("text", TEXT | STORED),
        };
        let dir = data_dir.join("index");
        std::fs::create_dir_all(&dir)?;
        let index = Index::open_or_create(MmapDirectory::open(&dir)?, schema.build())?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer_with_num_threads(1, 15_000_000)?;
        let files = data_dir.join("documents");
        std::fs::create_dir_all(&files)?;
        Ok(SearchIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            fields,
            files,
        })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter>, ApiError> {
        self.writer
            .lock()
            .map_err(|_| ApiError::internal(anyhow::anyhow!("the index writer lock is poisoned")))
    }

    /// Where a document's bytes are kept.
    pub fn stored_file(&self, id: &str) -> PathBuf {
        self.files.join(id)
    }

    /// Stores admitted uploads as documents waiting to be indexed: their bytes on disk
    /// (synced, so a job resumed after a crash finds them) and their rows. Run it in the
    /// transaction that queues their job; on an error the caller calls `forget`. Blocking.
    pub fn store(
        &self,
        conn: &mut SqliteConnection,
        uploads: &[Upload],
    ) -> Result<Vec<Document>, ApiError> {
        let at = Utc::now().to_rfc3339();
        uploads
            .iter()
            .map(|upload| {
                let sha: String = Sha256::digest(&upload.bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let mut file = std::fs::File::create(self.stored_file(&upload.id))
                    .map_err(ApiError::internal)?;
                std::io::Write::write_all(&mut file, &upload.bytes).map_err(ApiError::internal)?;
                file.sync_all().map_err(ApiError::internal)?;
                diesel::insert_into(documents::table)
                    .values((
                        documents::id.eq(&upload.id),
                        documents::name.eq(&upload.name),
                        documents::kind.eq(upload.kind.as_str()),
                        documents::size.eq(upload.bytes.len() as i64),
                        documents::sha256.eq(&sha),
                        documents::pages.eq(0),
                        documents::passages.eq(0),
                        documents::created_at.eq(&at),
                        documents::status.eq(Status::Indexing.as_str()),
                    ))
                    .execute(conn)?;
                get(conn, &upload.id)
            })
            .collect()
    }

    /// Removes the files `store` wrote for uploads that were not stored after all.
    pub fn forget(&self, uploads: &[Upload]) {
        for upload in uploads {
            let _ = std::fs::remove_file(self.stored_file(&upload.id));
        }
    }

    /// A document waiting to be indexed, with its bytes; `None` once it was deleted.
    /// Blocking.
    pub fn pending(
        &self,
        conn: &mut SqliteConnection,
        id: &str,
    ) -> Result<Option<Pending>, ApiError> {
        let Some(document) = find(conn, id)? else {
            return Ok(None);
        };
        let bytes = std::fs::read(self.stored_file(id))
            .map_err(|e| format!("its stored copy could not be read ({e}); upload it again"));
        Ok(Some(Pending { document, bytes }))
    }

    /// Commits a document's passages to the index; how many. Its passages from an earlier,
    /// interrupted run are replaced in the same commit, so running this again never
    /// duplicates them. The caller then marks the document `indexed` (`indexed`): a crash
    /// in between leaves it `indexing`, and its resumed job replaces the passages again.
    /// `None` if the document was deleted meanwhile. Blocking.
    pub fn index(
        &self,
        conn: &mut SqliteConnection,
        id: &str,
        pages: &[String],
    ) -> Result<Option<i64>, ApiError> {
        let Some(document) = find(conn, id)? else {
            return Ok(None);
        };
        let mut writer = self.writer()?;
        writer.delete_term(Term::from_field_text(self.fields.document_id, id));
        let mut count = 0i64;
        let staged = (|| -> Result<(), ApiError> {
            for (page_no, page) in pages.iter().enumerate() {
                for (offset, text) in passages(page) {
                    writer
                        .add_document(doc!(
                            self.fields.document_id => id,
                            self.fields.document_name => document.name.as_str(),
                            self.fields.page => page_no as u64 + 1,
                            self.fields.offset => offset as u64,
                            self.fields.text => text,
                        ))
                        .map_err(ApiError::internal)?;
                    count += 1;
                }
            }
            writer.commit().map_err(ApiError::internal)?;
            Ok(())
        })();
        if let Err(e) = staged {
            let _ = writer.rollback();
            return Err(e);
        }
        crate::crash::crash_point("after_index_commit");
        self.reader.reload().map_err(ApiError::internal)?;
        Ok(Some(count))
    }

    /// Removes these documents' passages from the index (their rows stay). Blocking.
    pub fn unindex(&self, ids: &[String]) -> Result<(), ApiError> {
        let mut writer = self.writer()?;
        for id in ids {
            writer.delete_term(Term::from_field_text(self.fields.document_id, id));
        }
        writer.commit().map_err(ApiError::internal)?;
        self.reader.reload().map_err(ApiError::internal)?;
        Ok(())
    }

    /// Removes a document everywhere. Blocking.
    pub fn delete(&self, conn: &mut SqliteConnection, id: &str) -> Result<(), ApiError> {
        get(conn, id)?;
        let mut writer = self.writer()?;
        writer.delete_term(Term::from_field_text(self.fields.document_id, id));
        writer.commit().map_err(ApiError::internal)?;
        self.reader.reload().map_err(ApiError::internal)?;
        diesel::delete(documents::table.find(id)).execute(conn)?;
        let _ = std::fs::remove_file(self.files.join(id));
        Ok(())
    }

    /// The best passages for `query`, ranked, with highlighted snippets. Blocking.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        with_passages: bool,
    ) -> Result<Vec<Hit>, ApiError> {
        let query = query.trim();
        if query.is_empty() || query.chars().count() > 500 {
            return Err(ApiError::validation("q", "search for 1 to 500 characters"));
        }
        if !(1..=MAX_RESULTS).contains(&limit) {
            return Err(ApiError::validation(
                "limit",
                format!("limit must be 1 to {MAX_RESULTS}"),
            ));
        }
        let searcher = self.reader.searcher();
        let parser = QueryParser::for_index(
            &self.index,
            vec![self.fields.text, self.fields.document_name],
        );
        // Lenient: a stray quote or colon in what a person typed is never an error.
        let (parsed, _) = parser.parse_query_lenient(query);
        let top = searcher
            .search(&parsed, &TopDocs::with_limit(limit).order_by_score())
            .map_err(ApiError::internal)?;
        let mut snippets = SnippetGenerator::create(&searcher, &*parsed, self.fields.text)
            .map_err(ApiError::internal)?;
        snippets.set_max_num_chars(240);
        top.into_iter()
            .map(|(score, address)| {
                let doc: TantivyDocument = searcher.doc(address).map_err(ApiError::internal)?;
                let text = |f: Field| {
                    doc.get_first(f)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                let number = |f: Field| {
                    doc.get_first(f)
                        .and_then(|v| v.as_u64())
                        .unwrap_or_default()
                };
                let mut snippet = snippets.snippet_from_doc(&doc);
                snippet.set_snippet_prefix_postfix("<mark>", "</mark>");
                Ok(Hit {
                    document_id: text(self.fields.document_id),
                    document_name: text(self.fields.document_name),
                    page: number(self.fields.page),
                    offset: number(self.fields.offset),
                    score,
                    snippet: snippet.to_html(),
                    passage: with_passages.then(|| text(self.fields.text)),
                })
            })
            .collect()
    }
}

pub fn find(conn: &mut SqliteConnection, id: &str) -> Result<Option<Document>, ApiError> {
    Ok(documents::table
        .find(id)
        .select(Document::as_select())
        .first(conn)
        .optional()?)
}

pub fn get(conn: &mut SqliteConnection, id: &str) -> Result<Document, ApiError> {
    find(conn, id)?.ok_or_else(|| ApiError::NotFound(format!("there is no document {id:?}")))
}

/// Marks a document `indexed`, its passages committed to the index; `None` if it was
/// deleted meanwhile.
pub fn indexed(
    conn: &mut SqliteConnection,
    id: &str,
    pages: usize,
    passages: i64,
) -> Result<Option<Document>, ApiError> {
    diesel::update(documents::table.find(id))
        .set((
            documents::status.eq(Status::Indexed.as_str()),
            documents::error.eq(None::<String>),
            documents::pages.eq(pages as i64),
            documents::passages.eq(passages),
        ))
        .execute(conn)?;
    find(conn, id)
}

/// How many times a document is read at most: one whose reading stopped the workspace this
/// often is failed instead of read again.
pub const MAX_READS: i64 = 2;

/// Counts one more read of a document, before it is read; how many there have been with
/// this one (0 if it was deleted meanwhile).
pub fn count_read(conn: &mut SqliteConnection, id: &str) -> Result<i64, ApiError> {
    Ok(diesel::update(documents::table.find(id))
        .set(documents::reads.eq(documents::reads + 1))
        .returning(documents::reads)
        .get_result::<i64>(conn)
        .optional()?
        .unwrap_or(0))
}

/// Records why a document could not be indexed; `None` if it was deleted meanwhile.
pub fn fail(
    conn: &mut SqliteConnection,
    id: &str,
    reason: &str,
) -> Result<Option<Document>, ApiError> {
    diesel::update(documents::table.find(id))
        .set((
            documents::status.eq(Status::Failed.as_str()),
            documents::error.eq(reason),
        ))
        .execute(conn)?;
    find(conn, id)
}

pub fn list(conn: &mut SqliteConnection) -> Result<Vec<Document>, ApiError> {
    Ok(documents::table
        .order(documents::created_at.desc())
        .select(Document::as_select())
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_decides_the_kind_not_the_name() {
        assert_eq!(sniff("notes.txt", b"%PDF-1.7 ...").ok(), Some(Kind::Pdf));
        assert_eq!(
            sniff("page.pdf", b"<!doctype html><html><body>x</body></html>").ok(),
            Some(Kind::Html)
        );
        assert_eq!(sniff("readme.md", b"# Title").ok(), Some(Kind::Markdown));
        assert_eq!(sniff("x.bin", b"plain words").ok(), Some(Kind::Text));
        assert!(sniff("photo.txt", &[0x89, b'P', b'N', b'G', 0, 0xff]).is_err());
        assert!(sniff("archive.docx", b"PK\x03\x04not really a zip").is_err());
    }

    #[test]
    fn passages_overlap_and_keep_words_whole() {
        let page = "word ".repeat(400);
        let parts = passages(&page);
        assert!(parts.len() >= 3, "{}", parts.len());
        assert!(
            parts.iter().all(|(_, t)| t.split(' ').all(|w| w == "word")),
            "words were cut"
        );
        assert!(
            parts
                .windows(2)
                .all(|w| w[1].0 < w[0].0 + w[0].1.chars().count()),
            "passages overlap"
        );
    }
}
