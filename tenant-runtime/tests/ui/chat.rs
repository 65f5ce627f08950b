//! Chat: a reply streams in with its sources, and the history survives a reload.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_chat_reply_streams_in_with_its_sources_and_the_history_survives_a_reload() {
    let (runtime, browser, session) = start().await;

    // A document, uploaded through the API.
    let document = "opening-hours.txt";
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(
            b"Corner Bakery: we open at 7 every morning and close at 14, Tuesday to Sunday.\n"
                .to_vec(),
        )
        .file_name(document),
    );
    let r = runtime
        .http
        .post(runtime.url("/api/v1/documents"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 202);
    let answer: Value = r.json().await.expect("the upload's answer");
    let job = wait_for_job(&runtime, answer["job"]["id"].as_str().expect("a job")).await;
    assert_eq!(job["status"], "succeeded", "{job}");

    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Chatty Bakery").await;
    click(&browser, "#tab-chat").await;
    browser.wait_for("#no-sessions", TIMEOUT).await;
    let nav = session
        .js(
            "const a = document.querySelector('.app-nav a[data-nav=chat]'); \
             return [a.getAttribute('aria-current'), a.getAttribute('href')];",
        )
        .await;
    assert_eq!(
        nav,
        json!(["page", format!("#/projects/{project}/chat")]),
        "the header's Chat is this project's, and current"
    );

    // An empty message is refused beside the field, before any request.
    click(&browser, "#chat-send").await;
    browser
        .wait_for("#chat-input[aria-invalid=true]", TIMEOUT)
        .await;

    // Start a session: it is listed, current, and named in the URL.
    click(&browser, "#new-chat").await;
    browser.wait_for(".session-item.current", TIMEOUT).await;
    let chat = session
        .wait_js(
            "the session in the URL",
            "const m = location.hash.match(/\\/chat\\/([0-9a-f-]{36})$/); return m && m[1];",
            TIMEOUT,
        )
        .await;
    let chat = chat.as_str().expect("a session id").to_owned();

    // Record the assistant's bubble as it changes: it must exist (streaming) before the reply
    // is complete.
    session
        .js("window.seen = []; \
             new MutationObserver(() => { \
               const b = document.querySelector('#chat-log .chat-message.assistant'); \
               if (b) window.seen.push([b.querySelector('.chat-text').textContent.length, !!b.dataset.id, b.classList.contains('streaming')]); \
             }).observe(document.querySelector('#chat-log'), {subtree: true, childList: true, characterData: true, attributes: true});")
        .await;
    type_into(&browser, "#chat-input", "When do you open?").await;
    click(&browser, "#chat-send").await;
    browser
        .wait_for("#chat-log .chat-message.assistant[data-id]", TIMEOUT)
        .await;
    let shown = session
        .js("const b = document.querySelector('#chat-log .chat-message.assistant[data-id]'); \
             return { text: b.querySelector('.chat-text').textContent, \
                      streaming: b.classList.contains('streaming'), \
                      chips: [...b.querySelectorAll('.source-chip')].map(c => c.textContent), \
                      users: [...document.querySelectorAll('#chat-log .chat-message.user')] \
                        .map(u => [u.dataset.id ?? null, u.querySelector('.chat-text').textContent]), \
                      seen: window.seen };")
        .await;
    let text = shown["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("we open at 7 every morning"),
        "the reply quotes the document: {shown}"
    );
    assert!(
        text.contains("template-based, not a language model"),
        "the reply says what the assistant is: {shown}"
    );
    assert_eq!(shown["streaming"], json!(false), "{shown}");
    assert_eq!(
        shown["chips"],
        json!([format!("{document} · p. 1")]),
        "a source chip names the document and page: {shown}"
    );
    let users = shown["users"].as_array().expect("user bubbles");
    assert_eq!(users.len(), 1, "{shown}");
    assert_eq!(users[0][1], json!("When do you open?"), "{shown}");
    assert!(users[0][0].is_string(), "the stored message's id: {shown}");
    let seen = shown["seen"].as_array().expect("seen");
    assert!(
        seen.iter()
            .any(|s| s[2] == json!(true) && s[1] == json!(false)),
        "the bubble was shown while the reply streamed: {shown}"
    );
    assert!(
        seen.last()
            .is_some_and(|s| s[2] == json!(false) && s[1] == json!(true)),
        "{shown}"
    );

    // What the page shows is what was stored.
    let stored: Value = runtime
        .http
        .get(runtime.url(&format!("/api/v1/sessions/{chat}/messages")))
        .send()
        .await
        .expect("GET messages")
        .json()
        .await
        .expect("messages");
    assert_eq!(stored["messages"][0]["content"], json!("When do you open?"));
    assert_eq!(stored["messages"][1]["role"], json!("assistant"));
    assert_eq!(stored["messages"][1]["content"], json!(text));
    assert_eq!(
        stored["messages"][1]["sources"][0]["document_name"],
        json!(document)
    );

    // The session is listed under its first message.
    browser
        .wait_for_text(
            &format!(".session-item[data-id=\"{chat}\"] .session-link"),
            "When do you open?",
            TIMEOUT,
        )
        .await;

    // After a reload the conversation is still there.
    session
        .js("window.beforeReload = true; location.reload();")
        .await;
    let again = session
        .wait_js(
            "the conversation after the reload",
            "if (window.beforeReload) return null; \
             const b = document.querySelector('#chat-log .chat-message.assistant[data-id]'); \
             return b && { text: b.querySelector('.chat-text').textContent, \
                           chips: [...b.querySelectorAll('.source-chip')].map(c => c.textContent), \
                           users: [...document.querySelectorAll('#chat-log .chat-message.user .chat-text')].map(u => u.textContent), \
                           current: document.querySelector('.session-item.current')?.dataset.id, \
                           title: document.querySelector('#chat-title').textContent };",
            TIMEOUT,
        )
        .await;
    assert_eq!(again["text"], json!(text), "{again}");
    assert_eq!(again["chips"], json!([format!("{document} · p. 1")]));
    assert_eq!(again["users"], json!(["When do you open?"]));
    assert_eq!(again["current"], json!(chat));
    assert_eq!(again["title"], json!("When do you open?"));

    // A long conversation shows its latest 50 messages; "load earlier" brings the rest.
    for n in 0..25 {
        let r = runtime
            .http
            .post(runtime.url(&format!("/api/v1/sessions/{chat}/messages")))
            .json(&json!({ "content": format!("Question {n}") }))
            .send()
            .await
            .expect("POST message");
        assert_eq!(r.status(), 200);
        r.text().await.expect("the reply's stream");
    }
    session
        .js("window.beforeReload = true; location.reload();")
        .await;
    session
        .wait_js(
            "the latest 50 messages",
            "return !window.beforeReload && document.querySelectorAll('#chat-log .chat-message[data-id]').length === 50 \
                    && !document.querySelector('#load-earlier').hidden;",
            TIMEOUT,
        )
        .await;
    click(&browser, "#load-earlier").await;
    let all = session
        .wait_js(
            "the earlier messages",
            "const m = [...document.querySelectorAll('#chat-log .chat-message[data-id]')]; \
             return m.length === 52 && document.querySelector('#load-earlier').hidden \
                    && m.map(b => b.querySelector('.chat-text').textContent);",
            TIMEOUT,
        )
        .await;
    assert_eq!(all[0], json!("When do you open?"), "oldest first: {all}");
    assert_eq!(all[50], json!("Question 24"), "{all}");

    // Rename, then delete (after confirming): the list follows.
    click(&browser, "#rename-session").await;
    session.clear("#rename-title").await;
    type_into(&browser, "#rename-title", "Opening hours").await;
    click(&browser, "#rename-save").await;
    browser
        .wait_for_text(
            &format!(".session-item[data-id=\"{chat}\"] .session-link"),
            "Opening hours",
            TIMEOUT,
        )
        .await;
    browser
        .wait_for_text("#chat-title", "Opening hours", TIMEOUT)
        .await;
    // A second chat; then back to the first from the list.
    click(&browser, "#new-chat").await;
    let second = session
        .wait_js(
            "the second session in the URL",
            &format!(
                "const m = location.hash.match(/\\/chat\\/([0-9a-f-]{{36}})$/); \
                 return m && m[1] !== '{chat}' && document.querySelectorAll('.session-item').length === 2 && m[1];"
            ),
            TIMEOUT,
        )
        .await;
    browser.wait_for("#chat-empty:not([hidden])", TIMEOUT).await;
    click(
        &browser,
        &format!(".session-item[data-id=\"{chat}\"] .session-link"),
    )
    .await;
    session
        .wait_js(
            "the first chat again",
            &format!(
                "return location.hash.endsWith('/chat/{chat}') \
                    && document.querySelector('#chat-title').textContent === 'Opening hours' \
                    && document.querySelectorAll('#chat-log .chat-message[data-id]').length === 50 \
                    && document.querySelector('.session-item.current')?.dataset.id === '{chat}';"
            ),
            TIMEOUT,
        )
        .await;

    // Deleting it (after confirming) shows the chat that remains.
    click(&browser, "#delete-session").await;
    click(&browser, "dialog .dialog-confirm").await;
    session
        .wait_js(
            "the remaining chat",
            &format!(
                "return document.querySelectorAll('.session-item').length === 1 \
                    && document.querySelector('.session-item.current')?.dataset.id === {second} \
                    && location.hash.endsWith('/chat/' + {second});"
            ),
            TIMEOUT,
        )
        .await;
    let r = runtime
        .http
        .get(runtime.url(&format!("/api/v1/sessions/{chat}")))
        .send()
        .await
        .expect("GET session");
    assert_eq!(r.status(), 404);
}
