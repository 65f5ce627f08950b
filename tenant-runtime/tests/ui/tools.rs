//! The editor's code view (line numbers, colours, wrapping that keeps the colours under the
//! text) and the documents' drop area (files dropped are chosen, uploaded and indexed),
//! with one success message after saving settings.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

fn shot(png: &[u8], name: &str) {
    let path = std::env::temp_dir().join(format!("websplat-{name}.png"));
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
}

#[tokio::test]
async fn the_editor_numbers_colours_and_wraps_lines() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    create_project(&browser, &session, "Corner Bakery").await;
    open_in_editor(&browser, &session, "index.html").await;
    let long = "A very long paragraph about bread ".repeat(12);
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<!-- the menu -->\n<body class=\"menu\">\n<h1>Bread</h1>\n<p>{long}</p>\n</body>\n</html>\n"
    );
    session.clear("#page-editor").await;
    type_into(&browser, "#page-editor", &page).await;

    // One numbered row per line, coloured by what each piece is.
    let view = session
        .wait_js(
            "the code view",
            "const rows = document.querySelectorAll('.code-layer .code-line'); \
             return rows.length > 8 ? { rows: rows.length, \
               numbers: [...document.querySelectorAll('.code-number')].slice(0, 3).map((n) => n.textContent), \
               tags: [...document.querySelectorAll('.tok-tag')].slice(0, 3).map((t) => t.textContent), \
               comment: document.querySelector('.tok-comment')?.textContent, \
               attr: document.querySelector('.tok-attr')?.textContent, \
               string: document.querySelector('.tok-string')?.textContent, \
               tagColour: getComputedStyle(document.querySelector('.tok-tag')).color, \
               plainColour: getComputedStyle(document.querySelector('.code-layer')).color, \
               textColour: getComputedStyle(document.querySelector('#page-editor')).color } : null;",
            TIMEOUT,
        )
        .await;
    assert_eq!(view["rows"], json!(page.lines().count() + 1), "{view}");
    assert_eq!(view["numbers"], json!(["1", "2", "3"]), "{view}");
    assert_eq!(view["tags"], json!(["<html", ">", "<body"]), "{view}");
    assert_eq!(view["comment"], json!("<!-- the menu -->"), "{view}");
    assert_eq!(view["attr"], json!("lang"), "{view}");
    assert_eq!(view["string"], json!("\"en\""), "{view}");
    assert_ne!(
        view["tagColour"], view["plainColour"],
        "tags are coloured: {view}"
    );
    assert_eq!(
        view["textColour"],
        json!("rgba(0, 0, 0, 0)"),
        "the textarea's own text is transparent over the coloured copy: {view}"
    );

    // Without wrapping the long line scrolls sideways; wrapped, it takes several rows in
    // both layers alike, so the colours stay under the text — also on a page taller than
    // the editor (thirty more long lines, pasted).
    session
        .js(&format!(
            "const t = document.querySelector('#page-editor'); \
             t.value += {:?}; t.dispatchEvent(new Event('input', {{ bubbles: true }}));",
            format!("<p>{long}</p>\n").repeat(30)
        ))
        .await;
    let unwrapped = session
        .js("const t = document.querySelector('#page-editor'); return t.scrollWidth > t.clientWidth;")
        .await;
    assert_eq!(unwrapped, json!(true));
    click(&browser, "#editor-wrap").await;
    let wrapped = session
        .wait_js(
            "the wrapped view",
            "const t = document.querySelector('#page-editor'); const l = document.querySelector('.code-layer'); \
             return document.querySelector('.code-frame').classList.contains('code-wrap') \
               ? { attr: t.getAttribute('wrap'), sideways: t.scrollWidth > t.clientWidth, \
                   text: t.scrollHeight, layer: l.scrollHeight, \
                   row: document.querySelectorAll('.code-line')[5].getBoundingClientRect().height } : null;",
            TIMEOUT,
        )
        .await;
    assert_eq!(wrapped["attr"], json!("soft"), "{wrapped}");
    assert_eq!(wrapped["sideways"], json!(false), "{wrapped}");
    assert!(
        wrapped["text"].as_f64().is_some_and(|h| h > 1500.0),
        "the page is taller than the editor: {wrapped}"
    );
    assert_eq!(
        wrapped["text"], wrapped["layer"],
        "both layers are as tall: {wrapped}"
    );
    assert!(
        wrapped["row"].as_f64().is_some_and(|h| h > 40.0),
        "the long line wraps onto several rows: {wrapped}"
    );
    shot(&browser.screenshot().await, "editor-code-view");

    // The choice is remembered.
    browser.goto(&runtime.url("/")).await;
    browser.goto(&runtime.url("/#/projects")).await;
    let remembered = session
        .js("return localStorage.getItem('websplat.editor.wrap')")
        .await;
    assert_eq!(remembered, json!("1"));
}

#[tokio::test]
async fn files_dropped_on_the_upload_area_are_uploaded_and_indexed() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/#/documents")).await;
    browser.wait_for("#drop-zone", TIMEOUT).await;
    // A drag from the desktop, as the page sees it: dragover, then drop, with the files.
    let during = session
        .js("const dt = new DataTransfer(); \
             dt.items.add(new File(['Croissants every morning at seven.\\n'], 'morning-menu.txt', { type: 'text/plain' })); \
             window.dropped = dt; \
             const zone = document.getElementById('drop-zone'); \
             zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true })); \
             return zone.classList.contains('drop-zone-active');")
        .await;
    assert_eq!(during, json!(true), "the area shows it takes the drop");
    session
        .js("const zone = document.getElementById('drop-zone'); \
             zone.dispatchEvent(new DragEvent('drop', { dataTransfer: window.dropped, bubbles: true, cancelable: true }));")
        .await;
    let chosen = session
        .wait_js(
            "the dropped file, chosen",
            "const li = document.querySelector('#chosen-files li'); return li ? li.textContent : null;",
            TIMEOUT,
        )
        .await;
    assert_eq!(chosen, json!("morning-menu.txt — 35 B"));
    assert_eq!(
        session
            .js(
                "return document.getElementById('drop-zone').classList.contains('drop-zone-active')"
            )
            .await,
        json!(false)
    );
    click(&browser, "#upload-documents").await;
    browser
        .wait_for(".document-row[data-status=indexed]", TIMEOUT)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    shot(&browser.screenshot().await, "documents-drop-area");
}
