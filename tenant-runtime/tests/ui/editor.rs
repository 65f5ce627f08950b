//! The editor: a site generated from a brief with live progress, edited, previewed, undone
//! and scored; a stale save shows the current version and can overwrite it.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_brief_generates_a_site_that_can_be_edited_previewed_undone_and_scored() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Corner Bakery").await;

    // The brief, in the form's own fields; autonomous applies the site as a new version.
    let name = session
        .js("return document.querySelector('#generate-form [name=name]').value")
        .await;
    assert_eq!(name, json!("Corner Bakery"), "the name is prefilled");
    type_into(
        &browser,
        "#generate-form [name=description]",
        "Sourdough bread and pastries baked every morning in Lisbon.",
    )
    .await;
    type_into(
        &browser,
        "#generate-form [name=sections]",
        "Menu, About us, Visit",
    )
    .await;
    click(&browser, "#generate-form [name=tone] option[value=playful]").await;
    type_into(
        &browser,
        "#generate-form [name=keywords]",
        "sourdough, pastries",
    )
    .await;
    click(
        &browser,
        "#generate-form [name=autonomy] option[value=autonomous]",
    )
    .await;
    assert!(
        session
            .js("return document.querySelector('#generator-notice').textContent")
            .await
            .as_str()
            .is_some_and(|t| t.contains("template-based") && t.contains("not a language model")),
        "the tab says plainly what the generator is"
    );

    // Record every state the progress bar and the step line go through.
    session
        .js("window.seen = []; \
             const record = () => window.seen.push([document.querySelector('#generate-progress').value, document.querySelector('#generate-step').textContent]); \
             new MutationObserver(record).observe(document.querySelector('#generate-job'), {subtree: true, childList: true, characterData: true, attributes: true});")
        .await;
    click(&browser, "#generate-submit").await;
    browser
        .wait_for("#generate-status[data-status=succeeded]", TIMEOUT)
        .await;
    let state = session
        .js("return { value: document.querySelector('#generate-progress').value, \
                      max: document.querySelector('#generate-progress').max, \
                      step: document.querySelector('#generate-step').textContent, \
                      status: document.querySelector('#generate-status').textContent, \
                      steps: [...document.querySelectorAll('#generate-steps li')].map(li => [li.dataset.step, li.textContent, li.classList.contains('done')]), \
                      seen: window.seen };")
        .await;
    assert_eq!(state["value"], json!(100), "{state}");
    assert_eq!(state["max"], json!(100), "{state}");
    assert_eq!(state["step"], json!("done"), "{state}");
    assert_eq!(state["status"], json!("Succeeded"), "{state}");
    let steps: Vec<&str> = state["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            assert_eq!(s[2], json!(true), "every step is marked done: {s}");
            s[0].as_str().expect("a step name")
        })
        .collect();
    assert_eq!(
        steps,
        ["plan", "content", "seo", "layout", "code", "review"],
        "{state}"
    );
    let seen: Vec<f64> = state["seen"]
        .as_array()
        .expect("seen")
        .iter()
        .filter_map(|s| s[0].as_f64())
        .collect();
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]) && seen.last() == Some(&100.0),
        "the bar only moves forward, to the end: {seen:?}"
    );
    let generator = session
        .js("return document.querySelector('#result-generator').textContent")
        .await;
    assert!(
        generator
            .as_str()
            .is_some_and(|g| g.contains("template-based, not a language model")),
        "the result names its generator: {generator}"
    );

    // The editor shows the generated pages; the preview shows the generated site.
    click(&browser, "#open-editor").await;
    for page in [
        "index.html",
        "menu.html",
        "about-us.html",
        "visit.html",
        "styles.css",
    ] {
        browser
            .wait_for(&format!(".file-item[data-path=\"{page}\"]"), TIMEOUT)
            .await;
    }
    open_in_editor(&browser, &session, "index.html").await;
    let generated = editor_text(&session).await;
    assert!(generated.contains("<h1>Corner Bakery</h1>"), "{generated}");
    wait_for_preview(&browser, &session, "h1", "Corner Bakery").await;
    let sandbox = session
        .js("return document.querySelector('#preview-frame').getAttribute('sandbox')")
        .await;
    assert_eq!(sandbox, json!("allow-scripts"));

    // The SEO score of the generated site.
    let generated_score = seo_score(&browser, &session).await;

    // Edit index.html, save: the preview follows.
    open_in_editor(&browser, &session, "index.html").await;
    let edited = "<!doctype html>\n<html lang=\"en\">\n<head><title>Edited</title></head>\n<body>\n<h1 id=\"edited\">Edited by the UI test</h1>\n<p>Fresh bread.</p>\n</body>\n</html>\n";
    replace_and_save(&browser, &session, edited).await;
    wait_for_preview(&browser, &session, "#edited", "Edited by the UI test").await;
    assert_eq!(runtime.page(&project, "index.html").await.0, edited);

    // The SEO score follows the edit.
    let edited_score = seo_score(&browser, &session).await;
    assert_ne!(
        edited_score, generated_score,
        "the score follows the edit (a bare page, against template filler)"
    );

    // Undo brings the generated page back, in the editor and in the preview.
    open_in_editor(&browser, &session, "index.html").await;
    click(&browser, "#undo").await;
    session
        .wait_js(
            "the undone page in the editor",
            "const t = document.querySelector('#page-editor'); \
             return !!t && !t.disabled && t.value.includes('<h1>Corner Bakery</h1>');",
            TIMEOUT,
        )
        .await;
    assert_eq!(editor_text(&session).await, generated);
    wait_for_preview(&browser, &session, "h1", "Corner Bakery").await;
    assert_eq!(runtime.page(&project, "index.html").await.0, generated);
    assert_eq!(seo_score(&browser, &session).await, generated_score);

    // Redo brings the edit back; the SEO tab shown follows.
    click(&browser, "#redo").await;
    session
        .wait_js(
            "the SEO score of the redone version",
            &format!(
                "return document.querySelector('#seo-score')?.textContent === '{edited_score}' && \
                 !document.querySelector('#seo-refresh').disabled"
            ),
            TIMEOUT,
        )
        .await;
    assert_eq!(runtime.page(&project, "index.html").await.0, edited);
}

#[tokio::test]
async fn a_stale_save_shows_the_current_version_and_can_overwrite_it() {
    let (runtime, browser, session) = start().await;
    browser.goto(&runtime.url("/")).await;
    let project = create_project(&browser, &session, "Two tabs").await;
    open_in_editor(&browser, &session, "index.html").await;

    // Someone else (another tab, an agent) saves the page meanwhile.
    let (_, etag) = runtime.page(&project, "index.html").await;
    let theirs = "<!doctype html><html><body><h1>Theirs</h1></body></html>\n";
    let r = runtime
        .http
        .put(runtime.url(&format!("/api/v1/projects/{project}/pages/index.html")))
        .header("content-type", "text/html")
        .header("if-match", etag)
        .body(theirs)
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), 200);

    let mine = "<!doctype html><html><body><h1>Mine</h1></body></html>\n";
    session.clear("#page-editor").await;
    type_into(&browser, "#page-editor", mine).await;
    click(&browser, "#save-page").await;
    browser.wait_for("#conflict:not([hidden])", TIMEOUT).await;
    assert_eq!(
        session
            .js("return document.querySelector('#conflict-current').value")
            .await,
        json!(theirs),
        "the conflict shows the current version"
    );
    assert_eq!(
        runtime.page(&project, "index.html").await.0,
        theirs,
        "nothing was overwritten"
    );

    click(&browser, "#conflict-overwrite").await;
    session
        .wait_js(
            "the overwrite",
            "return document.querySelector('#conflict').hidden && \
                    (document.querySelector('#editor-state')?.textContent ?? '').startsWith('Saved')",
            TIMEOUT,
        )
        .await;
    assert_eq!(runtime.page(&project, "index.html").await.0, mine);
    wait_for_preview(&browser, &session, "h1", "Mine").await;
}
