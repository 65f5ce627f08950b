//! Documents indexed in the background and searched with safe highlights; agents showing the
//! API's validation messages.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn documents_are_searched_with_safe_highlights_and_agents_show_validation_messages() {
    let (runtime, browser, session) = start().await;

    // Upload a document whose text has characters that mean something in HTML.
    let file = std::env::temp_dir().join(format!(
        "bakery-notes-{}.txt",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(
        &file,
        "Our sourdough loaves & <butter> rolls are baked at dawn. Opening hours: 7 to 14.\n",
    )
    .expect("write the document");
    browser.goto(&runtime.url("/#/documents")).await;
    type_into(&browser, "#document-files", &file.to_string_lossy()).await;
    click(&browser, "#upload-documents").await;
    // Indexed in the background: the job's card lists the file as its step, the list
    // shows the document's status.
    browser
        .wait_for("#indexing-status[data-status=succeeded]", TIMEOUT)
        .await;
    browser
        .wait_for(".document-row[data-status=indexed]", TIMEOUT)
        .await;
    let _ = std::fs::remove_file(&file);
    let steps = session
        .js("return [...document.querySelectorAll('#indexing-steps li')].map(li => [li.textContent, li.dataset.state]);")
        .await;
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name");
    assert_eq!(steps, json!([[name, "done"]]));

    type_into(&browser, "#search-query", "sourdough").await;
    click(&browser, "#search-documents").await;
    browser.wait_for(".search-hit .snippet mark", TIMEOUT).await;
    let hit = session
        .js("const p = document.querySelector('.search-hit .snippet'); \
             return { text: p.textContent, marks: [...p.querySelectorAll('mark')].map(m => m.textContent), \
                      elements: [...p.querySelectorAll('*')].map(e => e.localName) };")
        .await;
    assert_eq!(hit["marks"], json!(["sourdough"]), "{hit}");
    assert_eq!(
        hit["elements"],
        json!(["mark"]),
        "only <mark> elements: {hit}"
    );
    assert!(
        hit["text"]
            .as_str()
            .is_some_and(|t| t.contains("loaves & <butter> rolls")),
        "entities are decoded into text: {hit}"
    );

    // An agent with a bad model name: the API's message appears beside the field.
    click(&browser, ".app-nav a[data-nav=agents]").await;
    type_into(&browser, "#agent-name", "Copywriter").await;
    session.clear("#agent-model").await;
    type_into(&browser, "#agent-model", "not a model!").await;
    click(&browser, "#save-agent").await;
    browser
        .wait_for("#agent-model[aria-invalid=true]", TIMEOUT)
        .await;
    let message = session
        .js("return document.querySelector('#agent-form .field-error')?.textContent")
        .await;
    assert!(
        message.as_str().is_some_and(|m| m.contains("model")),
        "{message}"
    );
    assert!(
        browser
            .find(".agent[data-id]")
            .await
            .expect("find")
            .is_none()
    );

    session.clear("#agent-model").await;
    type_into(&browser, "#agent-model", "auto").await;
    click(&browser, "#agent-tool-document_search").await;
    click(&browser, "#save-agent").await;
    browser.wait_for(".agent[data-id]", TIMEOUT).await;
    let agents: Value = runtime
        .http
        .get(runtime.url("/api/v1/agents"))
        .send()
        .await
        .expect("GET agents")
        .json()
        .await
        .expect("agents");
    assert_eq!(agents["agents"][0]["name"], json!("Copywriter"));
    assert_eq!(agents["agents"][0]["tools"], json!(["document_search"]));

    // Outside a project, the header's Chat leads to a project chooser (none here yet).
    click(&browser, ".app-nav a[data-nav=chat]").await;
    browser
        .wait_for_text("#choose-chat h1", "Chat", TIMEOUT)
        .await;
    browser.wait_for("#chooser-empty", TIMEOUT).await;
}
