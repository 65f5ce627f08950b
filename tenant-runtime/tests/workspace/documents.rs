//! Documents: recognised, indexed in the background, searched with their passages and
//! deleted; hostile uploads refused with nothing stored; an unreadable PDF failing alone, with
//! its reason; a PDF bomb failed in words with the workspace up, and a document whose reading
//! kills the workspace failed after two reads instead of a crash loop.

use serde_json::json;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_recognised_indexed_searched_and_deleted() {
    let rt = Runtime::start().await;
    let r = upload(
        &rt,
        vec![
            (
                "notes.txt",
                b"Our oven runs at 250 degrees for the sourdough loaves.".to_vec(),
            ),
            (
                "guide.md",
                b"# Opening hours\nWe open at seven every morning.".to_vec(),
            ),
            (
                "page.pdf",
                b"<!doctype html><html><body><p>Croissants need cold butter.</p></body></html>"
                    .to_vec(),
            ),
            (
                "recipes.docx",
                docx(&["Rye bread needs a long proof.", "Spelt is a gentle grain."]),
            ),
            (
                "menu.pdf",
                pdf(&["Coffee and cake", "Sourdough toast with butter"]),
            ),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    let answer = body(r).await;
    let docs = answer["documents"].as_array().cloned().expect("documents");
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["text", "markdown", "html", "docx", "pdf"],
        "named .pdf but HTML inside: sniffed as html"
    );
    assert!(
        docs.iter().all(|d| d["status"] == "indexing"),
        "stored, not indexed yet: {docs:?}"
    );
    // One indexing job for the upload, a step per document, in order.
    let job = &answer["job"];
    assert_eq!(job["kind"], "index_documents");
    let ids: Vec<String> = docs
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(step_names(job), ids);
    let labels: Vec<&str> = job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["label"].as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "notes.txt",
            "guide.md",
            "page.pdf",
            "recipes.docx",
            "menu.pdf"
        ]
    );
    let events = read_events(
        rt.get(&format!(
            "/api/v1/jobs/{}/events",
            job["id"].as_str().expect("id")
        ))
        .await,
        |e| e["status"] == "succeeded" || e["status"] == "failed",
    )
    .await;
    let done = events.last().expect("the job's end");
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["indexed"], 5);
    assert!(
        done["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .all(|s| s["state"] == "done"),
        "{done}"
    );
    let docs = body(rt.get("/api/v1/documents").await).await["documents"]
        .as_array()
        .cloned()
        .expect("documents");
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    let menu = docs
        .iter()
        .find(|d| d["name"] == "menu.pdf")
        .expect("the PDF");
    assert_eq!(menu["pages"], 2);

    let hits = body(rt.get("/api/v1/documents/search?q=sourdough").await).await["hits"]
        .as_array()
        .cloned()
        .expect("hits");
    let names: Vec<&str> = hits
        .iter()
        .filter_map(|h| h["document_name"].as_str())
        .collect();
    assert!(
        names.contains(&"notes.txt") && names.contains(&"menu.pdf"),
        "{names:?}"
    );
    let in_pdf = hits
        .iter()
        .find(|h| h["document_name"] == "menu.pdf")
        .expect("the PDF hit");
    assert_eq!(in_pdf["page"], 2, "the passage's page is its source");
    assert!(
        hits.iter().all(|h| h["snippet"]
            .as_str()
            .is_some_and(|s| s.to_lowercase().contains("<mark>sourdough</mark>"))),
        "{hits:?}"
    );

    let docx_hit = body(rt.get("/api/v1/documents/search?q=rye").await).await;
    assert_eq!(docx_hit["hits"][0]["document_name"], "recipes.docx");

    let answer = body(
        rt.post(
            "/api/v1/documents/query",
            &json!({"question": "when do you open?", "limit": 1}),
        )
        .await,
    )
    .await;
    assert_eq!(answer["passages"][0]["document_name"], "guide.md");
    assert!(
        answer["passages"][0]["passage"]
            .as_str()
            .unwrap_or_default()
            .contains("seven every morning")
    );

    // Odd queries are still queries.
    assert_eq!(
        rt.get("/api/v1/documents/search?q=%22unclosed%20AND%20(")
            .await
            .status(),
        200
    );
    error(rt.get("/api/v1/documents/search?q=").await, 400).await;

    let notes = ids[0].as_str();
    assert_eq!(
        rt.http
            .delete(rt.url(&format!("/api/v1/documents/{notes}")))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    let hits = body(rt.get("/api/v1/documents/search?q=oven").await).await;
    assert_eq!(hits["hits"], json!([]), "deleted documents leave the index");
    assert_eq!(
        body(rt.get("/api/v1/documents").await).await["documents"]
            .as_array()
            .map(Vec::len),
        Some(4)
    );

    // A document deleted before (or while) its job indexes it never becomes searchable.
    let r = upload(
        &rt,
        vec![
            (
                "long.txt",
                "Baguettes rest overnight. ".repeat(2000).into_bytes(),
            ),
            ("gone.txt", b"Pretzels are dipped in lye.".to_vec()),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    let answer = body(r).await;
    let gone = answer["documents"][1]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        rt.http
            .delete(rt.url(&format!("/api/v1/documents/{gone}")))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    let done = wait_for_job(&rt, answer["job"]["id"].as_str().expect("job")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        ["skipped", "done"].contains(&done["steps"][1]["state"].as_str().unwrap_or_default()),
        "{done}"
    );
    assert_eq!(passages_found(&rt, "pretzels").await, []);
    assert!(!passages_found(&rt, "baguettes").await.is_empty());
    error(rt.get(&format!("/api/v1/documents/{gone}")).await, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_are_refused_and_store_nothing() {
    let rt = Runtime::start().await;
    let good = ("fine.txt", b"perfectly fine text".to_vec());

    // A zip named .docx that is no Word document: the whole upload is refused, the good
    // file too. (A file that is what it says but cannot be read fails alone, later: see
    // an_unreadable_pdf_fails_alone_with_its_reason.)
    let not_word = {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file("readme.txt", zip::write::SimpleFileOptions::default())
            .expect("entry");
        zip.write_all(b"hello").expect("write");
        zip.finish().expect("zip").into_inner()
    };
    let r = upload(&rt, vec![good.clone(), ("letter.docx", not_word)]).await;
    let b = error(r, 415).await;
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("letter.docx"),
        "{b}"
    );
    // An image named .txt.
    error(
        upload(
            &rt,
            vec![(
                "photo.txt",
                vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0xff],
            )],
        )
        .await,
        415,
    )
    .await;
    // A zip that unpacks to far more than it weighs.
    let bomb = {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zip.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .expect("entry");
        let block = vec![b' '; 1 << 20];
        for _ in 0..12 {
            zip.write_all(&block).expect("write");
        }
        zip.finish().expect("zip").into_inner()
    };
    assert!(bomb.len() < 200_000, "{}", bomb.len());
    error(upload(&rt, vec![("bomb.docx", bomb)]).await, 400).await;
    // No files at all.
    let r = rt
        .http
        .post(rt.url("/api/v1/documents"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert!(r.status().is_client_error(), "{}", r.status());

    assert_eq!(
        body(rt.get("/api/v1/documents").await).await["documents"],
        json!([])
    );
    assert_eq!(
        body(rt.get("/api/v1/documents/search?q=fine").await).await["hits"],
        json!([])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_pdf_fails_alone_with_its_reason() {
    let rt = Runtime::start().await;
    let docs = upload_indexed(
        &rt,
        vec![
            ("fine.txt", b"perfectly fine text".to_vec()),
            ("broken.pdf", b"%PDF-1.7 this is not a pdf at all".to_vec()),
            ("blank.md", b"   \n\n  ".to_vec()),
        ],
    )
    .await;
    let statuses: Vec<&str> = docs.iter().filter_map(|d| d["status"].as_str()).collect();
    assert_eq!(statuses, ["indexed", "failed", "failed"], "{docs:?}");
    let reason = docs[1]["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("broken.pdf") && reason.contains("could not be read"),
        "a reason a person can read: {reason}"
    );
    assert!(
        docs[2]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no text")),
        "{docs:?}"
    );
    assert!(docs[0]["error"].is_null());
    let jobs = body(rt.get("/api/v1/jobs").await).await;
    let job = &jobs["jobs"][0];
    assert_eq!(job["status"], "succeeded", "the job ran to its end: {job}");
    assert_eq!(
        (
            job["result"]["indexed"].as_u64(),
            job["result"]["failed"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let states: Vec<&str> = job["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["state"].as_str())
        .collect();
    assert_eq!(states, ["done", "failed", "failed"]);
    assert_eq!(job["steps"][1]["message"].as_str(), Some(reason));

    // The good file is searchable; the failed ones can be deleted like any other.
    assert_eq!(passages_found(&rt, "fine").await.len(), 1);
    let broken = docs[1]["id"].as_str().expect("id");
    assert_eq!(
        rt.http
            .delete(rt.url(&format!("/api/v1/documents/{broken}")))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    assert_eq!(
        body(rt.get("/api/v1/documents").await).await["documents"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

/// A real PDF of one page whose content stream is `mib` MiB of spaces, compressed
/// (FlateDecode) to about a thousandth of that: a compression bomb. The stream is made once
/// per MiB (a sync flush ends each at a byte), then the steady MiB repeated, then closed with
/// an empty final block and the Adler-32 of all of it, as zlib would write it.
fn bomb_pdf(mib: u64) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let spaces = vec![b' '; 1 << 20];
    let mut z = Compress::new(Compression::best(), true);
    let feed = |z: &mut Compress| {
        let mut out = Vec::with_capacity(1 << 16);
        let before = z.total_in();
        z.compress_vec(&spaces, &mut out, FlushCompress::Sync)
            .expect("compress");
        assert_eq!(z.total_in() - before, 1 << 20, "a MiB in one go");
        out
    };
    let (first, second, steady) = (feed(&mut z), feed(&mut z), feed(&mut z));
    let mut stream = first;
    stream.extend_from_slice(&second);
    for _ in 2..mib {
        stream.extend_from_slice(&steady);
    }
    assert_eq!(second, steady, "deflate repeats itself on repeated input");
    // An empty final block with fixed codes, then the checksum of `mib` MiB of spaces.
    stream.extend_from_slice(&[0x03, 0x00]);
    let (n, m) = (u128::from(mib) << 20, 65_521u128);
    let a = (1 + n * 32) % m;
    let b = (n + 32 * n * (n + 1) / 2) % m;
    stream.extend_from_slice(&(((b << 16) | a) as u32).to_be_bytes());

    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_vec(),
        [
            format!(
                "<< /Length {} /Filter /FlateDecode >>\nstream\n",
                stream.len()
            )
            .into_bytes(),
            stream,
            b"\nendstream".to_vec(),
        ]
        .concat(),
    ];
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(b"xref\n0 5\n0000000000 65535 f \n");
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    out
}

#[test]
fn the_bomb_is_a_real_pdf_that_inflates_as_it_says() {
    use std::io::Read;
    let pdf = bomb_pdf(4);
    assert!(pdf.len() < 16 * 1024, "{} bytes", pdf.len());
    let start = pdf
        .windows(7)
        .position(|w| w == b"stream\n")
        .expect("stream")
        + 7;
    let end = pdf
        .windows(10)
        .position(|w| w == b"\nendstream")
        .expect("end");
    let mut inflated = Vec::new();
    flate2::read::ZlibDecoder::new(&pdf[start..end])
        .read_to_end(&mut inflated)
        .expect("a valid zlib stream, checksum and all");
    assert_eq!(inflated.len(), 4 << 20);
    assert!(inflated.iter().all(|b| *b == b' '));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_bomb_fails_in_words_and_the_workspace_stays_up() {
    let mut rt = Runtime::start().await;
    // 160 KiB that inflate to 160 MiB, beside a document that is fine.
    let bomb = bomb_pdf(160);
    assert!(bomb.len() < 512 * 1024, "{} bytes", bomb.len());
    let docs = upload_indexed(
        &rt,
        vec![
            ("bomb.pdf", bomb),
            ("fine.txt", b"the sourdough rests overnight".to_vec()),
        ],
    )
    .await;
    assert_eq!(docs[0]["status"], "failed", "{docs:?}");
    let reason = docs[0]["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("bomb.pdf") && reason.contains("unpacks to more than 128 MiB"),
        "a reason a person can read: {reason}"
    );
    assert_eq!(docs[1]["status"], "indexed", "{docs:?}");
    assert_eq!(passages_found(&rt, "sourdough").await.len(), 1);
    // Settled: a restart reads it no more.
    rt.kill_and_restart().await;
    let listed = documents(&rt).await;
    let bomb = listed
        .iter()
        .find(|d| d["name"] == "bomb.pdf")
        .expect("still listed");
    assert_eq!(bomb["status"], "failed");
    assert_eq!(bomb["error"].as_str(), Some(reason));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_that_stops_the_workspace_twice_fails_instead_of_a_crash_loop() {
    // Each read of a document dies where a hostile file past every bound would kill it.
    let mut rt = Runtime::start_with(Settings {
        crash_at: Some("reading_document"),
        ..Settings::default()
    })
    .await;
    let r = upload(&rt, vec![("deadly.pdf", pdf(&["every read kills"]))]).await;
    assert_eq!(r.status(), 202);
    let id = body(r).await["documents"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Read once and died; started again, its job reads it a second time and dies again.
    for _ in 0..2 {
        let started = std::time::Instant::now();
        while rt.child.try_wait().expect("wait").is_none() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "the runtime did not die reading the document"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        rt.child = spawn(&rt.data, rt.port, &rt.settings);
    }
    // The third start (which would die too if it read it) reads it no more: it is failed,
    // with why, and the workspace serves.
    rt.wait_healthy().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let document = loop {
        let d = body(rt.get(&format!("/api/v1/documents/{id}")).await).await;
        if d["status"] != "indexing" {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "still indexing: {d}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(document["status"], "failed", "{document}");
    assert!(
        document["error"]
            .as_str()
            .is_some_and(|e| e.contains("deadly.pdf") && e.contains("stopped twice")),
        "{document}"
    );
    assert_eq!(rt.get("/healthz").await.status(), 200);
    assert!(rt.child.try_wait().expect("wait").is_none(), "still up");
}
