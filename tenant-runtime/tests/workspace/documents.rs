//! Documents: recognised, indexed in the background, searched with their passages and
//! deleted; hostile uploads refused with nothing stored; an unreadable PDF failing alone, with
//! its reason.

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
