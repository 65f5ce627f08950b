//! Reading a PDF's text within bounds, so a hostile file cannot take the workspace down: a
//! compression bomb (a few kilobytes that inflate to gigabytes), a file of endless pages or
//! one that takes minutes to read is refused with a reason a person can act on, before the
//! parser holds what it would inflate. The compressed streams are measured first, raw and
//! without keeping a byte of what they inflate to; only then is the file parsed, page by
//! page, while the page count, the text and the time stay within their limits. A file that
//! still kills the process is caught by the indexing job, which gives a document two reads.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// All the compressed streams of a PDF together may inflate to this many bytes at most.
pub const MAX_INFLATED_BYTES: u64 = 128 << 20;
/// A PDF may have this many pages at most.
pub const MAX_PAGES: usize = 2_000;
/// Its text may be this long at most.
pub const MAX_TEXT_BYTES: usize = 16 << 20;
/// Reading it may take this long at most.
pub const MAX_READ: Duration = Duration::from_secs(60);

/// The text of each page, or why it cannot be read (a clause: "it unpacks to …").
pub fn pages(bytes: &[u8]) -> Result<Vec<String>, String> {
    let inflated = inflated_bytes(bytes, MAX_INFLATED_BYTES);
    if inflated > MAX_INFLATED_BYTES {
        return Err(format!(
            "it unpacks to more than {} MiB; a file this dense is refused so it cannot exhaust the workspace's memory",
            MAX_INFLATED_BYTES >> 20
        ));
    }
    let started = Instant::now();
    let mut doc = pdf_extract::Document::load_mem(bytes)
        .map_err(|e| format!("the PDF is malformed ({e})"))?;
    if doc.is_encrypted() {
        doc.decrypt("")
            .map_err(|_| "the PDF is protected by a password".to_owned())?;
    }
    let count = doc.get_pages().len();
    if count > MAX_PAGES {
        return Err(format!(
            "it has {count} pages, more than the {MAX_PAGES} a document may have"
        ));
    }
    let mut pages = Vec::with_capacity(count);
    let mut text_bytes = 0usize;
    for page in 1..=u32::try_from(count).unwrap_or(u32::MAX) {
        let mut text = String::new();
        let mut output = pdf_extract::PlainTextOutput::new(&mut text);
        // As the parser does: the pages up to the first it cannot read.
        if pdf_extract::output_doc_page(&doc, &mut output, page).is_err() {
            break;
        }
        text_bytes += text.len();
        if text_bytes > MAX_TEXT_BYTES {
            return Err(format!(
                "its text is longer than {} MiB",
                MAX_TEXT_BYTES >> 20
            ));
        }
        if started.elapsed() > MAX_READ {
            return Err(format!(
                "reading it took longer than {} seconds",
                MAX_READ.as_secs()
            ));
        }
        pages.push(text);
    }
    Ok(pages)
}

/// What the zlib (FlateDecode) streams of a PDF inflate to together, counted without keeping
/// any of it, and no further than just past `budget`. Every `stream … endstream` is tried;
/// one that is not zlib counts for what it yields before its first error (usually nothing).
fn inflated_bytes(bytes: &[u8], budget: u64) -> u64 {
    let mut total = 0u64;
    let mut at = 0;
    while let Some(found) = find(&bytes[at..], b"stream") {
        let keyword = at + found;
        at = keyword + b"stream".len();
        if keyword >= 3 && &bytes[keyword - 3..keyword] == b"end" {
            continue;
        }
        let start = match &bytes[at..] {
            [b'\r', b'\n', ..] => at + 2,
            [b'\n', ..] | [b'\r', ..] => at + 1,
            _ => continue,
        };
        let end = find(&bytes[start..], b"endstream").map_or(bytes.len(), |e| start + e);
        let mut counted = Counter(0);
        let left = budget.saturating_sub(total).saturating_add(1);
        let mut inflating = flate2::read::ZlibDecoder::new(&bytes[start..end]).take(left);
        // A stream that is not zlib, or is cut, counts for what it gave before it failed.
        let _ = std::io::copy(&mut inflating, &mut counted);
        total = total.saturating_add(counted.0);
        if total > budget {
            return total;
        }
        at = end;
    }
    total
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A writer that keeps nothing but the count.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(data).expect("compress");
        z.finish().expect("finish")
    }

    #[test]
    fn streams_are_measured_as_they_inflate_and_no_further_than_the_budget() {
        let one = zlib(&[b' '; 100_000]);
        let mut pdf = b"%PDF-1.4\n1 0 obj\n<< /Filter /FlateDecode >>\nstream\n".to_vec();
        pdf.extend_from_slice(&one);
        pdf.extend_from_slice(b"\nendstream\nendobj\n2 0 obj\n<< >>\nstream\r\n");
        pdf.extend_from_slice(&one);
        pdf.extend_from_slice(
            b"\r\nendstream\nendobj\n3 0 obj\n<< >>\nstream\nnot zlib\nendstream\n",
        );
        assert_eq!(inflated_bytes(&pdf, 1 << 30), 200_000);
        // Past the budget it stops counting (and inflating) just past it.
        assert_eq!(inflated_bytes(&pdf, 150_000), 150_001);
        assert_eq!(inflated_bytes(b"%PDF-1.4 no streams at all", 10), 0);
    }
}
